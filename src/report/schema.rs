//! The JSON Schema of `report.json` (`spotdrill schema --report`), generated from the report's
//! own types and their doc comments; committed as `experiments/report.schema.json`.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::analysis::Verdict;

use super::Report;

/// Verdicts serialize as lowercase words; the analysis module stays free of schema concerns.
impl JsonSchema for Verdict {
    fn schema_name() -> Cow<'static, str> {
        "Verdict".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "pass: every SLO held, decided by data; fail: an SLO was broken; \
                            inconclusive: missing data prevents deciding.",
            "type": "string",
            "enum": ["pass", "fail", "inconclusive"]
        })
    }
}

/// The schema of `report.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn verdict_schema_matches_its_serialization() {
        let schema = super::json_schema();
        let verdicts = &schema["$defs"]["Verdict"]["enum"];
        for v in [
            crate::analysis::Verdict::Pass,
            crate::analysis::Verdict::Fail,
            crate::analysis::Verdict::Inconclusive,
        ] {
            let json = serde_json::to_value(v).unwrap();
            assert!(verdicts.as_array().unwrap().contains(&json), "{json}");
        }
    }
}
