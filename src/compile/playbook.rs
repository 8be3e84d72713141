//! One playbook: identity, triggers, condition and responses.

use super::model::*;
use super::{Cx, KINDS, SOURCES, call, condition, cron, fields, library};
use crate::actions;
use crate::diagnostics::{Code, Diagnostic, Span, quoted_list};
use crate::dsl::ast::{self, Duration, EntryKind, GuardKind, MatchOp, Spanned, Value, ValueKind, VerifyKind};
use crate::fix;

/// The shortest period a schedule may have.
const MIN_SCHEDULE_PERIOD: u64 = 60_000;
/// Largest regex (compiled size) a matcher may use.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Default minimum confidence of an L2 proposal, in percent.
const DEFAULT_MIN_CONFIDENCE: f64 = 80.0;

/// Compiles `pb`; `None` when it has errors (which are reported).
pub(super) fn compile(cx: &mut Cx, pb: &ast::Playbook) -> Option<CompiledPlaybook> {
    let errors_before = cx.diags.iter().filter(|d| d.is_error()).count();
    let mut once: Vec<(&'static str, Span)> = Vec::new();
    let mut status = None;
    let mut owner = None;
    let mut priority = 0;
    let mut tags = Vec::new();
    let mut triggers = Vec::new();
    let mut first_schedule: Option<Span> = None;
    let mut condition = None;
    let mut l1 = None;
    let mut l2 = None;
    let mut l3 = None;

    for entry in &pb.entries {
        let keyword = entry.kind.keyword();
        if keyword != "on" {
            if let Some((_, first)) = once.iter().find(|(k, _)| *k == keyword) {
                let help = format!("a playbook has at most one `{keyword}`; merge them or remove one");
                duplicate(cx, format!("`{keyword}` appears twice in `{}`", pb.id.node), entry.span, *first, &help);
                continue;
            }
            once.push((keyword, entry.span));
        }
        match &entry.kind {
            EntryKind::Status(s) => match Status::parse(&s.node) {
                Some(st) => status = Some(st),
                None => cx.push(
                    Diagnostic::new(Code::InvalidStatus, format!("`{}` is not a playbook status", s.node))
                        .at(&cx.file, s.span, "unknown status")
                        .with_help("a status is `active` (decides and acts), `draft` (plans, never applies) or `disabled` (ignored)")
                        .suggest(&s.node, Status::NAMES),
                ),
            },
            EntryKind::Owner(o) => {
                if o.node.trim().is_empty() {
                    cx.push(
                        Diagnostic::new(Code::MissingOwner, "the owner is empty")
                            .at(&cx.file, o.span, "empty")
                            .with_help("name the team or person who answers for it, e.g. `owner \"team:platform\"`"),
                    );
                }
                owner = Some(o.node.clone());
            }
            EntryKind::Priority(p) => priority = p.node,
            EntryKind::Tags(values) => {
                for v in values {
                    match &v.kind {
                        ValueKind::Str(s) => tags.push(s.clone()),
                        other => cx.push(
                            Diagnostic::new(Code::ArgumentType, format!("tags are strings, not {}", other.describe()))
                                .at(&cx.file, v.span, "expected a string")
                                .with_help("write `tags [\"k8s\", \"pods\"]`"),
                        ),
                    }
                }
            }
            EntryKind::Trigger(t) => {
                let schedule = matches!(t, ast::Trigger::Every(_) | ast::Trigger::Cron { .. });
                if schedule && let Some(first) = first_schedule {
                    // The scheduler keeps one last run per playbook: a second schedule would
                    // never fire.
                    duplicate(
                        cx,
                        "a playbook runs on one schedule".into(),
                        entry.span,
                        first,
                        "keep one `on schedule`: a cron expression can name several times (`\"0 9,17 * * *\"`); or split the playbook in two",
                    );
                    continue;
                }
                if schedule {
                    first_schedule = Some(entry.span);
                }
                if let Some(t) = trigger(cx, t, entry.span) {
                    triggers.push(t);
                }
            }
            EntryKind::When(src) => condition = condition::compile_condition(cx, src),
            EntryKind::L1(block) => l1 = l1_response(cx, block),
            EntryKind::L2(block) => l2 = l2_response(cx, block),
            EntryKind::L3(block) => l3 = l3_response(cx, block),
        }
    }

    let has = |k: &str| once.iter().any(|(kw, _)| *kw == k);
    if !pb.entries.iter().any(|e| matches!(e.kind, EntryKind::Trigger(_))) {
        cx.push(
            Diagnostic::new(Code::MissingTrigger, format!("`{}` has no trigger", pb.id.node))
                .at(&cx.file, pb.id.span, "never runs")
                .with_help("add `on <kind> from <source> { ... }` or `on schedule every <duration>`"),
        );
    }
    if !has("l1") && !has("l2") && !has("l3") {
        cx.push(
            Diagnostic::new(Code::MissingResponse, format!("`{}` has no response", pb.id.node))
                .at(&cx.file, pb.id.span, "does nothing")
                .with_help("add an `l1` block (automated remediation), an `l2` block (a fix for review) or `l3 priority P2` (escalation)"),
        );
    }
    if !has("owner") {
        cx.push(
            Diagnostic::new(Code::MissingOwner, format!("`{}` has no owner", pb.id.node))
                .at(&cx.file, pb.id.span, "whose is it?")
                .with_help("add `owner \"team:<name>\"`: the owner answers for what the playbook does and is told when it fails"),
        );
    }

    let errors_after = cx.diags.iter().filter(|d| d.is_error()).count();
    if errors_after > errors_before {
        return None;
    }
    Some(CompiledPlaybook {
        id: pb.id.node.clone(),
        title: pb.title.node.clone(),
        docs: pb.docs.text(),
        status: status.unwrap_or(Status::Draft),
        owner: owner.unwrap_or_default(),
        priority,
        tags,
        triggers,
        condition,
        l1,
        l2,
        l3: l3.unwrap_or_default(),
        file: cx.file.clone(),
        ast: pb.clone(),
    })
}

fn out_of_range(cx: &mut Cx, span: Span, message: String, help: &str) {
    cx.push(
        Diagnostic::new(Code::ValueOutOfRange, message).at(&cx.file, span, "out of range").with_help(help.to_string()),
    );
}

/// A statement that may appear once, seen `again` after its `first` place.
fn duplicate(cx: &mut Cx, message: String, again: Span, first: Span, help: &str) {
    cx.push(
        Diagnostic::new(Code::DuplicateStatement, message)
            .at(&cx.file, again, "again here")
            .with_secondary(first, "first here")
            .with_help(help.to_string()),
    );
}

/// Whether a percentage is above 0% and at most 100%; reports it when not.
fn percentage(cx: &mut Cx, p: &Spanned<f64>, what: &str, example: &str) -> bool {
    if p.node > 0.0 && p.node <= 100.0 {
        return true;
    }
    let help = format!("give a percentage above 0% and at most 100%, e.g. {example}");
    out_of_range(cx, p.span, format!("{what} of {}% is not possible", p.node), &help);
    false
}

fn positive(cx: &mut Cx, d: &Spanned<Duration>, what: &str) -> bool {
    if d.node.millis == 0 {
        out_of_range(cx, d.span, format!("{what} cannot be zero"), "give a positive duration, e.g. `30s` or `15m`");
        return false;
    }
    true
}

fn trigger(cx: &mut Cx, t: &ast::Trigger, span: Span) -> Option<CompiledTrigger> {
    match t {
        ast::Trigger::Every(d) => {
            if d.node.millis < MIN_SCHEDULE_PERIOD {
                out_of_range(
                    cx,
                    d.span,
                    format!("a schedule of `every {}` is too frequent", d.node),
                    "schedules run at most once a minute; use `every 1m` or longer",
                );
                return None;
            }
            Some(CompiledTrigger::Every { period: d.node, span })
        }
        ast::Trigger::Cron { expr, tz } => {
            let ok = cron::check_expr(cx, expr);
            let tz_ok = tz.as_ref().is_none_or(|tz| cron::check_tz(cx, tz));
            (ok && tz_ok).then(|| CompiledTrigger::Cron {
                expr: expr.node.clone(),
                tz: tz.as_ref().map(|t| t.node.clone()).unwrap_or_else(|| "UTC".into()),
                span,
            })
        }
        ast::Trigger::Event { kind, .. } if kind.node == "schedule" => {
            cx.push(
                Diagnostic::new(Code::UnknownKind, "`on schedule` needs `every <duration>` or `cron \"<expression>\"`")
                    .at(&cx.file, kind.span, "incomplete schedule")
                    .with_help("write `on schedule every 1h`, or `on schedule cron \"0 9 * * MON-FRI\" tz \"UTC\"`"),
            );
            None
        }
        ast::Trigger::Event { kind, source, matchers } => {
            let mut ok = true;
            if !KINDS.contains(&kind.node.as_str()) {
                cx.push(
                    Diagnostic::new(Code::UnknownKind, format!("unknown event kind `{}`", kind.node))
                        .at(&cx.file, kind.span, "not an event kind")
                        .with_help(format!("event kinds are {}", quoted_list(KINDS)))
                        .suggest(&kind.node, KINDS.iter().copied()),
                );
                ok = false;
            }
            if let Some(source) = source
                && !SOURCES.contains(&source.node.as_str())
            {
                cx.push(
                    Diagnostic::new(Code::UnknownSource, format!("unknown event source `{}`", source.node))
                        .at(&cx.file, source.span, "not a source Sparky receives")
                        .with_help(format!("sources are {}", quoted_list(SOURCES)))
                        .suggest(&source.node, SOURCES.iter().copied()),
                );
                ok = false;
            }
            let mut compiled = Vec::new();
            for m in matchers {
                match matcher(cx, m) {
                    Some(c) => compiled.push(c),
                    None => ok = false,
                }
            }
            ok.then(|| CompiledTrigger::Event {
                kind: Some(kind.node.clone()).filter(|k| k != "any"),
                source: source.as_ref().map(|s| s.node.clone()),
                matchers: compiled,
                span,
            })
        }
    }
}

fn scalar(v: &Value) -> Option<Scalar> {
    match &v.kind {
        ValueKind::Str(s) => Some(Scalar::Str(s.clone())),
        ValueKind::Int(n) => Some(Scalar::Int(*n)),
        ValueKind::Float(f) => Some(Scalar::Float(*f)),
        ValueKind::Bool(b) => Some(Scalar::Bool(*b)),
        _ => None,
    }
}

fn mismatch(cx: &mut Cx, op: MatchOp, value: &Value, wants: &str, help: &str) {
    cx.push(
        Diagnostic::new(
            Code::OperatorValueMismatch,
            format!("`{}` compares with {wants}, not {}", op.as_str(), value.kind.describe()),
        )
        .at(&cx.file, value.span, format!("expected {wants}"))
        .with_help(help.to_string()),
    );
}

fn matcher(cx: &mut Cx, m: &ast::Matcher) -> Option<CompiledMatcher> {
    let field = fields::resolve(cx, &m.field);
    let op = m.op.node;
    let test = match (op, &m.value) {
        (MatchOp::Exists, _) => Some(Test::Exists),
        (MatchOp::Missing, _) => Some(Test::Missing),
        (_, None) => None,
        (MatchOp::Eq | MatchOp::Ne, Some(v)) => match scalar(v) {
            Some(s) if op == MatchOp::Eq => Some(Test::Eq(s)),
            Some(s) => Some(Test::Ne(s)),
            None => {
                let help = match &v.kind {
                    ValueKind::List(_) => "to match any of several values use `in [..]`",
                    ValueKind::Path(_) => {
                        "matchers compare a field with a literal; quote text, e.g. `\"prod\"`, or compare fields in a `when` condition"
                    }
                    _ => "compare with a string, a number or `true`/`false`",
                };
                mismatch(cx, op, v, "a string, number or boolean", help);
                None
            }
        },
        (MatchOp::Matches | MatchOp::NotMatches, Some(v)) => match &v.kind {
            ValueKind::Str(pattern) => match regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build() {
                Ok(re) if op == MatchOp::Matches => Some(Test::Matches(re)),
                Ok(re) => Some(Test::NotMatches(re)),
                Err(e) => {
                    let why = e.to_string();
                    let last = why.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim();
                    let last = last.strip_prefix("error: ").unwrap_or(last);
                    cx.push(
                            Diagnostic::new(Code::InvalidRegex, format!("the regular expression `{pattern}` does not compile: {last}"))
                                .at(&cx.file, v.span, "invalid regular expression")
                                .with_help("patterns use Rust regex syntax (like RE2, without look-around or back-references); check the brackets, and write `\\(` or `\\.` for a literal `(` or `.`"),
                        );
                    None
                }
            },
            _ => {
                mismatch(
                    cx,
                    op,
                    v,
                    "a regular expression in a string",
                    "write the pattern in quotes, e.g. `=~ \"^prod-\"`",
                );
                None
            }
        },
        (MatchOp::Lt | MatchOp::Le | MatchOp::Gt | MatchOp::Ge, Some(v)) => {
            let n = match &v.kind {
                ValueKind::Int(n) => Some(*n as f64),
                ValueKind::Float(f) => Some(*f),
                _ => None,
            };
            match n {
                Some(n) => Some(match op {
                    MatchOp::Lt => Test::Lt(n),
                    MatchOp::Le => Test::Le(n),
                    MatchOp::Gt => Test::Gt(n),
                    _ => Test::Ge(n),
                }),
                None => {
                    mismatch(
                        cx,
                        op,
                        v,
                        "a number",
                        "numeric comparisons read the field as a number; write the limit without quotes, e.g. `> 0.9`",
                    );
                    None
                }
            }
        }
        (MatchOp::In | MatchOp::NotIn, Some(v)) => {
            let values = match &v.kind {
                ValueKind::List(items) => {
                    let mut out = Vec::new();
                    for item in items {
                        match scalar(item) {
                            Some(s) => out.push(s),
                            None => {
                                mismatch(cx, op, item, "plain values", "list items are strings, numbers or booleans");
                                return None;
                            }
                        }
                    }
                    Some(out)
                }
                ValueKind::Path(p) if p.segments.len() == 1 => library::use_list(cx, &p.segments[0], p.span),
                _ => {
                    mismatch(cx, op, v, "a list", "write `in [\"a\", \"b\"]` or `in <list name>`");
                    None
                }
            };
            match values {
                Some(vals) if vals.is_empty() => {
                    let always = if op == MatchOp::In { "never holds" } else { "always holds" };
                    cx.push(
                        Diagnostic::new(
                            Code::OperatorValueMismatch,
                            format!("`{} []` {always}: the list is empty", op.as_str()),
                        )
                        .at(&cx.file, v.span, "empty list")
                        .with_help("give the values to match, or remove the matcher"),
                    );
                    None
                }
                Some(vals) if op == MatchOp::In => Some(Test::In(vals)),
                Some(vals) => Some(Test::NotIn(vals)),
                None => None,
            }
        }
    };
    Some(CompiledMatcher { field: field?, test: test?, span: m.span })
}

fn l1_response(cx: &mut Cx, block: &ast::L1Block) -> Option<L1Response> {
    let mut guards = Guards::default();
    let mut ok = true;
    let mut seen: Vec<(&str, Span)> = Vec::new();
    for g in &block.guards {
        let name = match &g.kind {
            GuardKind::SuccessRate { .. } => "success_rate",
            GuardKind::BlastRadius { .. } => "blast_radius",
            GuardKind::Cooldown { .. } => "cooldown",
            GuardKind::AtMost { .. } => "at_most",
            GuardKind::When { .. } => "when",
        };
        if matches!(name, "success_rate" | "blast_radius") {
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                let help = "keep one; the stricter of the two is usually what you meant";
                duplicate(cx, format!("`guard {name}` appears twice"), g.span, *first, help);
                ok = false;
                continue;
            }
            seen.push((name, g.span));
        }
        match &g.kind {
            GuardKind::SuccessRate { min_percent, window, min_runs } => {
                ok &= percentage(cx, min_percent, "a success rate", "`99%`");
                ok &= positive(cx, window, "the success-rate window");
                if min_runs.node == 0 {
                    out_of_range(
                        cx,
                        min_runs.span,
                        "the minimum number of runs cannot be zero".into(),
                        "a playbook earns trust over real runs: ask for at least one, e.g. `min 20 runs`",
                    );
                    ok = false;
                }
                guards.success_rate = Some((min_percent.node, window.node, min_runs.node));
            }
            GuardKind::BlastRadius { max } => {
                if max.node == 0 {
                    out_of_range(
                        cx,
                        max.span,
                        "a blast radius of 0 lets no action run".into(),
                        "the blast radius counts what an action touches (pods, replicas, keys); allow at least 1",
                    );
                    ok = false;
                }
                guards.blast_radius = Some(max.node);
            }
            GuardKind::Cooldown { period, per } => {
                ok &= positive(cx, period, "a cooldown");
                let key = match per {
                    Some(p) => match fields::resolve(cx, p) {
                        Some(f) => Some(f),
                        None => {
                            ok = false;
                            None
                        }
                    },
                    None => None,
                };
                guards.cooldowns.push((period.node, key));
            }
            GuardKind::AtMost { count, window } => {
                if count.node == 0 {
                    out_of_range(
                        cx,
                        count.span,
                        "`at_most 0` lets no action run".into(),
                        "allow at least one run per window, or set the playbook to `status disabled`",
                    );
                    ok = false;
                }
                ok &= positive(cx, window, "the `at_most` window");
                guards.at_most.push((count.node, window.node));
            }
            GuardKind::When { condition: src } => match condition::compile_condition(cx, src) {
                Some(c) => guards.conditions.push(c),
                None => ok = false,
            },
        }
    }

    let mut actions_out = Vec::new();
    for c in &block.actions {
        let Some(spec) = actions::find(&c.name.node) else {
            let names: Vec<&str> = actions::all().iter().map(|a| a.name).collect();
            cx.push(
                Diagnostic::new(Code::UnknownAction, format!("unknown action `{}`", c.name.node))
                    .at(&cx.file, c.name.span, "no such action")
                    .with_help(format!("the actions are {}; see docs/actions.md", quoted_list(&names)))
                    .suggest(&c.name.node, names.iter().copied()),
            );
            ok = false;
            continue;
        };
        match call::check_args(cx, c, spec.params, &format!("action `{}`", spec.name)) {
            Some(args) => actions_out.push(ActionCall { action: spec, args, span: c.span }),
            None => ok = false,
        }
    }
    if block.actions.is_empty() {
        cx.push(
            Diagnostic::new(Code::EmptyResponse, "this `l1` block has no `do`")
                .at(&cx.file, Span::new(block.span.start, block.span.start + 2), "does nothing")
                .with_help("add the remediation, e.g. `do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)`, or remove the block"),
        );
        ok = false;
    }

    let mut verify = Vec::new();
    for v in &block.verify {
        match &v.kind {
            VerifyKind::Resolved { within } => {
                ok &= positive(cx, within, "the verification deadline");
                verify.push(VerifyStep::Resolved { within: within.node });
            }
            VerifyKind::Delivered => verify.push(VerifyStep::Delivered),
            VerifyKind::Probe { url, status, within } => {
                ok &= positive(cx, within, "the verification deadline");
                let scheme_ok = url.node.starts_with("http://") || url.node.starts_with("https://");
                // Credentials in the URL would be shown wherever the verification is (the
                // executions API, the audit log): a probe URL carries none.
                let authority =
                    url.node.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
                if authority.contains('@') {
                    cx.push(
                        Diagnostic::new(
                            Code::InvalidProbeUrl,
                            // Not repeated here: the check's output may land in a CI log.
                            format!("the probe URL `{}` has credentials in it", redact_userinfo(&url.node)),
                        )
                            .at(&cx.file, url.span, "user or password in the URL")
                            .with_help(
                                "a probe is shown in the executions API and the audit log: probe an endpoint that needs no credentials, e.g. `\"https://checkout.prod.internal/healthz\"`",
                            ),
                    );
                    ok = false;
                } else if !scheme_ok || url.node.contains(char::is_whitespace) {
                    cx.push(
                        Diagnostic::new(Code::InvalidProbeUrl, format!("`{}` is not an HTTP URL", url.node))
                            .at(&cx.file, url.span, "not an http:// or https:// URL")
                            .with_help(
                                "write the full URL the probe GETs, e.g. `\"https://checkout.prod.internal/healthz\"`",
                            ),
                    );
                    ok = false;
                }
                let code = status.as_ref().map_or(200, |s| s.node);
                if !(100..=599).contains(&code) {
                    let at = status.as_ref().map_or(url.span, |s| s.span);
                    cx.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("`{code}` is not an HTTP status"))
                            .at(&cx.file, at, "not between 100 and 599")
                            .with_help("write the status a healthy answer has, e.g. `status 200`"),
                    );
                    ok = false;
                }
                verify.push(VerifyStep::Probe { url: url.node.clone(), status: code as u16, within: within.node });
            }
            VerifyKind::When { condition: src, within } => {
                ok &= positive(cx, within, "the verification deadline");
                match condition::compile_condition(cx, src) {
                    Some(c) => verify.push(VerifyStep::When { condition: c, within: within.node }),
                    None => ok = false,
                }
            }
        }
    }
    ok.then(|| L1Response {
        title: block.title.as_ref().map(|t| t.node.clone()),
        guards,
        actions: actions_out,
        verify,
        span: block.span,
    })
}

