//! The plans shipped in experiments/ are examples people copy: they must all validate, cleanly.

use crate::util::{root, spotdrill, yaml_files};

#[test]
fn every_experiment_validates_without_warnings() {
    let files = yaml_files("experiments");
    for name in [
        "lab-game-day",
        "lab-kubernetes",
        "storm-prod-aws",
        "mesos-prod-asg",
        "spot-interruptions-fis",
        "ci-gate",
    ] {
        assert!(
            files.contains(&format!("experiments/{name}.yaml")),
            "missing {name}.yaml"
        );
    }
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = spotdrill(&args);
    out.expect_code(0);
    assert!(out.stderr.is_empty(), "warnings or errors:\n{}", out.stderr);
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains(": ok: plan"))
            .count(),
        files.len()
    );
}

#[test]
fn the_experiments_cover_every_provider() {
    use spotdrill::plan::{Provider, load};
    let mut providers = Vec::new();
    for file in yaml_files("experiments") {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        let plan = load(&text)
            .plan
            .unwrap_or_else(|| panic!("{file} is valid"));
        providers.extend(plan.targets.values().map(|t| t.nodes.provider()));
    }
    for p in [
        Provider::Lab,
        Provider::AwsEc2,
        Provider::AwsAsg,
        Provider::AwsFis,
    ] {
        assert!(providers.contains(&p), "no experiment uses {}", p.name());
    }
}
