//! Field matchers, run natively against an event, with the outcome the trace shows.
//!
//! A missing field is absent, not empty: `==`, `=~`, `in`, `exists` and the numeric
//! comparisons fail on it; `!=`, `!~`, `not in` and `missing` hold.

use crate::compile::{CompiledMatcher, Field, Scalar, Test};
use crate::event::Event;
use std::borrow::Cow;

/// The value of `field` in `event` as text, as matchers and templates see it.
pub fn field_value<'e>(event: &'e Event, field: &Field) -> Option<Cow<'e, str>> {
    match field {
        Field::Top(name) => event.top_field(name),
        Field::Label(k) => event.labels.get(k).map(|v| Cow::Borrowed(v.as_str())),
        Field::Annotation(k) => event.annotations.get(k).map(|v| Cow::Borrowed(v.as_str())),
        Field::Payload(path) => {
            let mut v = &event.payload;
            for seg in path {
                v = match v {
                    serde_json::Value::Object(m) => m.get(seg)?,
                    serde_json::Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                other => Some(Cow::Owned(other.to_string())),
            }
        }
    }
}

fn equals(actual: &str, expected: &Scalar) -> bool {
    match expected {
        Scalar::Str(s) => actual == s,
        Scalar::Int(n) => actual.trim().parse::<f64>().is_ok_and(|a| a == *n as f64),
        Scalar::Float(f) => actual.trim().parse::<f64>().is_ok_and(|a| a == *f),
        Scalar::Bool(b) => actual.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
    }
}

fn number(actual: &str) -> Option<f64> {
    actual.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Whether the matcher holds for `event`.
pub fn matches(m: &CompiledMatcher, event: &Event) -> bool {
    let value = field_value(event, &m.field);
    let Some(actual) = value.as_deref() else {
        return matches!(m.test, Test::Ne(_) | Test::NotIn(_) | Test::NotMatches(_) | Test::Missing);
    };
    match &m.test {
        Test::Eq(s) => equals(actual, s),
        Test::Ne(s) => !equals(actual, s),
        Test::In(vals) => vals.iter().any(|s| equals(actual, s)),
        Test::NotIn(vals) => !vals.iter().any(|s| equals(actual, s)),
        Test::Matches(re) => re.is_match(actual),
        Test::NotMatches(re) => !re.is_match(actual),
        Test::Lt(n) => number(actual).is_some_and(|a| a < *n),
        Test::Le(n) => number(actual).is_some_and(|a| a <= *n),
        Test::Gt(n) => number(actual).is_some_and(|a| a > *n),
        Test::Ge(n) => number(actual).is_some_and(|a| a >= *n),
        Test::Exists => true,
        Test::Missing => false,
    }
}

/// What a matcher expected, in the playbook's words, for the trace.
pub fn describe(m: &CompiledMatcher) -> String {
    let scalar = |s: &Scalar| match s {
        Scalar::Str(s) => format!("{s:?}"),
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    };
    let list = |v: &[Scalar]| format!("[{}]", v.iter().map(scalar).collect::<Vec<_>>().join(", "));
    let test = match &m.test {
        Test::Eq(s) => format!("== {}", scalar(s)),
        Test::Ne(s) => format!("!= {}", scalar(s)),
        Test::In(v) => format!("in {}", list(v)),
        Test::NotIn(v) => format!("not in {}", list(v)),
        Test::Matches(re) => format!("=~ {:?}", re.as_str()),
        Test::NotMatches(re) => format!("!~ {:?}", re.as_str()),
        Test::Lt(n) => format!("< {n}"),
        Test::Le(n) => format!("<= {n}"),
        Test::Gt(n) => format!("> {n}"),
        Test::Ge(n) => format!(">= {n}"),
        Test::Exists => "exists".into(),
        Test::Missing => "missing".into(),
    };
    format!("{} {test}", m.field)
}