fn l2_response(cx: &mut Cx, block: &ast::L2Block) -> Option<L2Response> {
    let mut ok = true;
    let mut fixes = Vec::new();
    for c in &block.fixes {
        let Some(spec) = fix::find(&c.name.node) else {
            let names: Vec<&str> = fix::all().map(|g| g.name).collect();
            cx.push(
                Diagnostic::new(Code::UnknownFixGenerator, format!("unknown fix generator `{}`", c.name.node))
                    .at(&cx.file, c.name.span, "no such generator")
                    .with_help(format!("the fix generators are {}", quoted_list(&names)))
                    .suggest(&c.name.node, names.iter().copied()),
            );
            ok = false;
            continue;
        };
        match call::check_args(cx, c, spec.params, &format!("fix generator `{}`", spec.name)) {
            Some(args) => fixes.push(FixCall { generator: spec, args, span: c.span }),
            None => ok = false,
        }
    }
    if block.fixes.is_empty() {
        cx.push(
            Diagnostic::new(Code::EmptyResponse, "this `l2` block has no `fix`")
                .at(&cx.file, Span::new(block.span.start, block.span.start + 2), "proposes nothing")
                .with_help("add the fix to propose, e.g. `fix revert()`, or remove the block"),
        );
        ok = false;
    }
    if let Some(extra) = block.min_confidence.get(1) {
        let message = "`min_confidence` appears twice in this `l2` block".to_string();
        duplicate(cx, message, extra.span, block.min_confidence[0].span, "keep one");
        ok = false;
    }
    let min_confidence = block.min_confidence.first().map(|c| c.node).unwrap_or(DEFAULT_MIN_CONFIDENCE);
    if let Some(c) = block.min_confidence.first() {
        ok &= percentage(cx, c, "a confidence", "`80%`");
    }
    ok.then(|| L2Response {
        title: block.title.as_ref().map(|t| t.node.clone()),
        fixes,
        min_confidence,
        span: block.span,
    })
}

