//! Where a run acts (DESIGN.md "Safety rules"): each AWS target's account (STS
//! GetCallerIdentity), region and endpoint, shown before a run and recorded in `run_started`; a
//! `--resume` in another account, region or endpoint than the run it continues is refused,
//! because the journal's nodes and guards belong to the place it started in.

use crate::exit::Failure;
use crate::journal::{Entry, TargetPlace};
use crate::nodes::aws::AwsSettings;
use crate::plan::Plan;

use super::setup::Providers;

/// Each AWS target's place, in the plan's order.
pub fn of(providers: &Providers) -> Vec<TargetPlace> {
    providers
        .iter()
        .filter_map(|(name, p)| {
            p.place().map(|place| TargetPlace {
                target: name.clone(),
                account: place.account,
                region: place.region,
                endpoint: place.endpoint,
            })
        })
        .collect()
}

/// Refuse (exit 4) to act where the account cannot be told: its lock would not name the
/// cluster, and a colleague's run of it (whose STS answers) would not be stopped by it.
pub fn known(providers: &Providers) -> Result<(), Failure> {
    for (name, p) in providers {
        if let Some(why) = p.place().and_then(|p| p.unknown_because) {
            return Err(Failure::environment(format!(
                "target `{name}`: cannot tell which AWS account it would act in ({why}); \
                 spotdrill names the account in its locks and journal and does not act where \
                 it cannot say where"
            )));
        }
    }
    Ok(())
}

/// The places of a plan's AWS targets, connected for the asking (the run's confirmation).
pub async fn of_plan(plan: &Plan, aws: &AwsSettings) -> Vec<TargetPlace> {
    of(&super::setup::connect_all(plan, aws).await)
}

/// One line per AWS target: `TARGET: AWS account A, region R, endpoint E`.
pub fn lines(places: &[TargetPlace]) -> String {
    places
        .iter()
        .map(|p| {
            format!(
                "  {}: AWS account {}, region {}, endpoint {}\n",
                p.target, p.account, p.region, p.endpoint
            )
        })
        .collect()
}

/// Refuse to resume a run whose journal says its AWS targets acted elsewhere (another account,
/// region or endpoint) than they would now. A journal from before places were recorded names
/// none, and nothing is compared.
pub fn same_as_journal(previous: &[Entry], now: &[TargetPlace]) -> Result<(), Failure> {
    let Some(then) = previous.iter().find_map(|e| match e {
        Entry::RunStarted { aws, .. } => Some(aws),
        _ => None,
    }) else {
        return Ok(());
    };
    let mut changed = Vec::new();
    for old in then {
        let new = now.iter().find(|p| p.target == old.target);
        let shown = |p: &TargetPlace| {
            format!(
                "account {}, region {}, endpoint {}",
                p.account, p.region, p.endpoint
            )
        };
        match new {
            Some(new) if new == old => {}
            Some(new) => changed.push(format!(
                "target `{}` ran in AWS {}, and would now act in AWS {}",
                old.target,
                shown(old),
                shown(new)
            )),
            None => changed.push(format!(
                "target `{}` ran in AWS {} and has no AWS place now",
                old.target,
                shown(old)
            )),
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    Err(Failure::bad_input(format!(
        "refusing to resume in another place: {}; resume with the credentials, --region and \
         endpoint the run started with",
        changed.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(account: &str, endpoint: &str) -> TargetPlace {
        TargetPlace {
            target: "storm".into(),
            account: account.into(),
            region: "us-east-1".into(),
            endpoint: endpoint.into(),
        }
    }

    fn started(aws: Vec<TargetPlace>) -> Vec<Entry> {
        let text = serde_json::json!({
            "event": "run_started", "at": "2026-01-01T00:00:00Z", "plan": "p",
            "plan_path": "p.yaml", "plan_digest": "0", "version": "0", "targets": [],
            "lab": false, "aws": aws,
        });
        vec![serde_json::from_value(text).unwrap()]
    }

    #[test]
    fn a_resume_in_another_account_or_endpoint_is_refused() {
        let then = started(vec![place("111111111111", "default")]);
        assert!(same_as_journal(&then, &[place("111111111111", "default")]).is_ok());
        let err = same_as_journal(&then, &[place("222222222222", "default")]).unwrap_err();
        assert_eq!(err.kind, crate::exit::Kind::BadInput);
        let text = err.to_string();
        assert!(
            text.contains("111111111111") && text.contains("222222222222"),
            "{text}"
        );
        let err = same_as_journal(&then, &[place("111111111111", "http://e:1")]).unwrap_err();
        assert!(err.to_string().contains("http://e:1"), "{err}");
    }

    /// A journal written before places were recorded loads (no `aws` field) and is not compared.
    #[test]
    fn an_old_journal_without_places_resumes() {
        let old = r#"{"event":"run_started","at":"2026-01-01T00:00:00Z","plan":"p","plan_path":"p.yaml","plan_digest":"0","version":"0","targets":[],"lab":false}"#;
        let e: Entry = serde_json::from_str(old).unwrap();
        assert!(same_as_journal(&[e], &[place("1", "default")]).is_ok());
    }
}
