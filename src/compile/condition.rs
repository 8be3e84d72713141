//! Rhai conditions and helpers: compiled once, names checked, errors mapped back to the
//! line and column in the `.sparky` file.

use super::Cx;
use super::library;
use super::model::Condition;
use crate::diagnostics::{Code, Diagnostic, Span, as_fragment, quoted_list};
use crate::dsl::ast::RhaiSource;
use crate::script::event::Reads;
use crate::script::{self, EVENT_VAR, FORBIDDEN, limits};
use rhai::{AST, ASTNode, Expr, Map, ParseError, ParseErrorType, Scope};
use std::sync::{Arc, OnceLock};

/// Functions that exist in general-purpose rhai but not in the sandbox, and why. (`eval`,
/// `print` and `debug` are disabled keywords: `script::FORBIDDEN` refuses them earlier.)
const FORBIDDEN_CALLS: &[(&str, &str)] = &[
    ("sleep", "conditions must never wait; they run inside the decision, which must be fast"),
    ("timestamp", "conditions cannot read the clock; use `kg::deployed_within` and the event's times"),
];

/// The engine helpers are compiled with before the library exists (phase 2). It knows the
/// `lists` namespace, empty, so that a helper may use `lists::<name>`: rhai checks only that
/// the namespace exists, and `check_names` checks the list once every list is known.
fn bare_engine() -> &'static rhai::Engine {
    static ENGINE: OnceLock<rhai::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| script::build_engine(Some(&script::Library::default())))
}

fn too_long(cx: &mut Cx, src: &RhaiSource, what: &str) -> bool {
    if src.text.len() <= limits::MAX_SOURCE {
        return false;
    }
    cx.push(
        Diagnostic::new(
            Code::ForbiddenInCondition,
            format!("this {what} is {} bytes long; the limit is {}", src.text.len(), limits::MAX_SOURCE),
        )
        .at(&cx.file, Span::new(src.span.start, src.span.start), "starts here")
        .with_help("move the logic into smaller helpers, and large data into a `list`"),
    );
    true
}

/// Compiles one helper (`fn name(..) { .. }`).
pub(super) fn compile_helper(cx: &mut Cx, src: &RhaiSource) -> Option<AST> {
    if too_long(cx, src, "helper") {
        return None;
    }
    match bare_engine().compile(&src.text) {
        Ok(ast) => Some(ast),
        Err(e) => {
            report_parse_error(cx, src, &e, true);
            None
        }
    }
}

/// Compiles a `when` (or `verify when`) condition with the library's engine.
pub(super) fn compile_condition(cx: &mut Cx, src: &RhaiSource) -> Option<Condition> {
    if too_long(cx, src, "condition") {
        return None;
    }
    if src.text.trim().is_empty() {
        cx.push(
            Diagnostic::new(Code::ConditionSyntax, "the condition is empty")
                .at(&cx.file, Span::new(src.span.start.saturating_sub(1), src.span.end + 1), "nothing to evaluate")
                .with_help("write a rhai expression that is `true` when the playbook applies, or remove `when`"),
        );
        return None;
    }
    let env = cx.script?;
    // A variable, not a constant: rhai folds constants into the AST, which would bake an
    // empty event into the condition and optimize away the very calls we check.
    let mut scope = Scope::new();
    scope.push(EVENT_VAR, Map::new());
    match env.engine.compile_with_scope(&scope, &src.text) {
        Ok(ast) => {
            let ok = check_names(cx, &ast, src, None);
            let reads = event_reads(&ast);
            ok.then(|| Condition { ast: Arc::new(ast), source: src.clone(), reads })
        }
        Err(e) => {
            report_parse_error(cx, src, &e, false);
            None
        }
    }
}

/// The fields of `event` that `ast` may read: those it names (`event.labels...`), or all of
/// them when it uses `event` other than through a named field (`event["x"]`, `f(event)`).
fn event_reads(ast: &AST) -> Reads {
    let (mut uses, mut named, mut reads) = (0usize, 0usize, Reads::NONE);
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::Variable(v, ..))) if v.2.is_empty() && v.1 == EVENT_VAR => uses += 1,
            Some(ASTNode::Expr(Expr::Dot(chain, _, _)))
                if matches!(&chain.lhs, Expr::Variable(v, ..) if v.2.is_empty() && v.1 == EVENT_VAR) =>
            {
                let first = match &chain.rhs {
                    Expr::Dot(inner, ..) | Expr::Index(inner, ..) => &inner.lhs,
                    other => other,
                };
                match first {
                    Expr::Property(p, _) => {
                        named += 1;
                        reads = reads.union(Reads::field(p.2.as_str()));
                    }
                    _ => reads = Reads::ALL,
                }
            }
            _ => {}
        }
        true
    });
    if uses > named { Reads::ALL } else { reads }
}