fn l3_response(cx: &mut Cx, block: &ast::L3Block) -> Option<L3Response> {
    let mut ok = true;
    for (name, spans) in [
        ("priority", block.priority.iter().map(|p| p.span).collect::<Vec<_>>()),
        ("jira", block.jira.iter().map(|p| p.span).collect()),
        ("page", block.page.iter().map(|p| p.span).collect()),
    ] {
        if spans.len() > 1 {
            duplicate(cx, format!("`{name}` appears twice in this `l3` block"), spans[1], spans[0], "keep one");
            ok = false;
        }
    }
    let mut priority = 3;
    if let Some(p) = block.priority.first() {
        match p.node[1..].parse::<u8>() {
            Ok(n @ 1..=4) if p.node.starts_with('P') => priority = n,
            _ => {
                // "did you mean" would offer `P1` for `P5`; say the range instead, or the case.
                let upper = p.node.to_uppercase();
                let help = if matches!(upper.as_str(), "P1" | "P2" | "P3" | "P4") {
                    format!("write it with a capital P: `{upper}`")
                } else {
                    "priorities run from `P1` (the most urgent, pages at once) to `P4` (the least urgent)".to_string()
                };
                cx.push(
                    Diagnostic::new(Code::InvalidPriority, format!("`{}` is not an escalation priority", p.node))
                        .at(&cx.file, p.span, "expected `P1`..`P4`")
                        .with_help(help),
                );
                ok = false;
            }
        }
    }
    if let Some(j) = block.jira.first() {
        let valid = !j.node.is_empty()
            && j.node.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && j.node.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            out_of_range(
                cx,
                j.span,
                format!("`{}` is not a Jira project key", j.node),
                "Jira project keys are upper-case letters and digits starting with a letter, e.g. `OPS`",
            );
            ok = false;
        }
    }
    ok.then(|| L3Response {
        priority,
        jira_project: block.jira.first().map(|j| j.node.clone()),
        page: block.page.first().map(|p| p.node).unwrap_or(true),
        span: Some(block.span),
    })
}

/// `https://user:pass@host/path` as `https://***@host/path`.
fn redact_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
