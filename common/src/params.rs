//! Helpers for a plan's `Serialize`, which gives the effective parameters
//! (`params.effective` in the report, `--dry-run`'s plan): the few shapes the report wants
//! that a field's own serialisation does not give. Use them as
//! `#[serde(serialize_with = "common::params::as_value_name")]`.

use clap::ValueEnum;
use serde::{Serialize, Serializer};

/// The name a `ValueEnum` value has on the command line (`Mode::Churn` is `churn`,
/// `#[value(name = "io_uring")]` is `io_uring`): the plan and the report say it as the flag
/// does, from clap's one definition.
pub fn value_name<E: ValueEnum>(v: &E) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// A flag's enum by its [`value_name`].
pub fn as_value_name<E: ValueEnum, S: Serializer>(v: &E, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value_name(v))
}

/// A rate (`Option<f64>`) as a whole number, or null.
pub fn as_rounded<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    v.map(|r| r.round() as u64).serialize(s)
}

/// A path as people read it: any path serialises, not only UTF-8 ones.
pub fn as_display<S: Serializer>(p: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.display().to_string())
}
