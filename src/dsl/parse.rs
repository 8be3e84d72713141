//! Builds the AST from pest's parse tree.

use super::ast::*;
use super::grammar::{Rule, SparkyParser};
use super::syntax_error;
use crate::diagnostics::{Code, Diagnostic, SourceFile, Span};
use pest::Parser;
use pest::iterators::Pair;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, Once};

/// Brackets nested deeper than this are refused before parsing: the parser and the AST
/// builder recurse, and no real playbook comes close.
const MAX_NESTING: usize = 64;

/// Bounds the work pest may do on one file, so hostile input cannot make it spin.
const PEST_CALL_LIMIT: usize = 20_000_000;

/// Parses one file. Returns the AST when the text is well formed, and every problem found
/// while reading it (a syntax error stops the file; bad values inside it do not).
pub fn parse_file(file: &Arc<SourceFile>) -> (Option<File>, Vec<Diagnostic>) {
    static INIT: Once = Once::new();
    INIT.call_once(|| pest::set_call_limit(NonZeroUsize::new(PEST_CALL_LIMIT)));

    if let Some(at) = file.invalid_utf8_at {
        let diag = Diagnostic::new(Code::InvalidUtf8, "this file is not valid UTF-8 text")
            .at(file, Span::new(at, at + 1), "the first invalid byte is here")
            .with_help("save the file as UTF-8; playbooks are text files");
        return (None, vec![diag]);
    }
    if let Some(diag) = check_nesting(file) {
        return (None, vec![diag]);
    }
    let pairs = match SparkyParser::parse(Rule::file, &file.text) {
        Ok(pairs) => pairs,
        Err(_) => return (None, vec![syntax_error::to_diagnostic(file, &parse_error_in_detail(&file.text))]),
    };
    let mut builder = Builder { file: file.clone(), diags: Vec::new() };
    let mut items = Vec::new();
    for pair in pairs.flatten().filter(|p| matches!(p.as_rule(), Rule::playbook | Rule::list_def | Rule::fn_def)) {
        items.push(match pair.as_rule() {
            Rule::playbook => Item::Playbook(builder.playbook(pair)),
            Rule::list_def => Item::List(builder.list_def(pair)),
            _ => Item::Helper(builder.fn_def(pair)),
        });
    }
    (Some(File { items }), builder.diags)
}

/// Parses a whole string as a field path (`labels.pod`, `labels["app.kubernetes.io/name"]`),
/// for `{...}` placeholders in templates. `None` when it is not exactly one path.
pub fn parse_field_path(text: &str) -> Option<Vec<String>> {
    let pair = SparkyParser::parse(Rule::field_path, text).ok()?.next()?;
    if pair.as_span().end() != text.len() {
        return None;
    }
    Some(
        pair.into_inner()
            .map(|p| match p.as_rule() {
                Rule::string => unescape(first(p).as_str()),
                _ => p.as_str().to_string(),
            })
            .collect(),
    )
}

/// Parses `text`, known to be invalid, again with pest's error detail (the tokens it expected
/// and the rules it was in) to explain the error in words. Detail tracking slows every parse,
/// so it is on only here; the switch is global to pest, hence the lock: concurrent error
/// parses must not turn it off under each other.
fn parse_error_in_detail(text: &str) -> pest::error::Error<Rule> {
    static DETAIL: Mutex<()> = Mutex::new(());
    let _guard = DETAIL.lock().unwrap_or_else(|p| p.into_inner());
    pest::set_error_detail(true);
    let result = SparkyParser::parse(Rule::file, text);
    pest::set_error_detail(false);
    match result {
        Err(e) => e,
        Ok(_) => unreachable!("pest parses the same text the same way"),
    }
}

/// Refuses absurd nesting of `{`, `[` and `(` before the recursive parser sees it.
fn check_nesting(file: &Arc<SourceFile>) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (b, i) in super::brackets::brackets(&file.text) {
        if !super::brackets::is_open(b) {
            depth = depth.saturating_sub(1);
            continue;
        }
        depth += 1;
        if depth > MAX_NESTING {
            return Some(
                Diagnostic::new(Code::UnexpectedInput, format!("brackets are nested more than {MAX_NESTING} deep"))
                    .at(file, Span::new(i, i + 1), "too deep here")
                    .with_help("split the expression or the list into smaller pieces"),
            );
        }
    }
    None
}

