//! Turns pest's parse errors into diagnostics in plain words.
//!
//! pest reports the grammar rules and literal tokens it tried at the farthest position it
//! reached. Users never see a rule name: each rule maps to what a person would call it, and the
//! rules being parsed at the time give the context ("in the trigger") and a help line showing
//! the construct's shape.

use super::grammar::Rule;
use crate::diagnostics::{Code, Diagnostic, SourceFile, Span};
use pest::error::{Error, ErrorVariant, InputLocation};
use std::collections::BTreeSet;
use std::sync::Arc;

pub(super) fn to_diagnostic(file: &Arc<SourceFile>, err: &Error<Rule>) -> Diagnostic {
    let text = &file.text;
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());

    if let ErrorVariant::CustomError { message } = &err.variant {
        // pest's only custom errors are its call limit.
        return Diagnostic::new(Code::UnexpectedInput, format!("the file is too complex to parse ({message})"))
            .at(file, Span::new(pos, pos), "here")
            .with_help("split the playbook into smaller pieces");
    }

    let attempts = err.parse_attempts();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut contexts: Vec<Rule> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &err.variant {
        expected.extend(positives.iter().filter_map(|r| describe(*r)).map(str::to_string));
    }
    if let Some(attempts) = &attempts {
        // pest does not export the token type; its Display is the literal itself, and
        // character ranges and built-in rules (`a..z`, `BUILTIN_RULE`) are not worth showing.
        for token in attempts.expected_tokens() {
            let token = token.to_string();
            if !token.contains("..") && token != "BUILTIN_RULE" && !token.trim().is_empty() {
                expected.insert(format!("`{token}`"));
            }
        }
        for stack in &attempts.call_stacks {
            contexts.extend(stack.parent);
        }
    }
    if expected.contains("`///`") {
        // Documentation may precede any item; saying so adds nothing to "expected `playbook`".
        expected.remove("`///`");
    }

    if let Some(d) = unterminated_string(file, pos) {
        return d;
    }
    let at_end = text[pos..].trim().is_empty();
    if at_end && expected.contains("`}`") {
        if let Some(open) = last_unclosed_brace(text) {
            return Diagnostic::new(Code::UnclosedBlock, "this `{` is never closed")
                .at(file, Span::new(open, open + 1), "opened here")
                .with_secondary(Span::new(pos, pos), "the file ends here")
                .with_help("add the missing `}`; every block opened with `{` must be closed");
        }
    }

    let found = found_token(text, pos);
    let context = contexts.iter().filter_map(|r| context_of(*r)).next();
    let mut message = format!("expected {}, found {}", join_alternatives(&expected), found);
    if let Some((where_, _)) = context {
        message = format!("{message} {where_}");
    }
    let end = pos + found_len(text, pos);
    let mut diag = Diagnostic::new(Code::UnexpectedInput, message).at(file, Span::new(pos, end), "unexpected here");
    if let Some((_, shape)) = context {
        diag = diag.with_help(shape.to_string());
    } else if expected.contains("`playbook`") {
        diag = diag.with_help("a file holds `playbook ID \"Title\" { ... }`, or `list` and `fn` definitions");
    }
    diag
}

/// What a person would call the thing a rule matches; `None` for rules that never stand alone.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::string | Rule::string_inner => "a string in double quotes",
        Rule::ident => "a name",
        Rule::playbook_id => "a playbook id such as `PB-001`",
        Rule::duration => "a duration such as `15m`",
        Rule::percent => "a percentage such as `99%`",
        Rule::int => "a whole number",
        Rule::number => "a number",
        Rule::value => "a value",
        Rule::boolean => "`true` or `false`",
        Rule::list_lit => "a list such as `[\"a\", \"b\"]`",
        Rule::cmp_op => "an operator (`==`, `!=`, `=~`, `!~`, `<`, `<=`, `>`, `>=`, `in`, `exists`)",
        Rule::field_path => "an event field such as `labels.pod`",
        Rule::matcher => "a field matcher such as `labels.pod exists`",
        Rule::call | Rule::dotted_name => "an action such as `k8s.delete_pod(...)`",
        Rule::arg => "a named argument such as `pod = labels.pod`",
        Rule::priority_level => "a priority `P1`..`P4`",
        Rule::on_off => "`on` or `off`",
        Rule::rhai_block => "`{` starting a condition",
        Rule::EOI => "the end of the file",
        _ => return None,
    })
}

