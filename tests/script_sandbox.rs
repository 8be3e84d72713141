//! The rhai sandbox: hostile conditions are rejected when compiled or bounded when run, and
//! never hang or panic.

use rhai::{Dynamic, Map, Scope};
use sparky::compile::{Compiled, compile};
use sparky::diagnostics::{Code, SourceFile};
use sparky::knowledge::{Deploy, DeployState, Knowledge};
use sparky::script::{self, ContextView, EvalError, NoContext};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn playbook_with(condition: &str) -> String {
    format!(
        r#"/// Test playbook.
playbook T-1 "sandbox" {{
  status active
  owner "team:test"
  on alert from alertmanager {{ labels.alertname == "X" }}
  when {{ {condition} }}
  l3 priority P3
}}
"#
    )
}

fn check(text: &str) -> Compiled {
    compile(&[SourceFile::new("t.sparky", text)])
}

fn codes(c: &Compiled) -> Vec<&'static str> {
    c.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

fn event() -> Dynamic {
    let mut labels = Map::new();
    labels.insert("pod".into(), "api-0".into());
    labels.insert("namespace".into(), "prod".into());
    labels.insert("reason".into(), "CrashLoopBackOff".into());
    let mut e = Map::new();
    e.insert("service".into(), "api".into());
    e.insert("labels".into(), labels.into());
    e.into()
}

/// Compiles a condition that passes `check`, and runs it.
fn run(condition: &str, context: Arc<dyn ContextView>) -> Result<bool, EvalError> {
    let compiled = check(&playbook_with(condition));
    assert_eq!(compiled.errors(), 0, "{:?}", compiled.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>());
    let cond = compiled.playbooks[0].condition.clone().expect("condition");
    let mut scope = Scope::new();
    scope.push_constant("event", event());
    script::evaluate_bool(&compiled.engine, &cond.ast, &mut scope, &context, script::limits::DEADLINE)
}

#[test]
fn forbidden_keywords_are_rejected_at_compile_time() {
    for (cond, word) in [
        ("loop { }", "loop"),
        ("while true { } true", "while"),
        ("import \"os\" as os; true", "import"),
        ("eval(\"true\")", "eval"),
        ("do { } while false; true", "do"),
    ] {
        let c = check(&playbook_with(cond));
        assert!(codes(&c).contains(&"E204"), "{cond}: {:?}", codes(&c));
        assert!(c.diagnostics.iter().any(|d| d.message.contains(word)), "{cond}");
    }
}

#[test]
fn sleep_and_clock_are_not_available() {
    for cond in ["sleep(10); true", "timestamp() != ()", "print(\"x\"); true"] {
        let c = check(&playbook_with(cond));
        assert!(codes(&c).contains(&"E204"), "{cond}: {:?}", codes(&c));
    }
}

#[test]
fn unknown_functions_and_variables_are_reported_with_suggestions() {
    let c = check(&playbook_with("kg::servce(event.service).stateless"));
    let d = c.diagnostics.iter().find(|d| d.code == Code::UnknownFunction).expect("E202");
    assert!(d.help.as_deref().unwrap_or("").contains("kg::service"), "{:?}", d.help);
    let c = check(&playbook_with("evnt.service == \"api\""));
    let d = c.diagnostics.iter().find(|d| d.code == Code::UnknownVariable).expect("E203");
    assert!(d.help.as_deref().unwrap_or("").contains("`event`"));
}

#[test]
fn rhai_errors_point_into_the_sparky_file() {
    let text = playbook_with("event.service ==");
    let c = check(&text);
    let d = c.diagnostics.iter().find(|d| d.code == Code::ConditionSyntax).expect("E201");
    let (line, _) = d.line_col().unwrap();
    assert_eq!(line, 6, "the `when` line");
    let multi = "/// T\nplaybook T-2 \"x\" {\n  status active\n  owner \"t\"\n  on alert { labels.a == \"b\" }\n  when {\n    event.service == \"a\"\n      && kg::nope(1)\n  }\n  l3 priority P3\n}\n";
    let c = check(multi);
    let d = c.diagnostics.iter().find(|d| d.code == Code::UnknownFunction).expect("E202");
    assert_eq!(d.line_col(), Some((8, 10)));
}

