//! Turns pest's parse errors into diagnostics in plain words.
//!
//! pest reports the grammar rules and literal tokens it tried at the farthest position it
//! reached. Users never see a rule name: each rule maps to what a person would call it, and the
//! text around the error (the open bracket, the statement the line starts with, the enclosing
//! block) gives the context ("in the trigger") and a help line showing the construct's shape.
//! pest's own rule call stacks are not used for that: their parent is always the whole file.

use super::grammar::Rule;
use crate::diagnostics::{Code, Diagnostic, SourceFile, Span};
use pest::error::{Error, ErrorVariant, InputLocation};
use std::collections::BTreeSet;
use std::sync::Arc;

pub(super) fn to_diagnostic(file: &Arc<SourceFile>, err: &Error<Rule>) -> Diagnostic {
    let text = &file.text;
    let rule_pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());

    if let ErrorVariant::CustomError { message } = &err.variant {
        // pest's only custom errors are its call limit.
        return Diagnostic::new(Code::UnexpectedInput, format!("the file is too complex to parse ({message})"))
            .at(file, Span::new(rule_pos, rule_pos), "here")
            .with_help("split the playbook into smaller pieces");
    }

    let positives: Vec<Rule> = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    // The literal tokens pest tried at the farthest point it reached. pest does not export the
    // token type; its Display is the literal itself. Character ranges and built-in rules
    // (`a..z`, `BUILTIN_RULE`) are not worth showing.
    let mut raw_tokens: Vec<String> = Vec::new();
    let mut farthest = rule_pos;
    if let Some(attempts) = err.parse_attempts() {
        farthest = attempts.max_position.min(text.len());
        for token in attempts.expected_tokens() {
            let token = token.to_string();
            if !token.contains("..") && token != "BUILTIN_RULE" {
                raw_tokens.push(token);
            }
        }
    }

    if let Some(d) = unterminated_string(file, rule_pos) {
        return d;
    }
    if let Some(d) = misplaced_doc_comment(file, rule_pos) {
        return d;
    }
    if let Some(d) = doc_comment_documents_nothing(file, rule_pos) {
        return d;
    }
    // pest reports where the failing rule started; the farthest point it reached, where it
    // wanted a `,` or a `=`, is where the text went wrong. Inside a token (a duration `15`
    // without its unit) spaces are not expected there, and the token's start is the place.
    let inside_token = !raw_tokens.iter().any(|t| is_blank(t));
    let mut pos = if farthest > rule_pos && !inside_token { farthest } else { rule_pos };
    let at_rule = pos == rule_pos;

    let at_end = text[pos..].trim().is_empty();
    let between_statements = raw_tokens.iter().any(|t| t == "}" || t == "playbook");
    if at_end
        && between_statements
        && let Some(open) = last_unclosed_brace(text)
    {
        // Point at the last character: miette shows no label past the end of the text.
        let last = text.trim_end().char_indices().next_back().map(|(i, c)| (i, i + c.len_utf8())).unwrap_or((pos, pos));
        return Diagnostic::new(Code::UnclosedBlock, "this `{` is never closed")
            .at(file, Span::new(open, open + 1), "opened here")
            .with_secondary(Span::new(last.0, last.1), "the file ends here")
            .with_help("add the missing `}`; every block opened with `{` must be closed");
    }

    // What was expected: literal tokens, and for rules whose tokens say little (`"`, `P`),
    // what a person would call the rule.
    let mut words: BTreeSet<String> = BTreeSet::new();
    if !inside_token {
        // `-` and `_` are how a number or a name may start: never what the user missed.
        words.extend(raw_tokens.iter().filter(|t| !is_blank(t) && !is_comment(t) && *t != "-" && *t != "_").cloned());
    }
    // A statement cut short (`verify resolved` and no `within`): the next line's first token is
    // not the problem, the end of this one is.
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let mut cut_short = false;
    if !between_statements && pos > 0 && text[line_start..pos].trim().is_empty() {
        pos = text[..line_start].trim_end().len();
        cut_short = true;
    }
    let mut phrases: Vec<&'static str> = Vec::new();
    if at_rule {
        for rule in &positives {
            if let Some((phrase, leading)) = describe(*rule) {
                if !phrases.contains(&phrase) {
                    phrases.push(phrase);
                }
                for t in leading {
                    words.remove(*t);
                }
            }
        }
    }
    let context = context_at(text, pos);
    let found = found_token(text, pos);
    let end = pos + found_len(text, pos);
    let found_word = &text[pos..end];
    let mut suggestions: Vec<String> = words.iter().cloned().collect();
    if found_word == "=" {
        // `=` is one edit from every operator; the comparison is what was meant.
        suggestions.retain(|w| w == "==");
    } else if cut_short || found_word.chars().count() < 2 {
        // A lone bracket or the end of a line is one edit from any other punctuation.
        suggestions.clear();
    }
    if found_word == "}" && words.contains("playbook") {
        return Diagnostic::new(Code::UnexpectedInput, "this `}` closes no block")
            .at(file, Span::new(pos, end), "no `{` left open")
            .with_help("remove it; the block before it is already closed");
    }
    if context == Some(TRIGGER) {
        for p in phrases.iter_mut().filter(|p| **p == "a name") {
            *p = "a matcher such as `labels.pod exists`";
        }
    }
    if context.is_some_and(|c| c.0 == "in the playbook's first line") {
        for p in phrases.iter_mut().filter(|p| p.starts_with("a string")) {
            *p = "the playbook's title in double quotes";
        }
    }

    // A trigger whose matchers are written without their braces.
    let line_rest = text[pos..].lines().next().unwrap_or("");
    if words.contains("{") && positives.contains(&Rule::matcher_block) && looks_like_matcher(line_rest) {
        return Diagnostic::new(Code::UnexpectedInput, format!("expected `{{` after the trigger, found {found}"))
            .at(file, Span::new(pos, end), "this matcher needs to be inside `{ ... }`")
            .with_help("a trigger's matchers go in braces: `on alert from alertmanager { labels.alertname == \"KubePodCrashLooping\" }`");
    }
    if context.is_some_and(|c| c.0 == "in the schedule") && words.contains("every") {
        words.retain(|w| w == "every" || w == "cron");
    }

    let mut expected: Vec<String> = Vec::new();
    if words.contains("==") {
        for op in ["==", "!=", "=~", "!~", "<", "<=", ">", ">=", "in", "not", "exists", "missing"] {
            words.remove(op);
        }
        expected.push(OPERATORS.into());
        phrases.retain(|p| *p != OPERATORS);
    }
    if ["status", "owner", "on", "l1"].iter().all(|k| words.contains(*k)) {
        for k in ["status", "owner", "priority", "tags", "on", "when", "l1", "l2", "l3", "from", "{"] {
            words.remove(k);
        }
        expected.push("a statement (`status`, `owner`, `on`, `l1`, ...)".into());
    }
    expected.extend(phrases.iter().map(|p| p.to_string()));
    // `}` last: "expected `guard`, `do`, `verify` or `}`" reads better than `}` first.
    let close = words.remove("}");
    expected.extend(words.iter().map(|w| format!("`{w}`")));
    if close {
        expected.push("`}`".into());
    }

    let before = text[..pos].trim_end();
    let previous_start = match before.strip_suffix('"').and_then(|b| b.rfind('"')) {
        Some(quote) => quote,
        None => before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace() || "([{,".contains(*c))
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0),
    };
    let previous = &before[previous_start..];
    let punctuation = !expected.is_empty() && expected.iter().all(|e| !e.contains(char::is_alphanumeric));
    let message = if cut_short {
        // "expected `within` after `resolved`" says where; "in the verification" would repeat it.
        format!("expected {} after `{previous}`", join_alternatives(&expected))
    } else {
        let after = if punctuation && !previous.is_empty() { format!(" after `{previous}`") } else { String::new() };
        let message = format!("expected {}{after}, found {}", join_alternatives(&expected), found);
        match context {
            Some((where_, _)) => format!("{message} {where_}"),
            None => message,
        }
    };
    let label = if cut_short { "the statement ends too soon" } else { "unexpected here" };
    let mut diag = Diagnostic::new(Code::UnexpectedInput, message).at(file, Span::new(pos, end), label);
    if let Some((_, shape)) = context {
        diag = diag.with_help(shape.to_string());
    } else if suggestions.iter().any(|w| w == "playbook") {
        diag = diag.with_help("a file holds `playbook ID \"Title\" { ... }`, or `list` and `fn` definitions");
    }
    if !found_word.is_empty() {
        diag = diag.suggest(found_word, suggestions.iter().map(String::as_str));
    }
    diag
}