struct Builder {
    file: Arc<SourceFile>,
    diags: Vec<Diagnostic>,
}

/// The meaningful children of a pair: keywords are only there for the grammar.
fn children(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_keyword(p.as_rule()))
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_list
            | Rule::kw_fn
            | Rule::kw_playbook
            | Rule::kw_status
            | Rule::kw_owner
            | Rule::kw_priority
            | Rule::kw_tags
            | Rule::kw_on
            | Rule::kw_from
            | Rule::kw_schedule
            | Rule::kw_every
            | Rule::kw_cron
            | Rule::kw_tz
            | Rule::kw_exists
            | Rule::kw_missing
            | Rule::kw_in
            | Rule::kw_not
            | Rule::kw_when
            | Rule::kw_l1
            | Rule::kw_l2
            | Rule::kw_l3
            | Rule::kw_guard
            | Rule::kw_success_rate
            | Rule::kw_over
            | Rule::kw_min
            | Rule::kw_runs
            | Rule::kw_blast_radius
            | Rule::kw_cooldown
            | Rule::kw_per
            | Rule::kw_at_most
            | Rule::kw_do
            | Rule::kw_verify
            | Rule::kw_resolved
            | Rule::kw_within
            | Rule::kw_delivered
            | Rule::kw_probe
            | Rule::kw_fix
            | Rule::kw_min_confidence
            | Rule::kw_jira
            | Rule::kw_page
    )
}

fn span(pair: &Pair<'_, Rule>) -> Span {
    pair.as_span().into()
}

impl Builder {
    fn out_of_range(&mut self, span: Span, what: &str, help: &str) {
        self.diags.push(
            Diagnostic::new(Code::ValueOutOfRange, format!("{what} is too large"))
                .at(&self.file, span, "out of range")
                .with_help(help.to_string()),
        );
    }

    fn docs(&self, pair: Pair<'_, Rule>) -> Docs {
        let span = span(&pair);
        let lines = pair
            .into_inner()
            .map(|l| {
                let text = l.as_str().trim_end_matches('\r');
                let text = text.strip_prefix("///").unwrap_or(text);
                text.strip_prefix(' ').unwrap_or(text).to_string()
            })
            .collect();
        Docs { lines, span }
    }

    fn list_def(&mut self, pair: Pair<'_, Rule>) -> ListDef {
        let sp = span(&pair);
        let mut it = children(pair);
        let docs = self.docs(it.next().expect("grammar: docs"));
        let name = ident(it.next().expect("grammar: list name"));
        let values = self.list_values(it.next().expect("grammar: list literal"));
        ListDef { docs, name, values, span: sp }
    }

    fn fn_def(&mut self, pair: Pair<'_, Rule>) -> HelperDef {
        let sp = span(&pair);
        let mut it = children(pair);
        let docs = self.docs(it.next().expect("grammar: docs"));
        let head = it.next().expect("grammar: fn head");
        let head_span = span(&head);
        let mut names = children(head).map(ident);
        let name = names.next().expect("grammar: fn name");
        let params = names.collect();
        let body = it.next().expect("grammar: fn body");
        let source_span = Span::new(head_span.start, span(&body).end);
        let text = self.file.slice(source_span).to_string();
        HelperDef { docs, name, params, source: RhaiSource { text, span: source_span }, span: sp }
    }

    fn playbook(&mut self, pair: Pair<'_, Rule>) -> Playbook {
        let sp = span(&pair);
        let mut it = children(pair);
        let docs = self.docs(it.next().expect("grammar: docs"));
        let id_pair = it.next().expect("grammar: playbook id");
        let id = Spanned::new(id_pair.as_str().to_string(), span(&id_pair));
        let title = self.string(it.next().expect("grammar: title"));
        let entries = it.map(|p| self.entry(p)).collect();
        Playbook { docs, id, title, entries, span: sp }
    }

