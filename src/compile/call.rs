//! Calls with named arguments (`do` actions, `fix` generators): names and types.

use super::model::ArgValue;
use super::{Cx, fields};
use crate::actions::{ParamSource, ParamSpec, ParamType};
use crate::diagnostics::{Code, Diagnostic, as_fragment, quoted_list};
use crate::dsl::ast::{Call, Value, ValueKind};
use std::collections::BTreeMap;

/// Checks `call`'s arguments against `params`; `what` names the callee for messages
/// ("action `k8s.scale`"). Returns the typed arguments, or `None` when any is wrong.
pub(super) fn check_args(
    cx: &mut Cx,
    call: &Call,
    params: &'static [ParamSpec],
    what: &str,
) -> Option<BTreeMap<String, ArgValue>> {
    let mut out = BTreeMap::new();
    let mut first_at = BTreeMap::new();
    let mut ok = true;
    for arg in &call.args {
        let name = arg.name.node.as_str();
        if let Some(first) = first_at.insert(name.to_string(), arg.name.span) {
            cx.push(
                Diagnostic::new(Code::DuplicateArgument, format!("`{name}` is passed twice to {what}"))
                    .at(&cx.file, arg.name.span, "passed again here")
                    .with_secondary(first, "first passed here")
                    .with_help("remove one of them"),
            );
            ok = false;
            continue;
        }
        let Some(param) = params.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = params.iter().map(|p| p.name).collect();
            cx.push(
                Diagnostic::new(Code::UnknownParameter, format!("{what} has no parameter `{name}`"))
                    .at(&cx.file, arg.name.span, "unknown parameter")
                    .with_help(format!(
                        "its parameters are {}",
                        if names.is_empty() { "none".to_string() } else { quoted_list(&names) }
                    ))
                    .suggest(name, names.iter().copied()),
            );
            ok = false;
            continue;
        };
        match typed(cx, param, &arg.value, what) {
            Some(v) => {
                out.insert(name.to_string(), v);
            }
            None => ok = false,
        }
    }
    let missing: Vec<&str> =
        params.iter().filter(|p| p.required && !first_at.contains_key(p.name)).map(|p| p.name).collect();
    if !missing.is_empty() {
        let (noun, list) = if missing.len() == 1 { ("parameter", missing[0]) } else { ("parameters", "") };
        let message = if missing.len() == 1 {
            format!("{what} needs the {noun} `{list}`")
        } else {
            format!("{what} needs the parameters {}", quoted_list(&missing))
        };
        let specs: Vec<&ParamSpec> = missing.iter().filter_map(|m| params.iter().find(|p| p.name == *m)).collect();
        let add = specs.iter().map(|p| format!("`{} = <{}>`", p.name, p.ty.describe())).collect::<Vec<_>>().join(", ");
        let docs = specs.iter().map(|p| format!("`{}`: {}", p.name, as_fragment(p.doc))).collect::<Vec<_>>().join("; ");
        let help = format!("add {add} to the call ({docs})");
        cx.push(
            Diagnostic::new(Code::MissingParameter, message)
                .at(&cx.file, call.name.span, "called here")
                .with_help(help),
        );
        ok = false;
    }
    ok.then_some(out)
}