const OPERATORS: &str = "an operator (`==`, `=~`, `in`, `exists`, ...)";

/// Whitespace pest tries between tokens (including the byte-order mark).
fn is_blank(token: &str) -> bool {
    token.chars().all(|c| c.is_whitespace() || c == '\u{FEFF}')
}

fn is_comment(token: &str) -> bool {
    matches!(token, "//" | "/*" | "///")
}

/// Whether a line reads like a field matcher: a field, then an operator.
fn looks_like_matcher(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let _field = parts.next();
    matches!(
        parts.next(),
        Some("==" | "!=" | "=~" | "!~" | "<" | "<=" | ">" | ">=" | "in" | "not" | "exists" | "missing")
    )
}

/// What a person would call the thing a rule matches, and the literal tokens that stand for
/// its start (dropped from the message when the rule is named); `None` for rules that never
/// stand alone or whose tokens say it better.
fn describe(rule: Rule) -> Option<(&'static str, &'static [&'static str])> {
    Some(match rule {
        Rule::string | Rule::string_inner => ("a string in double quotes", &["\""]),
        Rule::ident => ("a name", &[]),
        Rule::playbook_id => ("a playbook id such as `PB-001`", &[]),
        Rule::duration => ("a duration such as `15m`", &[]),
        Rule::percent => ("a percentage such as `99%`", &[]),
        Rule::int => ("a whole number", &[]),
        Rule::number => ("a number", &[]),
        Rule::value => ("a value", &["\"", "[", "true", "false"]),
        Rule::boolean => ("`true` or `false`", &["true", "false"]),
        Rule::list_lit => ("a list such as `[\"a\", \"b\"]`", &["["]),
        Rule::cmp_op => (OPERATORS, &[]),
        Rule::field_path => ("an event field such as `labels.pod`", &[]),
        Rule::matcher => ("a field matcher such as `labels.pod exists`", &[]),
        Rule::call | Rule::dotted_name => ("an action such as `k8s.delete_pod(...)`", &[]),
        Rule::arg => ("a named argument such as `pod = labels.pod`", &[]),
        Rule::priority_level => ("a priority `P1`..`P4`", &["P", "p"]),
        Rule::on_off => ("`on` or `off`", &["on", "off"]),
        Rule::rhai_block => ("`{` starting a condition", &["{"]),
        Rule::EOI => ("the end of the file", &[]),
        _ => return None,
    })
}

type Context = (&'static str, &'static str);

const TRIGGER: Context =
    ("in the trigger", "a trigger reads `on alert from alertmanager { labels.alertname == \"KubePodCrashLooping\" }`");
const SCHEDULE: Context =
    ("in the schedule", "a schedule reads `on schedule every 1h` or `on schedule cron \"0 9 * * 1\" tz \"UTC\"`");
const ACTION: Context =
    ("in the action call", "an action reads `do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)`");
const FIX: Context = ("in the fix", "a fix reads `fix revert()` or `fix timeout(factor = 1.5, max = 2m)`");
const HELPER: Context = ("in the helper", "a helper reads `fn is_prod(ns) { ns.starts_with(\"prod\") }`");
const LIST: Context = ("in the list", "a list reads `[\"a\", \"b\"]`, its items separated by commas");

/// Where in the file `pos` is, and the shape of that construct, for the message and the help.
/// Read from the text: the innermost open bracket, else the statement the line starts with,
/// else the block around it.
fn context_at(text: &str, pos: usize) -> Option<Context> {
    let open = open_brackets(&text[..pos]);
    let first_word = |at: usize| -> (&str, &str) {
        let start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line = text[start..].lines().next().unwrap_or("");
        let word = line.trim_start().split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
        (word, line)
    };
    if let Some(&(bracket, at)) = open.last() {
        match bracket {
            b'[' => return Some(LIST),
            b'(' => {
                // The keyword of the call: `do`, `fix` or `fn`, wherever it is on the line.
                let (_, line) = first_word(at);
                let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
                let head = &line[..(at - line_start).min(line.len())];
                return Some(
                    match head
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .rev()
                        .find(|w| matches!(*w, "do" | "fix" | "fn"))
                    {
                        Some("fix") => FIX,
                        Some("fn") => HELPER,
                        _ => ACTION,
                    },
                );
            }
            _ => {}
        }
    }
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let before = text[line_start..pos].trim();
    let (word, line) = first_word(pos);
    if !before.is_empty() {
        let statement = match word {
            "on" if line.contains("schedule") => Some(SCHEDULE),
            "on" => Some(TRIGGER),
            "guard" => Some((
                "in the guard",
                "guards read `guard success_rate >= 99% over 30d min 20 runs`, `guard blast_radius <= 1`, `guard cooldown 15m per labels.pod`, `guard at_most 5 per 1h` or `guard when { ... }`",
            )),
            "do" => Some(ACTION),
            "verify" => Some((
                "in the verification",
                "verification reads `verify resolved within 10m`, `verify delivered` or `verify when { ... } within 5m`",
            )),
            "fix" => Some(FIX),
            "min_confidence" => Some(("in the `l2` block", "write `min_confidence 80%`")),
            "l3" | "jira" | "page" => {
                Some(("in the `l3` block", "write `l3 priority P2`, or `l3 { priority P1  jira \"OPS\"  page on }`"))
            }
            "when" => Some(("in the condition", "a condition reads `when { <rhai expression> }`")),
            "status" => Some(("in the status", "write `status active`, `status draft` or `status disabled`")),
            "owner" => Some(("in the owner", "write `owner \"team:platform\"`")),
            "priority" if open.len() > 1 => {
                Some(("in the `l3` block", "write `priority P1` to `priority P4` (P1 is the most urgent)"))
            }
            "priority" => Some(("in the priority", "write `priority 10` (higher runs first)")),
            "tags" => Some(("in the tags", "write `tags [\"k8s\", \"pods\"]`")),
            "list" => Some(("in the list", "a list reads `list benign_reasons = [\"Error\", \"Completed\"]`")),
            "fn" => Some(HELPER),
            "playbook" => Some(("in the playbook's first line", "a playbook starts `playbook PB-001 \"Title\" {`")),
            _ => None,
        };
        if statement.is_some() {
            return statement;
        }
    }
    let &(_, at) = open.last()?;
    Some(match first_word(at).0 {
        "l1" => ("in the `l1` block", "an `l1` block holds `guard ...`, `do ...` and `verify ...` statements"),
        "l2" => ("in the `l2` block", "an `l2` block holds `fix <generator>(...)` and `min_confidence 80%`"),
        "l3" => ("in the `l3` block", "an `l3` block holds `priority P1`, `jira \"OPS\"` and `page on` or `page off`"),
        "on" => TRIGGER,
        "playbook" => (
            "in the playbook",
            "a playbook holds `status`, `owner`, `priority`, `tags`, `on`, `when`, `l1`, `l2` and `l3` statements",
        ),
        _ => return None,
    })
}

/// The brackets open at the end of `text` (outside strings and comments), innermost last.
fn open_brackets(text: &str) -> Vec<(u8, usize)> {
    let mut stack = Vec::new();
    for (b, i) in super::brackets::brackets(text) {
        if super::brackets::is_open(b) {
            stack.push((b, i));
        } else {
            stack.pop();
        }
    }
    stack
}

fn join_alternatives(expected: &[String]) -> String {
    match expected {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {}", rest.join(", "), last),
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

/// Length of the token at `pos`: a word, a string on one line, or one character.
fn found_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos..];
    if let Some(body) = rest.strip_prefix('"')
        && let Some(close) = body.find(['"', '\n']).filter(|&i| body[i..].starts_with('"'))
        && close < 40
    {
        return close + 2;
    }
    let mut word = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
    if word > 40 {
        word = (0..=40).rev().find(|&i| rest.is_char_boundary(i)).unwrap_or(0);
    }
    if word > 0 {
        return word;
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
    open_brackets(text).into_iter().rev().find(|(b, _)| *b == b'{').map(|(_, at)| at)
}

/// `///` where a statement was expected: documentation belongs above an item.
fn misplaced_doc_comment(file: &Arc<SourceFile>, pos: usize) -> Option<Diagnostic> {
    let rest = &file.text[pos..];
    if !rest.starts_with("///") {
        return None;
    }
    let end = pos + rest.find('\n').unwrap_or(rest.len());
    Some(
        Diagnostic::new(
            Code::UnexpectedInput,
            "a `///` documentation comment can only come before a `playbook`, `list` or `fn`",
        )
        .at(file, Span::new(pos, end.min(pos + 3)), "documentation in the wrong place")
        .with_help("move it above `playbook` (it documents the whole playbook), or write `//` for an ordinary comment"),
    )
}

/// `///` lines at the end of the file, with nothing after them but blank lines and ordinary
/// comments: documentation of nothing.
fn doc_comment_documents_nothing(file: &Arc<SourceFile>, pos: usize) -> Option<Diagnostic> {
    let text = &file.text;
    // The `///` lines of the file's tail, found from its end: (start of the first, end of the last).
    let mut docs: Option<(usize, usize)> = None;
    let mut end = text.len();
    while end > 0 {
        let start = text[..end].trim_end_matches(['\n', '\r']).rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line = &text[start..end];
        let trimmed = line.trim();
        if trimmed.starts_with("///") {
            let from = start + (line.len() - line.trim_start().len());
            let to = start + line.trim_end().len();
            docs = Some((from, docs.map_or(to, |(_, to)| to)));
        } else if !(trimmed.is_empty() || trimmed.starts_with("//")) {
            break;
        }
        end = start;
    }
    let (from, to) = docs?;
    if pos < text[..from].trim_end().len() || last_unclosed_brace(&text[..from]).is_some() {
        return None;
    }
    Some(
        Diagnostic::new(Code::UnexpectedInput, "this `///` documentation comment documents nothing")
            .at(file, Span::new(from, to), "nothing follows it")
            .with_help(
                "put the `playbook`, `list` or `fn` it documents right below it, or write `//` for an ordinary comment",
            ),
    )
}