/// The span in the `.sparky` file of rhai's 1-based `line` and `column` in `src`, `len` chars.
pub(crate) fn span_at(src: &RhaiSource, line: Option<usize>, column: Option<usize>, len: usize) -> Span {
    let (Some(line), Some(column)) = (line, column) else {
        return Span::new(src.span.start, src.span.start);
    };
    let mut offset = 0;
    for (i, l) in src.text.split('\n').enumerate() {
        if i + 1 == line {
            let col_byte = l.char_indices().nth(column.saturating_sub(1)).map(|(b, _)| b).unwrap_or(l.len());
            let start = src.span.start + offset + col_byte;
            let end = l[col_byte..].char_indices().nth(len).map(|(b, _)| b).unwrap_or(l.len() - col_byte);
            return Span::new(start, start + end.max(if col_byte < l.len() { 1 } else { 0 }));
        }
        offset += l.len() + 1;
    }
    Span::new(src.span.end, src.span.end)
}

fn report_parse_error(cx: &mut Cx, src: &RhaiSource, err: &ParseError, in_helper: bool) {
    let ParseError(kind, pos) = err;
    let span = span_at(src, pos.line(), pos.position(), 1);
    let forbidden = |word: &str| FORBIDDEN.iter().find(|(w, _)| *w == word);
    let kind = kind.as_ref();
    let word = match kind {
        ParseErrorType::Reserved(w) => Some(w.as_str()),
        ParseErrorType::BadInput(rhai::LexError::ImproperSymbol(w, _)) => Some(w.as_str()),
        _ => None,
    };
    if let Some((word, why)) = word.and_then(forbidden) {
        let span = span_at(src, pos.line(), pos.position(), word.len());
        cx.push(
            Diagnostic::new(Code::ForbiddenInCondition, format!("`{word}` is not allowed in conditions"))
                .at(&cx.file, span, "forbidden here")
                .with_help(why.to_string()),
        );
        return;
    }
    let d = match kind {
        ParseErrorType::VariableUndefined(name) => {
            let help = if in_helper {
                format!("a helper sees only its parameters; pass `{name}` in as one")
            } else {
                "a condition sees `event` and the `kg::` and `lists::` namespaces; declare other variables with `let`"
                    .to_string()
            };
            let span = span_at(src, pos.line(), pos.position(), name.chars().count());
            Diagnostic::new(Code::UnknownVariable, format!("unknown variable `{name}`"))
                .at(&cx.file, span, "not defined")
                .with_help(help)
                .suggest(name, if in_helper { vec![] } else { vec![EVENT_VAR] })
        }
        ParseErrorType::ExprTooDeep => Diagnostic::new(Code::ConditionSyntax, "the expression is nested too deeply")
            .at(&cx.file, span, "too deep")
            .with_help(format!(
                "conditions may nest {} levels; split it with `let` or a helper",
                limits::MAX_EXPR_DEPTH
            )),
        ParseErrorType::LiteralTooLarge(what, max) => Diagnostic::new(
            Code::ForbiddenInCondition,
            format!("a {} is larger than the limit of {max}", what.to_lowercase()),
        )
        .at(&cx.file, span, "too large")
        .with_help("conditions hold small literals; put data in a `list`"),
        ParseErrorType::UnexpectedEOF => {
            // rhai points past the end; the culprit is the last thing written.
            let body = src.text.trim_end();
            let last = body.char_indices().next_back().map(|(i, c)| (i, i + c.len_utf8())).unwrap_or((0, 0));
            let what = if in_helper { "helper" } else { "condition" };
            Diagnostic::new(Code::ConditionSyntax, format!("the {what} ends before its expression is complete"))
                .at(&cx.file, Span::new(src.span.start + last.0, src.span.start + last.1), "incomplete after this")
                .with_help("finish the expression, or remove the operator or bracket left at its end")
        }
        other => {
            let mut message = as_fragment(&other.to_string());
            if message.matches('\'').count().is_multiple_of(2) {
                // rhai quotes names with `'`; ours are in backticks.
                message = message.replace('\'', "`");
            }
            Diagnostic::new(Code::ConditionSyntax, format!("invalid rhai: {}", message.trim_end_matches('.')))
                .at(&cx.file, span, "here")
                .with_help(if in_helper {
                    "a helper reads `fn name(params) { <rhai> }`; see the rhai book for the syntax"
                } else {
                    "a condition is a rhai expression, e.g. `event.severity in lists::urgent_severities`"
                })
        }
    };
    cx.push(d);
}