/// Where the parser was, and the shape of that construct, for the message and the help.
fn context_of(rule: Rule) -> Option<(&'static str, &'static str)> {
    Some(match rule {
        Rule::trigger | Rule::event_trigger | Rule::matcher_block | Rule::matcher | Rule::in_matcher | Rule::cmp_matcher => (
            "in the trigger",
            "a trigger reads `on alert from alertmanager { labels.alertname == \"KubePodCrashLooping\" }`",
        ),
        Rule::schedule_trigger | Rule::every | Rule::cron => {
            ("in the schedule", "a schedule reads `on schedule every 1h` or `on schedule cron \"0 9 * * 1\" tz \"UTC\"`")
        }
        Rule::guard
        | Rule::guard_success_rate
        | Rule::guard_blast_radius
        | Rule::guard_cooldown
        | Rule::guard_at_most => (
            "in the guard",
            "guards read `guard success_rate >= 99% over 30d min 20 runs`, `guard blast_radius <= 1`, `guard cooldown 15m per labels.pod` or `guard at_most 5 per 1h`",
        ),
        Rule::do_stmt | Rule::call | Rule::arg => {
            ("in the action call", "an action reads `do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)`")
        }
        Rule::verify_stmt | Rule::verify_resolved | Rule::verify_when => (
            "in the verification",
            "verification reads `verify resolved within 10m`, `verify delivered` or `verify when { ... } within 5m`",
        ),
        Rule::l1_block => ("in the `l1` block", "an `l1` block holds `guard ...`, `do ...` and `verify ...` statements"),
        Rule::l2_block | Rule::fix_stmt | Rule::min_confidence_stmt => {
            ("in the `l2` block", "an `l2` block holds `fix <generator>(...)` and `min_confidence 80%`")
        }
        Rule::l3_block | Rule::l3_priority | Rule::l3_jira | Rule::l3_page => {
            ("in the `l3` block", "write `l3 priority P2`, or `l3 { priority P1  jira \"OPS\"  page on }`")
        }
        Rule::when_block | Rule::rhai_block => ("in the condition", "a condition reads `when { <rhai expression> }`"),
        Rule::status_stmt => ("in the status", "write `status active`, `status draft` or `status disabled`"),
        Rule::owner_stmt => ("in the owner", "write `owner \"team:platform\"`"),
        Rule::priority_stmt => ("in the priority", "write `priority 10` (higher runs first)"),
        Rule::tags_stmt => ("in the tags", "write `tags [\"k8s\", \"pods\"]`"),
        Rule::list_def => ("in the list", "a list reads `list benign_reasons = [\"Error\", \"Completed\"]`"),
        Rule::fn_def | Rule::fn_head => ("in the helper", "a helper reads `fn is_prod(ns) { ns.starts_with(\"prod\") }`"),
        Rule::list_lit => ("in the list", "a list reads `[\"a\", \"b\"]`, its items separated by commas"),
        Rule::playbook => (
            "in the playbook",
            "a playbook holds `status`, `owner`, `priority`, `tags`, `on`, `when`, `l1`, `l2` and `l3` statements",
        ),
        _ => return None,
    })
}

fn join_alternatives(expected: &BTreeSet<String>) -> String {
    let items: Vec<&str> = expected.iter().map(String::as_str).collect();
    match items.as_slice() {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] if rest.len() < 10 => format!("{} or {}", rest.join(", "), last),
        _ => format!("one of {} things, such as {}", items.len(), items[..4].join(", ")),
    }
}

/// The token at `pos`, quoted for the message.
fn found_token(text: &str, pos: usize) -> String {
    let rest = &text[pos..];
    match rest.chars().next() {
        None => "the end of the file".to_string(),
        Some('\n') | Some('\r') => "the end of the line".to_string(),
        Some(_) => {
            let len = found_len(text, pos);
            format!("`{}`", rest[..len].replace('`', "'"))
        }
    }
}

/// Length of the token at `pos`: a word, or one character.
fn found_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos..];
    let word = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
    if word > 0 {
        return word.min(40);
    }
    rest.chars().next().map(char::len_utf8).unwrap_or(0)
}

/// A string opened on the error's line and not closed before its end.
fn unterminated_string(file: &Arc<SourceFile>, pos: usize) -> Option<Diagnostic> {
    let text = &file.text;
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[pos..].find('\n').map(|i| pos + i).unwrap_or(text.len());
    let line = &text[line_start..line_end];
    if line.trim_start().starts_with("//") {
        return None;
    }
    let mut open: Option<usize> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (open, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(_), '"') if !escaped => open = None,
            (None, '"') => open = Some(i),
            (None, '/') if line[i..].starts_with("//") => break,
            _ => {}
        }
        escaped = false;
    }
    let start = line_start + open?;
    if pos < start {
        return None;
    }
    Some(
        Diagnostic::new(Code::UnterminatedString, "this string is not closed")
            .at(file, Span::new(start, line_end), "the string starts here and runs to the end of the line")
            .with_help("add the closing `\"`; a string cannot span lines (write `\\n` for a line break)"),
    )
}

/// The offset of the last `{` with no matching `}`, outside strings and comments.
fn last_unclosed_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut stack = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => stack.push(i),
            b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack.pop()
}
