//! The stressor-specific sections (`totals`, `peaks`, `details`, `samples`, `per_worker`):
//! maps of typed values. A value keeps its unit (bytes, seconds, percent...) for the
//! summary, which prints it; the report gives the plain number.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A value in the report, with its unit. In JSON: a number, a string, a boolean, `null`, or
/// an array of records (objects of such values). Read back, a whole number is a `Count`
/// and any other number a `Number` with no unit: the JSON does not carry units.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Count(u64),
    Bytes(u64),
    Seconds(f64),
    Percent(f64),
    /// Any other number, with its unit ("GiB/s", "ms"; empty when read back).
    Number(f64, String),
    Text(String),
    Flag(bool),
    /// Not known, or never happened: `null`.
    Missing,
    /// A list of records (a sink's senders, probe's kinds of work).
    Records(Vec<BTreeMap<String, Value>>),
}

impl Value {
    /// The number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Count(n) | Value::Bytes(n) => Some(*n as f64),
            Value::Seconds(v) | Value::Percent(v) | Value::Number(v, _) => Some(*v),
            _ => None,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Count(n) | Value::Bytes(n) => s.serialize_u64(*n),
            Value::Seconds(v) | Value::Percent(v) | Value::Number(v, _) => s.serialize_f64(*v),
            Value::Text(t) => s.serialize_str(t),
            Value::Flag(b) => s.serialize_bool(*b),
            Value::Missing => s.serialize_unit(),
            Value::Records(rows) => rows.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a string, a boolean, null or an array of records")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Count(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Number(v as f64, String::new()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Number(v, String::new()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::Text(v))
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Missing)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Missing)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut rows = Vec::new();
                while let Some(r) = seq.next_element()? {
                    rows.push(r);
                }
                Ok(Value::Records(rows))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
                Err(de::Error::custom(
                    "an object where a value or a list of records was expected",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether and where the summary shows an entry. Not in the JSON: a report read back shows
/// nothing of its own sections in a summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Show {
    /// In the report only (an internal clock, or what the summary shows another way).
    #[default]
    Hidden,
    /// A metric of the stressor, in the order of its metrics: printed with its rate
    /// (totals) or as a peak (levels).
    Metric(u16),
    /// One of the stressor's findings, in the order it gave them: printed as it is.
    Finding(u16),
}

/// An entry of a section: the value, and how the summary shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    pub show: Show,
}

impl Entry {
    pub fn new(value: Value, show: Show) -> Self {
        Self { value, show }
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|value| Entry {
            value,
            show: Show::Hidden,
        })
    }
}

/// A stressor-specific section, by name (sorted in the JSON).
pub type Section = BTreeMap<String, Entry>;

#[cfg(feature = "schema")]
mod schema {
    use std::borrow::Cow;

    use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

    impl JsonSchema for super::Value {
        fn schema_name() -> Cow<'static, str> {
            "finding".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "A typed value: a number, a string, a boolean, null (not known, or never happened), or records",
                "oneOf": [
                    {"type": ["number", "string", "boolean", "null"]},
                    {"type": "array", "description": "records, such as a sink's senders",
                     "items": {"type": "object", "additionalProperties": {"type": ["number", "string", "boolean", "null"]}}}
                ]
            })
        }
    }

    impl JsonSchema for super::Entry {
        fn schema_name() -> Cow<'static, str> {
            "finding".into()
        }
        fn inline_schema() -> bool {
            true
        }
        fn json_schema(g: &mut SchemaGenerator) -> Schema {
            g.subschema_for::<super::Value>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_plain_json_and_read_back_as_numbers() {
        let rows = vec![BTreeMap::from([("port".to_string(), Value::Count(80))])];
        let v = [
            Value::Count(3),
            Value::Bytes(4096),
            Value::Seconds(1.0),
            Value::Percent(12.5),
            Value::Number(2.25, "GiB/s".into()),
            Value::Text("x".into()),
            Value::Flag(true),
            Value::Missing,
            Value::Records(rows.clone()),
        ];
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"[3,4096,1.0,12.5,2.25,"x",true,null,[{"port":80}]]"#
        );
        let back: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back,
            [
                Value::Count(3),
                Value::Count(4096),
                Value::Number(1.0, String::new()),
                Value::Number(12.5, String::new()),
                Value::Number(2.25, String::new()),
                Value::Text("x".into()),
                Value::Flag(true),
                Value::Missing,
                Value::Records(rows),
            ]
        );
        assert!(serde_json::from_str::<Value>(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn an_entry_is_its_value_and_reads_back_hidden() {
        let e = Entry::new(Value::Bytes(7), Show::Metric(2));
        assert_eq!(serde_json::to_string(&e).unwrap(), "7");
        let back: Entry = serde_json::from_str("7").unwrap();
        assert_eq!(back, Entry::new(Value::Count(7), Show::Hidden));
    }
}
