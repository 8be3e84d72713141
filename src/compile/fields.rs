//! Event fields as playbooks name them, and `{field}` templates in strings.

use super::Cx;
use super::model::{Field, TemplatePart};
use crate::diagnostics::{Code, Diagnostic, Span, quoted_list};
use crate::dsl::ast::FieldPath;

/// Top-level fields of the normalized event that a matcher, guard or argument may name.
pub const TOP_FIELDS: &[&str] = &[
    "id",
    "source",
    "kind",
    "status",
    "fingerprint",
    "service",
    "severity",
    "summary",
    "occurred_at",
    "received_at",
    "delivery_id",
];

/// Fields holding a map whose keys come after a dot.
pub const MAP_FIELDS: &[&str] = &["labels", "annotations", "payload"];

/// Resolves `path` to an event field, reporting what is wrong with it.
pub(super) fn resolve(cx: &mut Cx, path: &FieldPath) -> Option<Field> {
    resolve_segments(cx, &path.segments, path.span, &path.to_string())
}

fn resolve_segments(cx: &mut Cx, segs: &[String], span: Span, written: &str) -> Option<Field> {
    let (head, rest) = segs.split_first()?;
    let field = match head.as_str() {
        "labels" | "annotations" => match rest {
            [key] if head == "labels" => Field::Label(key.clone()),
            [key] => Field::Annotation(key.clone()),
            [] => {
                cx.push(
                    Diagnostic::new(Code::UnknownField, format!("`{head}` needs a key"))
                        .at(&cx.file, span, "which one?")
                        .with_help(format!("write `{head}.<name>`, or `{head}[\"dotted.name\"]` for keys with dots")),
                );
                return None;
            }
            _ => {
                cx.push(
                    Diagnostic::new(Code::UnknownField, format!("`{written}` goes deeper than a {head} key"))
                        .at(&cx.file, span, "labels and annotations are flat")
                        .with_help(format!("for a key that contains dots write `{head}[\"{}\"]`", rest.join("."))),
                );
                return None;
            }
        },
        "payload" if !rest.is_empty() => Field::Payload(rest.to_vec()),
        "payload" => {
            cx.push(
                Diagnostic::new(Code::UnknownField, "`payload` needs a path")
                    .at(&cx.file, span, "which part of the payload?")
                    .with_help("write a path into the original payload, e.g. `payload.commonLabels.team`"),
            );
            return None;
        }
        name => match TOP_FIELDS.iter().find(|f| **f == name) {
            Some(top) if rest.is_empty() => Field::Top(top),
            Some(top) => {
                cx.push(
                    Diagnostic::new(Code::UnknownField, format!("`{top}` has no field `{}`", rest.join(".")))
                        .at(&cx.file, span, "not a map")
                        .with_help(format!("`{top}` is a single value; compare it directly")),
                );
                return None;
            }
            None => {
                let candidates = TOP_FIELDS.iter().chain(MAP_FIELDS).copied();
                cx.push(
                    Diagnostic::new(Code::UnknownField, format!("unknown event field `{written}`"))
                        .at(&cx.file, span, "not a field of the event")
                        .with_help(format!(
                            "labels are written `labels.{name}` and annotations `annotations.{name}`; the event's own fields are {}",
                            quoted_list(TOP_FIELDS)
                        ))
                        .suggest(name, candidates),
                );
                return None;
            }
        },
    };
    Some(field)
}

/// Splits a string argument into text and `{field}` placeholders (`{{` and `}}` are literal
/// braces). `raw_start` is the offset of the string's first character in the file, used to
/// point at a bad placeholder when the string has no escapes.
pub(super) fn template(cx: &mut Cx, text: &str, string_span: Span) -> Option<Vec<TemplatePart>> {
    let exact = !cx.file.slice(string_span).contains('\\');
    let at = |start: usize, end: usize| {
        if exact { Span::new(string_span.start + 1 + start, string_span.start + 1 + end) } else { string_span }
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut ok = true;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let Some(close) = placeholder_end(&text[i + 1..]).map(|n| n + 1) else {
                    cx.push(
                        Diagnostic::new(Code::ArgumentType, "this `{` starts a placeholder that is never closed")
                            .at(&cx.file, at(i, i + 1), "unclosed placeholder")
                            .with_help("close it, as in `{labels.pod}`, or write `{{` for a literal brace"),
                    );
                    return None;
                };
                let inner = &text[i + 1..i + close];
                if !literal.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                }
                let span = at(i, i + close + 1);
                match crate::dsl::parse_field_path(inner.trim()) {
                    Some(segs) => match resolve_segments(cx, &segs, span, inner.trim()) {
                        Some(f) => parts.push(TemplatePart::Field(f)),
                        None => ok = false,
                    },
                    None => {
                        cx.push(
                            Diagnostic::new(Code::UnknownField, format!("`{{{inner}}}` is not an event field"))
                                .at(&cx.file, span, "not a field")
                                .with_help("a placeholder names one event field, e.g. `{labels.pod}` or `{labels[\"app.kubernetes.io/name\"]}`; write `{{` and `}}` for literal braces"),
                        );
                        ok = false;
                    }
                }
                for _ in 0..inner.chars().count() + 1 {
                    chars.next();
                }
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Text(literal));
    }
    ok.then_some(parts)
}

/// The offset of the `}` closing a placeholder, in the text after its `{`; braces inside a
/// quoted key (`{labels["a}b"]}`) do not count.
fn placeholder_end(rest: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\\' if quoted && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
        escaped = false;
    }
    None
}