/// Converts one argument value to its parameter's type.
fn typed(cx: &mut Cx, param: &ParamSpec, value: &Value, what: &str) -> Option<ArgValue> {
    // What to do first, then what the parameter is for.
    let mismatch = |cx: &mut Cx, todo: &str| {
        let doc = format!("`{}`: {}", param.name, as_fragment(param.doc));
        cx.push(
            Diagnostic::new(
                Code::ArgumentType,
                format!("`{}` of {what} takes {}, not {}", param.name, param.ty.describe(), value.kind.describe()),
            )
            .at(&cx.file, value.span, format!("expected {}", param.ty.describe()))
            .with_help(if todo.is_empty() { doc } else { format!("{todo} ({doc})") }),
        );
        None
    };
    if let ValueKind::Path(path) = &value.kind {
        let is_list_param = matches!(param.ty, ParamType::StrList | ParamType::DurationList);
        if is_list_param && path.segments.len() == 1 {
            let items = super::library::use_list(cx, &path.segments[0], path.span)?;
            // Named lists hold strings, numbers and booleans, never durations.
            let fits =
                param.ty == ParamType::StrList && items.iter().all(|s| matches!(s, super::model::Scalar::Str(_)));
            if !fits {
                cx.push(
                    Diagnostic::new(
                        Code::ArgumentType,
                        format!(
                            "`{}` of {what} takes {}; the list `{}` {}",
                            param.name,
                            param.ty.describe(),
                            path.segments[0],
                            if param.ty == ParamType::DurationList {
                                "cannot hold durations"
                            } else {
                                "holds values that are not strings"
                            }
                        ),
                    )
                    .at(&cx.file, value.span, format!("expected {}", param.ty.describe()))
                    .with_help(format!("write the values in place, e.g. {}", example_of(param.ty))),
                );
                return None;
            }
            return Some(ArgValue::List(items.iter().map(|s| scalar_to_arg(s.clone())).collect()));
        }
        if param.source == ParamSource::Literal {
            cx.push(
                Diagnostic::new(
                    Code::ArgumentType,
                    format!("`{}` of {what} must be written in the playbook, not taken from the event", param.name),
                )
                .at(&cx.file, value.span, "taken from the event")
                .with_help(format!(
                    "limits are set in reviewed code, never by the alert: write {} here",
                    param.ty.describe()
                )),
            );
            return None;
        }
        if is_list_param || param.ty == ParamType::Bool || param.ty == ParamType::Duration {
            return mismatch(cx, "");
        }
        return fields::resolve(cx, path).map(ArgValue::Field);
    }
    match (param.ty, &value.kind) {
        (ParamType::Str, ValueKind::Str(s)) if !param.choices.is_empty() && !param.choices.contains(&s.as_str()) => {
            cx.push(
                Diagnostic::new(Code::ArgumentType, format!("`{s}` is not a valid `{}` for {what}", param.name))
                    .at(&cx.file, value.span, "not one of the choices")
                    .with_help(format!(
                        "`{}` is one of {}",
                        param.name,
                        quoted_list(param.choices.iter().map(|c| format!("\"{c}\"")))
                    ))
                    .suggest(s, param.choices.iter().copied()),
            );
            None
        }
        (ParamType::Str, ValueKind::Str(s)) => {
            if param.source == ParamSource::Literal {
                Some(ArgValue::Template(vec![super::model::TemplatePart::Text(s.clone())]))
            } else {
                fields::template(cx, s, value.span).map(ArgValue::Template)
            }
        }
        (ParamType::Int, ValueKind::Int(n)) => in_range(cx, param, *n as f64, value, what).then_some(ArgValue::Int(*n)),
        (ParamType::Number, ValueKind::Int(n)) => {
            in_range(cx, param, *n as f64, value, what).then_some(ArgValue::Float(*n as f64))
        }
        (ParamType::Number, ValueKind::Float(n)) => in_range(cx, param, *n, value, what).then_some(ArgValue::Float(*n)),
        (ParamType::Bool, ValueKind::Bool(b)) => Some(ArgValue::Bool(*b)),
        (ParamType::Duration, ValueKind::Duration(d)) => Some(ArgValue::Duration(*d)),
        (ParamType::StrList, ValueKind::List(items)) => {
            let mut out = Vec::new();
            for item in items {
                match &item.kind {
                    ValueKind::Str(s) => {
                        out.push(ArgValue::Template(vec![super::model::TemplatePart::Text(s.clone())]))
                    }
                    _ => {
                        cx.push(
                            Diagnostic::new(
                                Code::ArgumentType,
                                format!(
                                    "`{}` of {what} takes a list of strings; this item is {}",
                                    param.name,
                                    item.kind.describe()
                                ),
                            )
                            .at(&cx.file, item.span, "expected a string")
                            .with_help(param.doc),
                        );
                        return None;
                    }
                }
            }
            Some(ArgValue::List(out))
        }
        (ParamType::DurationList, ValueKind::List(items)) => {
            let mut out = Vec::new();
            for item in items {
                match &item.kind {
                    ValueKind::Duration(d) => out.push(ArgValue::Duration(*d)),
                    _ => {
                        cx.push(
                            Diagnostic::new(
                                Code::ArgumentType,
                                format!(
                                    "`{}` of {what} takes a list of durations; this item is {}",
                                    param.name,
                                    item.kind.describe()
                                ),
                            )
                            .at(&cx.file, item.span, "expected a duration such as `7d`")
                            .with_help(param.doc),
                        );
                        return None;
                    }
                }
            }
            Some(ArgValue::List(out))
        }
        (ParamType::Int, ValueKind::Float(_)) => mismatch(cx, "write a whole number"),
        (ParamType::Duration, ValueKind::Int(n)) => {
            mismatch(cx, &format!("give the unit, e.g. `{} = {n}s` or `{} = {n}m`", param.name, param.name))
        }
        (ParamType::Number | ParamType::Int, ValueKind::Str(s)) if s.trim().parse::<f64>().is_ok() => {
            mismatch(cx, &format!("leave out the quotes: `{} = {}`", param.name, s.trim()))
        }
        _ => mismatch(cx, ""),
    }
}

fn scalar_to_arg(s: super::model::Scalar) -> ArgValue {
    use super::model::{Scalar, TemplatePart};
    match s {
        Scalar::Str(s) => ArgValue::Template(vec![TemplatePart::Text(s)]),
        Scalar::Int(n) => ArgValue::Int(n),
        Scalar::Float(f) => ArgValue::Float(f),
        Scalar::Bool(b) => ArgValue::Bool(b),
    }
}

fn example_of(ty: ParamType) -> &'static str {
    match ty {
        ParamType::DurationList => "`[30d, 14d, 7d, 1d]`",
        _ => "`[\"slack\", \"email\"]`",
    }
}

/// Whether `n` is within the parameter's range; reports it when not.
fn in_range(cx: &mut Cx, param: &ParamSpec, n: f64, value: &Value, what: &str) -> bool {
    let Some((lo, hi)) = param.range else { return true };
    if (lo..=hi).contains(&n) {
        return true;
    }
    cx.push(
        Diagnostic::new(
            Code::ValueOutOfRange,
            format!("`{}` of {what} must be between {lo} and {hi}, not {n}", param.name),
        )
        .at(&cx.file, value.span, "out of range")
        .with_help(format!("{} Sparky refuses bounds outside this range so that one run stays small", param.doc)),
    );
    false
}
