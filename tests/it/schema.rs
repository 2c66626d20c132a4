//! `spotdrill schema`: the JSON Schema editors use to autocomplete plans.

use crate::util::{root, spotdrill};

#[test]
fn schema_describes_the_plan_and_denies_unknown_fields() {
    let out = spotdrill(&["schema"]);
    out.expect_code(0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema is JSON");
    assert_eq!(schema["additionalProperties"], false);
    let props = schema["properties"].as_object().expect("properties");
    for field in [
        "version",
        "name",
        "description",
        "kafka",
        "lab",
        "applications",
        "targets",
        "observe",
    ] {
        assert!(props.contains_key(field), "no `{field}` in the schema");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        required,
        ["version", "name", "kafka", "applications", "targets"]
    );
    let target = &schema["$defs"]["RawTarget"];
    assert_eq!(target["additionalProperties"], false);
    assert!(
        target["properties"]["ladder"]["description"]
            .as_str()
            .unwrap()
            .contains("strictly increasing")
    );
}

/// Plans point yaml-language-server at experiments/plan.schema.json; it must be the current one.
#[test]
fn committed_schema_is_up_to_date() {
    let out = spotdrill(&["schema"]);
    out.expect_code(0);
    let committed = std::fs::read_to_string(root().join("experiments/plan.schema.json"))
        .expect("experiments/plan.schema.json exists");
    assert!(
        committed == out.stdout,
        "experiments/plan.schema.json is stale: run `cargo run -- schema > experiments/plan.schema.json`"
    );
}

/// README's plan reference is generated; it must match what this build accepts.
#[test]
fn readme_plan_reference_is_up_to_date() {
    let out = spotdrill(&["schema", "--markdown"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("#### `targets.<name>.nodes`"),
        "{}",
        out.stdout
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = "<!-- plan-reference:start -->\n\n";
    let block = readme
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("<!-- plan-reference:end -->"))
        .map(|(block, _)| block)
        .expect("README.md has the plan-reference markers");
    assert!(
        block == out.stdout,
        "README.md's plan reference is stale: paste `cargo run -- schema --markdown` between the markers"
    );
}
