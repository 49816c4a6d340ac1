//! The JSON Schemas of the report and the plan, generated from the types (schemars), as
//! published in `common/schema/`. `cargo run -p misbehave-report --features schema
//! --example write-schema` writes them; the test `schema` fails when the files and the
//! types differ.

use schemars::generate::SchemaSettings;
use serde_json::json;

use crate::{probe, Plan, Report};

/// The folder the schemas are published in, relative to this crate.
pub const DIR: &str = "../common/schema";

/// The report's schema (`report.schema.json`). probe's own records in `details` are
/// checked where `tool` is `probe`.
pub fn report() -> serde_json::Value {
    let mut g = SchemaSettings::draft2020_12().into_generator();
    let details = g.subschema_for::<probe::Details>();
    let mut root = g.into_root_schema_for::<Report>();
    root.insert(
        "allOf".into(),
        json!([{
            "description": "probe's details: its records per kind of work and per second",
            "if": {"properties": {"tool": {"const": "probe"}}, "required": ["tool"]},
            "then": {"properties": {"details": details}}
        }]),
    );
    root.to_value()
}

/// The plan's schema (`plan.schema.json`).
pub fn plan() -> serde_json::Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Plan>()
        .to_value()
}

/// Each published file's name and text.
pub fn files() -> [(&'static str, String); 2] {
    let text = |v: serde_json::Value| serde_json::to_string_pretty(&v).expect("JSON") + "\n";
    [
        ("report.schema.json", text(report())),
        ("plan.schema.json", text(plan())),
    ]
}