#[test]
fn infinite_recursion_is_bounded() {
    let lib = "fn forever(n) { forever(n + 1) }\n";
    let pb = playbook_with("forever(1) == 1");
    let compiled = compile(&[SourceFile::new("lib.sparky", lib), SourceFile::new("t.sparky", pb)]);
    assert_eq!(compiled.errors(), 0, "{:?}", compiled.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>());
    let cond = compiled.playbooks[0].condition.clone().unwrap();
    let mut scope = Scope::new();
    scope.push_constant("event", event());
    let ctx: Arc<dyn ContextView> = Arc::new(NoContext);
    let err =
        script::evaluate_bool(&compiled.engine, &cond.ast, &mut scope, &ctx, script::limits::DEADLINE).unwrap_err();
    assert!(matches!(err, EvalError::Limit(_)), "{err:?}");
}

#[test]
fn long_loops_hit_the_operation_limit_or_the_deadline() {
    let started = Instant::now();
    let err = run("let n = 0; for i in 0..100000000 { n += 1; } n > 0", Arc::new(NoContext)).unwrap_err();
    assert!(matches!(err, EvalError::Limit(_) | EvalError::Deadline), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_wall_clock_deadline_stops_slow_work() {
    // Each operation here is slow (string building), so the deadline trips before the
    // operation limit does when the deadline is tiny.
    let compiled = check(&playbook_with("let s = \"\"; for i in 0..100000 { s = `${i}`; } s != \"\""));
    let cond = compiled.playbooks[0].condition.clone().unwrap();
    let mut scope = Scope::new();
    scope.push_constant("event", event());
    let ctx: Arc<dyn ContextView> = Arc::new(NoContext);
    let err =
        script::evaluate_bool(&compiled.engine, &cond.ast, &mut scope, &ctx, Duration::from_nanos(1)).unwrap_err();
    assert_eq!(err, EvalError::Deadline);
}

#[test]
fn huge_strings_are_bounded() {
    let err = run("let s = \"x\"; s.pad(1048576, 'x'); s.len() > 0", Arc::new(NoContext)).unwrap_err();
    assert!(matches!(err, EvalError::Limit(_)), "{err:?}");
    // A 1 MB literal is refused when compiled, as the condition source is too large.
    let c = check(&playbook_with(&format!("\"{}\" != \"\"", "x".repeat(1 << 20))));
    assert!(codes(&c).contains(&"E204"), "{:?}", codes(&c));
}

#[test]
fn amplifying_string_functions_are_refused_before_they_allocate() {
    let started = Instant::now();
    for cond in [
        "let s = \"\"; s.pad(30000, 'x'); let t = s; t.replace(\"x\", s); true",
        "let s = \"\"; s.pad(30000, 'x'); let t = s; t.replace('x', s); true",
        "let s = \"\"; s.pad(60000, 'x'); let a = []; for i in 0..1000 { a.push(s); } a.len() > 0",
    ] {
        let err = run(cond, Arc::new(NoContext)).unwrap_err();
        assert!(matches!(err, EvalError::Limit(_)), "{cond}: {err:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "refused only after building the string");
    // Ordinary replacements still work.
    assert_eq!(run("let s = \"a-b\"; s.replace(\"-\", \"--\"); s == \"a--b\"", Arc::new(NoContext)), Ok(true));
}

#[test]
fn functions_cannot_be_reached_through_function_pointers() {
    assert!(run("Fn(\"eval\").call(\"true\")", Arc::new(NoContext)).is_err());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let c = check(&playbook_with(&format!("{}true{}", "(".repeat(60), ")".repeat(60))));
    assert!(c.errors() > 0);
    let c = check(&playbook_with(&format!("{}1{}", "-(".repeat(200), ")".repeat(200))));
    assert!(c.errors() > 0);
}

#[test]
fn conditions_must_return_booleans() {
    assert_eq!(run("42", Arc::new(NoContext)), Err(EvalError::NotBoolean("an i64".into())));
}

#[test]
fn pb001_guards_read_the_knowledge_snapshot() {
    let text = std::fs::read_to_string("playbooks/PB-001-stateless-pod-restart.sparky").unwrap();
    let compiled = compile(&[SourceFile::new("PB-001.sparky", text)]);
    // PB-001's safety checks are `guard when` conditions of its L1: all must hold.
    let conditions = compiled.playbooks[0].l1.as_ref().unwrap().guards.conditions.clone();
    assert_eq!(conditions.len(), 3);
    let eval = |ctx: Knowledge| {
        let ctx: Arc<dyn ContextView> = Arc::new(ctx);
        conditions.iter().all(|cond| {
            let mut scope = Scope::new();
            scope.push_constant("event", event());
            script::evaluate_bool(&compiled.engine, &cond.ast, &mut scope, &ctx, script::limits::DEADLINE).unwrap()
        })
    };
    let now = 1_800_000_000_000;
    let mut stateless = Map::new();
    stateless.insert("stateless".into(), true.into());
    let died_of = |reason: &str| {
        let mut m = Map::new();
        m.insert("last_termination_reason".into(), reason.into());
        m
    };
    let mut ctx = Knowledge::new(Default::default(), now);
    ctx.add_pod("prod", "api-0", died_of("Error"));
    assert!(!eval(ctx.clone()), "an unknown service is not known to be stateless");
    ctx.add_facts("api", stateless);
    assert!(eval(ctx.clone()), "stateless, benign reason, no recent deploy");
    ctx.add_pod("prod", "api-0", died_of("OOMKilled"));
    assert!(!eval(ctx.clone()), "OOMKilled is not cured by a restart");
    let mut no_pod = Knowledge::new(Default::default(), now);
    no_pod.add_facts("api", {
        let mut m = Map::new();
        m.insert("stateless".into(), true.into());
        m
    });
    assert!(!eval(no_pod), "a pod Sparky knows nothing of is not restarted");
    ctx.add_pod("prod", "api-0", died_of("Error"));
    let deploy = |mins: i64| Deploy {
        key: "d1".into(),
        service: "api".into(),
        at: chrono::DateTime::from_timestamp_millis(now - mins * 60_000).unwrap(),
        state: DeployState::Succeeded,
        environment: None,
        version: Some("v2".into()),
        commit: None,
        repository: None,
        by: None,
        url: None,
        source: "test".into(),
        summary: "deploy".into(),
    };
    let mut recent = ctx.clone();
    recent.add_deploy(deploy(10));
    assert!(!eval(recent), "deployed 10 minutes ago");
    ctx.add_deploy(deploy(45));
    assert!(eval(ctx), "deployed 45 minutes ago");
}

/// A limit hit inside a closure that a built-in calls (a `sort` comparator, `map`, `filter`,
/// `reduce`, `retain`, `all`, `some`) is an error of the whole condition: rhai's iterating
/// built-ins swallowed it, so a condition ran many times its deadline and still matched.
#[test]
fn limits_hold_inside_closures_of_iterating_built_ins() {
    let fill = "let a = []; for i in 0..300 { a.push(i) }";
    let slow = "{ let s = 0; for j in 0..2000 { s += j } }";
    let cases = [
        format!("{fill} a.sort(|x, y| {{ {slow}; y - x }}); true"),
        format!("{fill} let b = a.map(|x| {{ {slow}; x }}); true"),
        format!("{fill} let b = a.filter(|x| {{ {slow}; true }}); true"),
        format!("{fill} let r = a.reduce(|s, x| {{ {slow}; s + x }}, 0); true"),
        format!("{fill} a.retain(|x| {{ {slow}; true }}); true"),
        format!("{fill} a.all(|x| {{ {slow}; true }})"),
        format!("{fill} !a.some(|x| {{ {slow}; false }})"),
    ];
    for condition in &cases {
        let started = Instant::now();
        let result = run(condition, Arc::new(NoContext));
        assert!(matches!(result, Err(EvalError::Limit(_) | EvalError::Deadline)), "{condition}: {result:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{condition}: {:?}", started.elapsed());
    }
    // A comparator that errors is an error too, not an `equal` that lets the sort go on.
    let err = run(&format!("{fill} a.sort(|x, y| x / (y - y)); true"), Arc::new(NoContext));
    assert!(err.is_err(), "{err:?}");
}
