//! Turning an L1 block's `do` calls into planned actions: arguments filled in from the event,
//! blast radius counted. Pure: a plan never touches the world.

use super::decision::PlannedAction;
use crate::actions::RadiusCount;
use crate::actions::text::{TextKind, substitute};
use crate::compile::{ActionCall, ArgValue, Field, TemplatePart};
use crate::event::Event;
use crate::graph::matcher::field_value;
use serde_json::Value;
use std::collections::BTreeMap;

fn field(event: &Event, f: &Field) -> Result<String, String> {
    match field_value(event, f) {
        Some(v) if !v.is_empty() => Ok(v.into_owned()),
        Some(_) => Err(format!("`{f}` is empty in the event, so the action has no target")),
        None => Err(format!("`{f}` is missing from the event, so the action has no target")),
    }
}

/// The event's value of `f`, made into `kind` of text (escaped, or refused with the reason).
fn field_as(event: &Event, f: &Field, kind: TextKind) -> Result<String, String> {
    substitute(kind, &field(event, f)?).map_err(|e| format!("`{f}`: {e}, so the plan is refused"))
}

/// An argument's value for this event, as free text; an error names the event field that is
/// missing.
pub fn fill(value: &ArgValue, event: &Event) -> Result<Value, String> {
    fill_as(value, event, TextKind::Plain)
}

/// An argument's value for this event, each value from the event made into `kind` of text
/// (the playbook's own text is kept as written).
pub fn fill_as(value: &ArgValue, event: &Event, kind: TextKind) -> Result<Value, String> {
    Ok(match value {
        ArgValue::Template(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    TemplatePart::Text(t) => out.push_str(t),
                    TemplatePart::Field(f) => out.push_str(&field_as(event, f, kind)?),
                }
            }
            Value::String(out)
        }
        ArgValue::Field(f) => Value::String(field_as(event, f, kind)?),
        ArgValue::Int(n) => Value::from(*n),
        ArgValue::Float(x) => Value::from(*x),
        ArgValue::Bool(b) => Value::Bool(*b),
        ArgValue::Duration(d) => Value::String(d.to_string()),
        ArgValue::List(items) => Value::Array(items.iter().map(|i| fill_as(i, event, kind)).collect::<Result<_, _>>()?),
    })
}

/// Fills every argument; the first missing field is the error.
pub fn fill_all(args: &BTreeMap<String, ArgValue>, event: &Event) -> Result<BTreeMap<String, Value>, String> {
    args.iter().map(|(k, v)| Ok((k.clone(), fill(v, event)?))).collect()
}

/// The planned action for `call` and `event`: the arguments filled in, then the action's own
/// `plan()`, which refuses an empty or over-broad selector.
pub fn plan(call: &ActionCall, event: &Event) -> Result<PlannedAction, String> {
    let kind = |name: &str| call.action.params.iter().find(|p| p.name == name).map_or(TextKind::Plain, |p| p.text);
    let args: BTreeMap<String, Value> = call
        .args
        .iter()
        .map(|(k, v)| Ok((k.clone(), fill_as(v, event, kind(k))?)))
        .collect::<Result<_, String>>()
        .map_err(|e| format!("{}: {e}", call.action.name))?;
    let blast_radius = match call.action.blast_radius.count {
        RadiusCount::Fixed(n) => n,
        RadiusCount::Param(p) => args.get(p).and_then(Value::as_i64).map_or(0, i64::unsigned_abs),
    };
    let plan = call.action.plan(&args).map_err(|e| e.to_string())?;
    Ok(PlannedAction { plan, blast_radius })
}