/// One name a condition refers to.
enum Reference {
    Call {
        name: String,
        args: usize,
        line: Option<usize>,
        column: Option<usize>,
        method: bool,
    },
    Qualified {
        namespace: String,
        name: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    /// The first property read from `event` (`event.service` → `service`).
    EventField {
        name: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    /// A literal window given to a `kg::` function, e.g. `"30m"`.
    Window {
        function: String,
        text: String,
        line: Option<usize>,
        column: Option<usize>,
    },
}

/// `kg::` functions whose second argument is a window such as `"30m"`.
const WINDOW_FUNCTIONS: &[&str] = &["kg::deployed_within", "kg::recent_deploys", "kg::history"];

/// Checks every function and qualified variable in `ast` against what the engine knows.
/// Returns whether all names were found.
/// `inside` names the helper being checked: its calls to itself do not make it used.
pub(super) fn check_names(cx: &mut Cx, ast: &AST, src: &RhaiSource, inside: Option<&str>) -> bool {
    let Some(env) = cx.script else { return true };
    let mut refs = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(expr)) = path.last() {
            match expr {
                Expr::FnCall(call, pos) | Expr::MethodCall(call, pos) if call.op_token.is_none() => {
                    let ns = call.namespace.to_string();
                    let name = if ns.is_empty() { call.name.to_string() } else { format!("{ns}::{}", call.name) };
                    // rhai places a qualified call at its last segment; point at the whole name.
                    let column = pos.position().map(|c| c.saturating_sub(if ns.is_empty() { 0 } else { ns.len() + 2 }));
                    if WINDOW_FUNCTIONS.contains(&name.as_str())
                        && let Some(Expr::StringConstant(text, wpos)) = call.args.get(1)
                    {
                        refs.push(Reference::Window {
                            function: name.clone(),
                            text: text.to_string(),
                            line: wpos.line(),
                            column: wpos.position(),
                        });
                    }
                    refs.push(Reference::Call {
                        name,
                        args: call.args.len(),
                        line: pos.line(),
                        column,
                        method: matches!(expr, Expr::MethodCall(..)),
                    });
                }
                Expr::Dot(chain, _, _) if matches!(&chain.lhs, Expr::Variable(v, ..) if v.2.is_empty() && v.1 == EVENT_VAR) => {
                    let first = match &chain.rhs {
                        Expr::Dot(inner, ..) | Expr::Index(inner, ..) => &inner.lhs,
                        other => other,
                    };
                    if let Expr::Property(p, pos) = first {
                        refs.push(Reference::EventField { name: p.2.to_string(), line: pos.line(), column: pos.position() });
                    }
                }
                Expr::Variable(v, _, pos) if !v.2.is_empty() => refs.push(Reference::Qualified {
                    namespace: v.2.to_string(),
                    name: v.1.to_string(),
                    line: pos.line(),
                    column: pos.position(),
                }),
                _ => {}
            }
        }
        true
    });

    let mut ok = true;
    for r in refs {
        match r {
            Reference::Call { name, args, line, column, method } => {
                let plain = name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':');
                if !plain || script::BUILTIN_CALLS.contains(&name.as_str()) {
                    continue;
                }
                let span = span_at(src, line, column, name.chars().count());
                if let Some((_, why)) = FORBIDDEN_CALLS.iter().find(|(w, _)| *w == name) {
                    cx.push(
                        Diagnostic::new(Code::ForbiddenInCondition, format!("`{name}` is not available in conditions"))
                            .at(&cx.file, span, "forbidden here")
                            .with_help(why.to_string()),
                    );
                    ok = false;
                    continue;
                }
                if inside != Some(name.as_str()) {
                    library::mark_helper_used(cx, &name);
                }
                let arity = if method { args + 1 } else { args };
                match env.known.get(&name) {
                    Some(arities) => {
                        let ours = name.starts_with("kg::") || library::is_helper(cx, &name);
                        if ours && !arities.contains(&arity) {
                            let expected = arities.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" or ");
                            cx.push(
                                Diagnostic::new(
                                    Code::WrongArgumentCount,
                                    format!("`{name}` takes {expected} argument{}, not {arity}", plural(arities)),
                                )
                                .at(&cx.file, span, "called here")
                                .with_help(signature_help(cx, &name)),
                            );
                            ok = false;
                        }
                    }
                    None => {
                        let candidates: Vec<&str> = env
                            .known
                            .keys()
                            .map(String::as_str)
                            .filter(|k| k.contains("::") == name.contains("::"))
                            // Operators are functions too; never suggest `!` for a name.
                            .filter(|k| k.chars().all(|c| c.is_alphanumeric() || c == '_' || c == ':'))
                            .collect();
                        cx.push(
                            Diagnostic::new(Code::UnknownFunction, format!("unknown function `{name}`"))
                                .at(&cx.file, span, "not defined")
                                .with_help(
                                    "conditions can call rhai's string, array, map and math functions, the `kg::` functions and the helpers (`fn`) of the library; see docs/stdlib.md",
                                )
                                .suggest(&name, candidates),
                        );
                        ok = false;
                    }
                }
            }
            Reference::EventField { name, line, column } => {
                let known = super::TOP_FIELDS.iter().chain(super::MAP_FIELDS).chain(&["links"]);
                if !known.clone().any(|f| *f == name) {
                    let span = span_at(src, line, column, name.chars().count());
                    cx.push(
                        Diagnostic::new(Code::UnknownField, format!("the event has no field `{name}`"))
                            .at(&cx.file, span, "not a field of the event")
                            .with_help(format!(
                                "labels are read as `event.labels.{name}`; the event's fields are {}, `labels`, `annotations`, `links` and `payload` (docs/events.md)",
                                quoted_list(super::TOP_FIELDS)
                            ))
                            .suggest(&name, known.copied()),
                    );
                    ok = false;
                }
            }
            Reference::Window { function, text, line, column } => {
                if crate::dsl::parse_duration(&text).is_none() {
                    let span = span_at(src, line, column, text.chars().count() + 2);
                    cx.push(
                        Diagnostic::new(Code::InvalidWindow, format!("`{text}` is not a duration"))
                            .at(&cx.file, span, format!("the window of `{function}`"))
                            .with_help("write a window such as `\"30m\"`, `\"2h\"` or `\"7d\"` (units `ms`, `s`, `m`, `h`, `d`, `w`)"),
                    );
                    ok = false;
                }
            }
            Reference::Qualified { namespace, name, line, column } => {
                let span = span_at(src, line, column, namespace.len() + 2 + name.len());
                if namespace == "lists" {
                    if cx.lib.lists.contains_key(&name) {
                        let _ = library::use_list(cx, &name, span);
                    } else {
                        let names = library::list_names(cx);
                        cx.push(
                            Diagnostic::new(Code::UnknownList, format!("there is no list called `{name}`"))
                                .at(&cx.file, span, "unknown list")
                                .with_help("define it with `list NAME = [...]` in a `.sparky` file")
                                .suggest(&name, names.iter().map(String::as_str)),
                        );
                        ok = false;
                    }
                } else {
                    cx.push(
                        Diagnostic::new(Code::UnknownVariable, format!("unknown variable `{namespace}::{name}`"))
                            .at(&cx.file, span, "not defined")
                            .with_help("the only namespaced variables are the lists, as `lists::<name>`"),
                    );
                    ok = false;
                }
            }
        }
    }
    ok
}

fn plural(arities: &[usize]) -> &'static str {
    if arities == [1] { "" } else { "s" }
}

fn signature_help(cx: &Cx, name: &str) -> String {
    if let Some(h) = cx.lib.helpers.get(name) {
        let head = h.source.text.split('{').next().unwrap_or("").trim();
        let (line, _) = h.def.file.line_col(h.def.span.start);
        return format!("it is defined as `{head}` in `{}` at line {line}", h.def.file.name);
    }
    match name {
        "kg::service" => "write `kg::service(event.service)`".into(),
        "kg::deployed_within" => "write `kg::deployed_within(event.service, \"30m\")`".into(),
        "kg::recent_deploys" => "write `kg::recent_deploys(event.service, \"24h\")`".into(),
        "kg::downstream" | "kg::upstream" => format!("write `{name}(event.service)`"),
        "kg::history" => "write `kg::history(event.fingerprint, \"30d\")`".into(),
        "kg::pod" => "write `kg::pod(event.labels.namespace, event.labels.pod)`".into(),
        "kg::owner" | "kg::oncall" => format!("write `{name}(event.service)`"),
        _ => format!("see the definition of `{name}` for its parameters"),
    }
}
