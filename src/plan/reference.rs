//! The plan reference in Markdown, generated from the JSON Schema (itself generated from the
//! spec's doc comments), so README.md can never drift from what `validate` accepts.

use serde_json::Value;

/// Markdown tables, one per mapping of the plan, titled by its field path.
pub fn markdown() -> String {
    let schema = super::json_schema();
    let mut out = String::new();
    let mut seen = Vec::new();
    section(&schema, &schema, "(top level)", &mut out, &mut seen);
    out
}

fn section(root: &Value, def: &Value, title: &str, out: &mut String, seen: &mut Vec<String>) {
    let Some(props) = def["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = def["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(&format!("#### `{title}`\n\n"));
    if let Some(d) = def["description"].as_str() {
        out.push_str(&format!("{}\n\n", one_line(d)));
    }
    out.push_str("| field | type | required | meaning |\n|---|---|---|---|\n");
    let mut nested = Vec::new();
    for (name, prop) in props {
        let (ty, child) = type_of(root, prop);
        let req = if required.contains(&name.as_str()) {
            "yes"
        } else {
            ""
        };
        let desc = prop["description"]
            .as_str()
            .map(one_line)
            .unwrap_or_default();
        out.push_str(&format!("| `{name}` | {ty} | {req} | {desc} |\n"));
        if let Some((def_name, suffix)) = child {
            let path = if title == "(top level)" {
                format!("{name}{suffix}")
            } else {
                format!("{title}.{name}{suffix}")
            };
            nested.push((def_name, path));
        }
    }
    out.push('\n');
    for (def_name, path) in nested {
        if seen.contains(&def_name) {
            continue;
        }
        seen.push(def_name.clone());
        section(root, &root["$defs"][&def_name], &path, out, seen);
    }
}

/// A readable type, and the definition to describe next (with the path suffix leading to it).
fn type_of(root: &Value, prop: &Value) -> (String, Option<(String, &'static str)>) {
    if let Some(r) = prop["$ref"].as_str() {
        return named(root, r, "");
    }
    if let Some(any) = prop["anyOf"].as_array()
        && let Some(r) = any.iter().find_map(|v| v["$ref"].as_str())
    {
        return named(root, r, "");
    }
    let ty = match &prop["type"] {
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("any")
            .to_owned(),
        Value::String(t) => t.clone(),
        _ => "any".to_owned(),
    };
    match ty.as_str() {
        "array" => {
            let (inner, child) = type_of(root, &prop["items"]);
            (format!("list of {inner}"), child.map(|(d, _)| (d, "[]")))
        }
        "object" => {
            let (inner, child) = type_of(root, &prop["additionalProperties"]);
            (
                format!("map of name → {inner}"),
                child.map(|(d, _)| (d, ".<name>")),
            )
        }
        "integer" => ("integer".into(), None),
        "number" => ("number".into(), None),
        "boolean" => ("boolean".into(), None),
        "string" => ("text".into(), None),
        other => (other.to_owned(), None),
    }
}

fn named(
    root: &Value,
    reference: &str,
    suffix: &'static str,
) -> (String, Option<(String, &'static str)>) {
    let name = reference.trim_start_matches("#/$defs/").to_owned();
    let def = &root["$defs"][&name];
    if def["properties"].is_object() {
        return ("mapping".into(), Some((name, suffix)));
    }
    let values: Vec<String> = match (&def["enum"], &def["oneOf"]) {
        (Value::Array(e), _) => e
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect(),
        (_, Value::Array(o)) => o
            .iter()
            .filter_map(|v| v["const"].as_str())
            .map(|v| format!("`{v}`"))
            .collect(),
        _ => Vec::new(),
    };
    if !values.is_empty() {
        return (values.join(" \\| "), None);
    }
    let kind = match name.as_str() {
        "DurationText" | "Duration" => "duration",
        "RateText" | "Rate" => "rate (`N/s`)",
        "PercentText" | "Percent" => "percent (`N%`)",
        "CountOrPercentText" | "CountOrPercent" => "count or percent",
        other => other,
    };
    (kind.to_owned(), None)
}

fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}
