//! Which nodes a step terminates: `random` (seeded, reproducible), `spread` (round-robin across
//! availability zone × instance type) or `market` (all from one spot market, as a price spike
//! takes them). Pure: the same nodes, seed and step always give the same choice.

use std::collections::BTreeMap;

use super::Node;
use crate::plan::Selection;

/// SplitMix64: a small, well-known generator; reproducibility is all that is needed here.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Why no choice could be made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("needs {wanted} nodes but only {eligible} are running and eligible")]
    TooFew { wanted: usize, eligible: usize },
    #[error("needs {wanted} nodes from one spot market, but the largest market has {largest}")]
    NoMarket { wanted: usize, largest: usize },
}

/// The largest spot market (instance type, zone) among the eligible nodes, and its nodes
/// (ordered by id): the most nodes; a tie goes to the first by instance type, then zone. Nodes
/// whose type or zone is unknown sit in no market. `None` when no node sits in one.
pub fn largest_market(eligible: &[Node]) -> Option<((String, String), Vec<Node>)> {
    let mut markets: BTreeMap<(String, String), Vec<Node>> = BTreeMap::new();
    for node in eligible {
        if let (Some(t), Some(z)) = (&node.instance_type, &node.zone) {
            markets
                .entry((t.clone(), z.clone()))
                .or_default()
                .push(node.clone());
        }
    }
    let most = markets.values().map(Vec::len).max()?;
    let (market, mut nodes) = markets.into_iter().find(|(_, v)| v.len() == most)?;
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Some((market, nodes))
}

/// Choose `n` of the eligible nodes for step `step` (0-based) of a target.
pub fn choose(
    eligible: &[Node],
    n: usize,
    selection: Selection,
    seed: u64,
    step: usize,
) -> Result<Vec<Node>, SelectError> {
    if n > eligible.len() {
        return Err(SelectError::TooFew {
            wanted: n,
            eligible: eligible.len(),
        });
    }
    let mut rng = SplitMix(seed ^ (step as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut nodes: Vec<Node> = eligible.to_vec();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    rng.shuffle(&mut nodes);
    match selection {
        Selection::Random => Ok(nodes.into_iter().take(n).collect()),
        Selection::Spread => {
            let mut markets: BTreeMap<(String, String), Vec<Node>> = BTreeMap::new();
            for node in nodes {
                markets.entry(node.market()).or_default().push(node);
            }
            let mut queues: Vec<Vec<Node>> = markets.into_values().collect();
            rng.shuffle(&mut queues);
            for q in &mut queues {
                q.reverse();
            }
            let mut chosen = Vec::with_capacity(n);
            while chosen.len() < n {
                for q in &mut queues {
                    if chosen.len() < n
                        && let Some(node) = q.pop()
                    {
                        chosen.push(node);
                    }
                }
            }
            Ok(chosen)
        }
        Selection::Market => {
            let mut markets: BTreeMap<(String, String), Vec<Node>> = BTreeMap::new();
            for node in nodes {
                markets.entry(node.market()).or_default().push(node);
            }
            let largest = markets.values().map(Vec::len).max().unwrap_or(0);
            let big: Vec<Vec<Node>> = markets.into_values().filter(|m| m.len() >= n).collect();
            if big.is_empty() {
                return Err(SelectError::NoMarket { wanted: n, largest });
            }
            let pick = rng.below(big.len());
            Ok(big[pick].iter().take(n).cloned().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::Lifecycle;

    fn node(id: &str, zone: &str, ty: &str) -> Node {
        Node {
            id: id.into(),
            host: id.into(),
            zone: Some(zone.into()),
            instance_type: Some(ty.into()),
            lifecycle: Lifecycle::Spot,
            running: true,
        }
    }

    fn fleet() -> Vec<Node> {
        let mut v = Vec::new();
        for (i, (z, t)) in [
            ("a", "c5"),
            ("a", "c5"),
            ("a", "c5"),
            ("b", "c5"),
            ("b", "m5"),
            ("c", "m5"),
        ]
        .iter()
        .enumerate()
        {
            v.push(node(&format!("i-{i}"), z, t));
        }
        v
    }

    #[test]
    fn random_is_reproducible_and_differs_by_step() {
        let f = fleet();
        let a = choose(&f, 3, Selection::Random, 42, 0).unwrap();
        let b = choose(&f, 3, Selection::Random, 42, 0).unwrap();
        assert_eq!(a, b);
        let mut rev = f.clone();
        rev.reverse();
        assert_eq!(
            choose(&rev, 3, Selection::Random, 42, 0).unwrap(),
            a,
            "input order does not matter"
        );
        let steps: Vec<_> = (0..8)
            .map(|s| choose(&f, 2, Selection::Random, 42, s).unwrap())
            .collect();
        assert!(steps.iter().any(|s| *s != steps[0]));
        let mut ids: Vec<_> = a.iter().map(|n| n.id.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn spread_takes_one_per_market_first() {
        let chosen = choose(&fleet(), 3, Selection::Spread, 1, 0).unwrap();
        let mut markets: Vec<_> = chosen.iter().map(Node::market).collect();
        markets.sort();
        markets.dedup();
        assert_eq!(markets.len(), 3, "{chosen:?}");
        assert_eq!(
            choose(&fleet(), 6, Selection::Spread, 1, 0).unwrap().len(),
            6
        );
    }

    #[test]
    fn largest_market_is_the_most_nodes_and_ties_go_to_the_first_market() {
        let (market, nodes) = largest_market(&fleet()).unwrap();
        assert_eq!(market, ("c5".into(), "a".into()));
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["i-0", "i-1", "i-2"]);
        let tie = [node("i-9", "b", "m5"), node("i-8", "a", "m5")];
        assert_eq!(largest_market(&tie).unwrap().0, ("m5".into(), "a".into()));
        let mut unknown = node("i-7", "a", "c5");
        unknown.zone = None;
        assert_eq!(largest_market(&[unknown]), None);
    }

    #[test]
    fn market_takes_all_from_one_market_or_says_why_not() {
        let chosen = choose(&fleet(), 3, Selection::Market, 5, 0).unwrap();
        assert!(
            chosen
                .iter()
                .all(|n| n.market() == ("c5".into(), "a".into()))
        );
        assert_eq!(
            choose(&fleet(), 4, Selection::Market, 5, 0),
            Err(SelectError::NoMarket {
                wanted: 4,
                largest: 3
            })
        );
        assert_eq!(
            choose(&fleet(), 7, Selection::Random, 5, 0),
            Err(SelectError::TooFew {
                wanted: 7,
                eligible: 6
            })
        );
    }
}