    fn entry(&mut self, pair: Pair<'_, Rule>) -> Entry {
        let sp = span(&pair);
        let rule = pair.as_rule();
        let kind = match rule {
            Rule::status_stmt => EntryKind::Status(ident(first(pair))),
            Rule::owner_stmt => EntryKind::Owner(self.string(first(pair))),
            Rule::priority_stmt => {
                let p = first(pair);
                let s = span(&p);
                let n = match p.as_str().parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => {
                        self.out_of_range(
                            s,
                            "the priority",
                            "priorities are whole numbers such as `10` or `100`; higher decides first",
                        );
                        0
                    }
                };
                EntryKind::Priority(Spanned::new(n, s))
            }
            Rule::tags_stmt => EntryKind::Tags(self.list_values(first(pair))),
            Rule::trigger => EntryKind::Trigger(self.trigger(first(pair))),
            Rule::when_block => EntryKind::When(self.rhai_block(first(pair))),
            Rule::l1_block => EntryKind::L1(self.l1(pair)),
            Rule::l2_block => EntryKind::L2(self.l2(pair)),
            Rule::l3_block => EntryKind::L3(self.l3(pair)),
            other => unreachable!("grammar: unexpected playbook entry {other:?}"),
        };
        Entry { kind, span: sp }
    }

    fn trigger(&mut self, pair: Pair<'_, Rule>) -> Trigger {
        match pair.as_rule() {
            Rule::schedule_trigger => {
                let inner = first(pair);
                match inner.as_rule() {
                    Rule::every => Trigger::Every(self.duration(first(inner))),
                    _ => {
                        let mut it = children(inner);
                        let expr = self.string(it.next().expect("grammar: cron expression"));
                        let tz = it.next().map(|p| self.string(p));
                        Trigger::Cron { expr, tz }
                    }
                }
            }
            _ => {
                let mut kind = None;
                let mut source = None;
                let mut matchers = Vec::new();
                for p in children(pair) {
                    match p.as_rule() {
                        Rule::ident if kind.is_none() => kind = Some(ident(p)),
                        Rule::ident => source = Some(ident(p)),
                        _ => matchers = children(p).map(|m| self.matcher(m)).collect(),
                    }
                }
                Trigger::Event { kind: kind.expect("grammar: trigger kind"), source, matchers }
            }
        }
    }

    fn matcher(&mut self, pair: Pair<'_, Rule>) -> Matcher {
        let sp = span(&pair);
        let mut it = children(pair);
        let field = self.field_path(it.next().expect("grammar: matcher field"));
        let op_pair = it.next().expect("grammar: matcher operator");
        let op_span = span(&op_pair);
        let (op, value) = match op_pair.as_rule() {
            Rule::exists_op => (MatchOp::Exists, None),
            Rule::missing_op => (MatchOp::Missing, None),
            Rule::in_matcher => {
                let mut inner = op_pair.into_inner();
                let which = inner.next().expect("grammar: in operator");
                let op = if which.as_rule() == Rule::not_in_op { MatchOp::NotIn } else { MatchOp::In };
                let op_span = span(&which);
                let value = self.value(inner.next().expect("grammar: in value"));
                return Matcher { field, op: Spanned::new(op, op_span), value: Some(value), span: sp };
            }
            _ => {
                let mut inner = op_pair.into_inner();
                let op_tok = inner.next().expect("grammar: operator");
                let op = match op_tok.as_str() {
                    "==" => MatchOp::Eq,
                    "!=" => MatchOp::Ne,
                    "=~" => MatchOp::Matches,
                    "!~" => MatchOp::NotMatches,
                    "<" => MatchOp::Lt,
                    "<=" => MatchOp::Le,
                    ">" => MatchOp::Gt,
                    _ => MatchOp::Ge,
                };
                let value = self.value(inner.next().expect("grammar: compared value"));
                return Matcher { field, op: Spanned::new(op, span(&op_tok)), value: Some(value), span: sp };
            }
        };
        Matcher { field, op: Spanned::new(op, op_span), value, span: sp }
    }

    fn field_path(&mut self, pair: Pair<'_, Rule>) -> FieldPath {
        let sp = span(&pair);
        let segments = pair
            .into_inner()
            .map(|p| match p.as_rule() {
                Rule::string => unescape(first(p).as_str()),
                _ => p.as_str().to_string(),
            })
            .collect();
        FieldPath { segments, span: sp }
    }

    fn rhai_block(&self, pair: Pair<'_, Rule>) -> RhaiSource {
        let body = first(pair);
        RhaiSource { text: body.as_str().to_string(), span: span(&body) }
    }

    fn l1(&mut self, pair: Pair<'_, Rule>) -> L1Block {
        let sp = span(&pair);
        let mut block = L1Block { title: None, guards: Vec::new(), actions: Vec::new(), verify: Vec::new(), span: sp };
        for p in children(pair) {
            match p.as_rule() {
                Rule::string => block.title = Some(self.string(p)),
                Rule::guard => block.guards.push(self.guard(p)),
                Rule::do_stmt => block.actions.push(self.call(first(p))),
                _ => block.verify.push(self.verify(p)),
            }
        }
        block
    }

    fn guard(&mut self, pair: Pair<'_, Rule>) -> Guard {
        let sp = span(&pair);
        let inner = first(pair);
        let rule = inner.as_rule();
        let mut it = children(inner);
        let kind = match rule {
            Rule::guard_success_rate => GuardKind::SuccessRate {
                min_percent: self.percent(it.next().expect("grammar: rate")),
                window: self.duration(it.next().expect("grammar: window")),
                min_runs: self.uint(it.next().expect("grammar: runs")),
            },
            Rule::guard_blast_radius => GuardKind::BlastRadius { max: self.uint(it.next().expect("grammar: radius")) },
            Rule::guard_when => GuardKind::When { condition: self.rhai_block(it.next().expect("grammar: condition")) },
            Rule::guard_cooldown => GuardKind::Cooldown {
                period: self.duration(it.next().expect("grammar: period")),
                per: it.next().map(|p| self.field_path(p)),
            },
            _ => GuardKind::AtMost {
                count: self.uint(it.next().expect("grammar: count")),
                window: self.duration(it.next().expect("grammar: window")),
            },
        };
        Guard { kind, span: sp }
    }

    fn verify(&mut self, pair: Pair<'_, Rule>) -> Verify {
        let sp = span(&pair);
        let inner = first(pair);
        let kind = match inner.as_rule() {
            Rule::verify_resolved => VerifyKind::Resolved { within: self.duration(first(inner)) },
            Rule::verify_delivered => VerifyKind::Delivered,
            Rule::verify_probe => {
                let mut url = None;
                let mut status = None;
                let mut within = None;
                for p in children(inner) {
                    match p.as_rule() {
                        Rule::string => url = Some(self.string(p)),
                        Rule::int => {
                            let sp = span(&p);
                            status = Some(Spanned::new(p.as_str().parse().unwrap_or(u64::MAX), sp));
                        }
                        _ => within = Some(self.duration(p)),
                    }
                }
                VerifyKind::Probe {
                    url: url.expect("grammar: probe url"),
                    status,
                    within: within.expect("grammar: probe deadline"),
                }
            }
            _ => {
                let mut it = children(inner);
                let condition = self.rhai_block(it.next().expect("grammar: verify condition"));
                let within = self.duration(it.next().expect("grammar: verify deadline"));
                VerifyKind::When { condition, within }
            }
        };
        Verify { kind, span: sp }
    }

    fn call(&mut self, pair: Pair<'_, Rule>) -> Call {
        let sp = span(&pair);
        let mut it = children(pair);
        let name_pair = it.next().expect("grammar: call name");
        let name = Spanned::new(name_pair.as_str().to_string(), span(&name_pair));
        let args = it
            .map(|arg| {
                let mut a = children(arg);
                let name = ident(a.next().expect("grammar: argument name"));
                let value = self.value(a.next().expect("grammar: argument value"));
                Arg { name, value }
            })
            .collect();
        Call { name, args, span: sp }
    }

    fn l2(&mut self, pair: Pair<'_, Rule>) -> L2Block {
        let sp = span(&pair);
        let mut block = L2Block { title: None, fixes: Vec::new(), min_confidence: Vec::new(), span: sp };
        for p in children(pair) {
            match p.as_rule() {
                Rule::string => block.title = Some(self.string(p)),
                Rule::fix_stmt => block.fixes.push(self.call(first(p))),
                _ => block.min_confidence.push(self.percent(first(p))),
            }
        }
        block
    }

    fn l3(&mut self, pair: Pair<'_, Rule>) -> L3Block {
        let sp = span(&pair);
        let mut block = L3Block { priority: Vec::new(), jira: Vec::new(), page: Vec::new(), span: sp };
        for p in children(pair) {
            match p.as_rule() {
                Rule::priority_level => block.priority.push(Spanned::new(p.as_str().to_string(), span(&p))),
                Rule::l3_priority => {
                    let level = first(p);
                    block.priority.push(Spanned::new(level.as_str().to_string(), span(&level)));
                }
                Rule::l3_jira => block.jira.push(self.string(first(p))),
                _ => {
                    let v = first(p);
                    block.page.push(Spanned::new(v.as_str() == "on", span(&v)));
                }
            }
        }
        block
    }

    fn list_values(&mut self, pair: Pair<'_, Rule>) -> Vec<Value> {
        children(pair).map(|v| self.value(v)).collect()
    }

    fn value(&mut self, pair: Pair<'_, Rule>) -> Value {
        // `value` wraps exactly one alternative.
        let pair = if pair.as_rule() == Rule::value { first(pair) } else { pair };
        let sp = span(&pair);
        let kind = match pair.as_rule() {
            Rule::string => ValueKind::Str(self.string(pair).node),
            Rule::duration => ValueKind::Duration(self.duration(pair).node),
            Rule::percent => ValueKind::Percent(self.percent(pair).node),
            Rule::number => {
                let text = pair.as_str();
                if text.contains('.') {
                    ValueKind::Float(text.parse().unwrap_or(0.0))
                } else {
                    match text.parse::<i64>() {
                        Ok(n) => ValueKind::Int(n),
                        Err(_) => {
                            self.out_of_range(sp, &format!("the number `{text}`"), "numbers must fit in 64 bits");
                            ValueKind::Int(0)
                        }
                    }
                }
            }
            Rule::boolean => ValueKind::Bool(pair.as_str() == "true"),
            Rule::list_lit => ValueKind::List(self.list_values(pair)),
            _ => ValueKind::Path(self.field_path(pair)),
        };
        Value { kind, span: sp }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> Spanned<String> {
        let sp = span(&pair);
        Spanned::new(unescape(first(pair).as_str()), sp)
    }

    fn duration(&mut self, pair: Pair<'_, Rule>) -> Spanned<Duration> {
        let sp = span(&pair);
        let millis = parse_duration(pair.as_str());
        if millis.is_none() {
            self.out_of_range(sp, &format!("the duration `{}`", pair.as_str()), "use a duration below 100 years");
        }
        // The error is reported here; the largest value keeps later checks ("cannot be zero")
        // from adding a second, misleading one.
        Spanned::new(Duration { millis: millis.unwrap_or(u64::MAX) }, sp)
    }

    fn percent(&mut self, pair: Pair<'_, Rule>) -> Spanned<f64> {
        let sp = span(&pair);
        let n = pair.as_str().trim_end_matches('%').parse::<f64>().unwrap_or(f64::INFINITY);
        Spanned::new(n, sp)
    }

    fn uint(&mut self, pair: Pair<'_, Rule>) -> Spanned<u64> {
        let sp = span(&pair);
        let n = match pair.as_str().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                self.out_of_range(sp, &format!("the number `{}`", pair.as_str()), "numbers must fit in 64 bits");
                // Reported here; the largest value keeps later checks ("cannot be zero") quiet.
                u64::MAX
            }
        };
        Spanned::new(n, sp)
    }
}

fn first(pair: Pair<'_, Rule>) -> Pair<'_, Rule> {
    children(pair).next().expect("grammar: rule has a child")
}

fn ident(pair: Pair<'_, Rule>) -> Spanned<String> {
    Spanned::new(pair.as_str().to_string(), span(&pair))
}

/// `30s`, `1h30m`, `250ms` in milliseconds; `None` on overflow or beyond 100 years.
pub fn parse_duration(text: &str) -> Option<u64> {
    const MAX: u64 = 100 * 365 * 86_400_000;
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(factor)?)?;
    }
    (total <= MAX).then_some(total)
}

/// `\"` → `"`, `\\` → `\`, `\n`, `\t`; any other backslash is kept, so regexes read naturally.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(900_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(parse_duration("101w").map(|_| ()), Some(()));
        assert_eq!(parse_duration("40000d"), None);
    }

    #[test]
    fn unescapes_quotes_and_keeps_regex_escapes() {
        assert_eq!(unescape(r#"a\"b\\c"#), "a\"b\\c");
        assert_eq!(unescape(r"^\d+$"), r"^\d+$");
    }
}
