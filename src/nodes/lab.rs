//! `provider: lab`: the nodes of one lab cluster, killed like spot instances (SIGTERM as the
//! notice, SIGKILL after it; SIGKILL at once with no notice). Before `run` starts the lab (in the
//! preflight) its nodes are predicted: the ids the lab gives them.

use std::time::Duration;

use super::{
    Context, Discovery, Found, Injection, Node, NodeOutcome, Permission, Provider, ProviderError,
    Terminated,
};
use crate::lab::up::LabHandle;

pub struct LabNodes {
    cluster: String,
    /// The lab's directory, canonical (empty when not known).
    dir: String,
    notice: Duration,
    /// The running lab; `None` before `run` starts it.
    lab: Option<LabHandle>,
    /// Nodes the plan gives the cluster (the prediction).
    size: u32,
}

impl LabNodes {
    pub fn new(cluster: &str, notice: Duration, cx: Context<'_>) -> LabNodes {
        LabNodes {
            cluster: cluster.to_owned(),
            dir: cx.lab_dir.map_or_else(String::new, canonical),
            notice,
            lab: cx.lab.cloned(),
            size: cx
                .plan_lab
                .and_then(|lab| lab.clusters.get(cluster))
                .map_or(0, |c| c.nodes),
        }
    }

    fn live(&self, lab: &LabHandle) -> Vec<Node> {
        lab.state()
            .nodes
            .into_iter()
            .filter(|n| n.cluster == self.cluster)
            .map(|n| Node::lab(n.id))
            .collect()
    }

    /// The nodes a lab cluster starts with: `{cluster}-1` … `{cluster}-{size}` (`lab::cluster`).
    fn predicted(&self) -> Discovery {
        Discovery {
            found: (1..=self.size)
                .map(|i| Found::bare(Node::lab(format!("{}-{i}", self.cluster))))
                .collect(),
            excluded: Vec::new(),
            note: Some(
                "the lab is started by `run`: these are the ids it gives its nodes; later steps \
                 choose among the nodes alive at that time (replacements get new ids)"
                    .into(),
            ),
        }
    }
}

/// A directory however it was spelled (canonical once it exists; absolute before).
pub fn canonical(dir: &std::path::Path) -> String {
    std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_owned())
        .display()
        .to_string()
}

#[async_trait::async_trait]
impl Provider for LabNodes {
    fn outlives_the_run(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "lab"
    }

    /// `lab/CLUSTER@DIR`: the cluster of the lab in that directory (a run's lab lives in its
    /// run directory, so only runs of one directory, a run and its `--resume`, exclude each
    /// other). Without a directory, `lab/CLUSTER@`: the prefix of every such lock.
    fn lock_identity(&self) -> String {
        format!("lab/{}@{}", self.cluster, self.dir)
    }

    async fn discover(&self) -> Result<Discovery, ProviderError> {
        Ok(match &self.lab {
            Some(lab) => Discovery {
                found: self.live(lab).into_iter().map(Found::bare).collect(),
                ..Discovery::default()
            },
            None => self.predicted(),
        })
    }

    async fn check_permissions(&self, _nodes: &[Node]) -> Result<Permission, ProviderError> {
        Ok(Permission::NotChecked)
    }

    async fn terminate(&self, nodes: &[Node], _injection: Injection<'_>) -> Vec<Terminated> {
        let Some(lab) = self.lab.clone() else {
            let why = "the lab is not running";
            return nodes
                .iter()
                .map(|n| Terminated::new(&n.id, NodeOutcome::Error, Some(why.into())))
                .collect();
        };
        let now = Discovery {
            found: self.live(&lab).into_iter().map(Found::bare).collect(),
            ..Discovery::default()
        };
        let (go, mut results) = now.sort_out(nodes, "not running any more");
        let ids: Vec<String> = go.iter().map(|f| f.node.id.clone()).collect();
        let notice = self.notice;
        // A kill returns once the node is dead (after its notice): off the runtime's threads,
        // so sampling goes on meanwhile.
        let killed = tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|id| match lab.kill(id, notice) {
                    Ok(()) => Terminated::new(id, NodeOutcome::Terminated, None),
                    Err(e) => Terminated::new(id, NodeOutcome::Error, Some(e.to_string())),
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        results.extend(killed);
        results.in_order(nodes)
    }

    fn notice(&self) -> Duration {
        self.notice
    }

    fn replaces(&self) -> bool {
        true
    }

    fn capacity_full(&self, _gone: &[String]) -> bool {
        self.lab
            .as_ref()
            .and_then(|lab| lab.capacity(&self.cluster))
            .is_some_and(|c| c.is_full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn before_the_lab_runs_its_nodes_are_named_like_the_lab_names_them() {
        let lab = LabNodes {
            cluster: "storm-lab".into(),
            dir: String::new(),
            notice: Duration::ZERO,
            lab: None,
            size: 3,
        };
        let d = lab.discover().await.unwrap();
        let ids: Vec<String> = d.nodes().into_iter().map(|n| n.id).collect();
        assert_eq!(ids, ["storm-lab-1", "storm-lab-2", "storm-lab-3"]);
        assert!(d.note.is_some(), "a prediction says so");
        assert_eq!(lab.lock_identity(), "lab/storm-lab@");
    }

    /// Two runs' labs are two clusters: the lock names the lab's directory, however spelled.
    #[test]
    fn a_lab_lock_names_the_lab_directory() {
        let runs = tempfile::tempdir().unwrap();
        let (a, b) = (runs.path().join("a"), runs.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        let id = |dir: &std::path::Path| {
            let cx = Context {
                aws: &crate::nodes::aws::AwsSettings::default(),
                plan_lab: None,
                lab: None,
                lab_dir: Some(dir),
            };
            LabNodes::new("storm-lab", Duration::ZERO, cx).lock_identity()
        };
        let canon = std::fs::canonicalize(&a).unwrap();
        assert_eq!(id(&a), format!("lab/storm-lab@{}", canon.display()));
        assert_eq!(id(&a.join("../a")), id(&a), "spelled another way");
        assert_ne!(id(&a), id(&b), "another run's lab");
        assert!(id(&a).starts_with("lab/storm-lab@"));
    }
}
