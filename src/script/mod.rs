//! The one place a rhai engine is built, and how conditions are evaluated.
//!
//! Conditions are code written by SREs and run inside Sparky at 3 a.m.: the engine starts
//! from `Engine::new_raw()` (no file access, no module resolver, no `print`, no `sleep`) and
//! adds only the packages a condition needs. Every evaluation is bounded: operations, call
//! depth, expression depth, string, array and map sizes, and a wall-clock deadline reset
//! before each run. A hostile condition is an error, never a hang or a panic.

pub mod context;
pub mod event;
mod kg;

pub use context::{ContextView, NoContext};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage, BasicStringPackage,
    LogicPackage, MoreStringPackage, Package,
};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope, Shared};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Limits on one evaluation.
pub mod limits {
    /// Operations (roughly: expression nodes evaluated) per evaluation.
    pub const MAX_OPERATIONS: u64 = 200_000;
    /// Nested function calls (helpers calling helpers).
    pub const MAX_CALL_LEVELS: usize = 16;
    /// Expression nesting at the top level and inside functions.
    pub const MAX_EXPR_DEPTH: usize = 64;
    pub const MAX_FN_EXPR_DEPTH: usize = 32;
    /// Bytes in one string value.
    pub const MAX_STRING_SIZE: usize = 64 * 1024;
    /// Items in one array or map.
    pub const MAX_ARRAY_SIZE: usize = 10_000;
    pub const MAX_MAP_SIZE: usize = 10_000;
    /// Variables alive at once.
    pub const MAX_VARIABLES: usize = 256;
    /// Wall-clock budget of one evaluation.
    pub const DEADLINE: std::time::Duration = std::time::Duration::from_millis(50);
    /// Bytes of rhai source in one condition or helper.
    pub const MAX_SOURCE: usize = 16 * 1024;
}

/// Keywords a condition may not use, and why.
pub const FORBIDDEN: &[(&str, &str)] = &[
    ("import", "conditions cannot load modules; shared code belongs in a helper (`fn`)"),
    ("export", "conditions cannot export anything"),
    ("eval", "conditions cannot evaluate code built at run time"),
    ("loop", "conditions must finish quickly; iterate over a list with `for` instead"),
    ("while", "conditions must finish quickly; iterate over a list with `for` instead"),
    ("do", "conditions must finish quickly; iterate over a list with `for` instead"),
    ("print", "conditions have no output; the decision trace records their value"),
    ("debug", "conditions have no output; the decision trace records their value"),
];

/// The name under which the event is visible in conditions.
pub const EVENT_VAR: &str = "event";

/// Shared pieces defined by the standard library and the user's library files.
#[derive(Clone, Default)]
pub struct Library {
    /// Helper functions, compiled: one AST holding every `fn`.
    pub helpers: Option<AST>,
    /// Named lists, visible in conditions as `lists::<name>`.
    pub lists: BTreeMap<String, Vec<Dynamic>>,
}

/// The packages a condition may use, built once: they are immutable and shared.
fn packages() -> &'static [Shared<rhai::Module>] {
    static PACKAGES: OnceLock<Vec<Shared<rhai::Module>>> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        vec![
            ArithmeticPackage::new().as_shared_module(),
            LogicPackage::new().as_shared_module(),
            BasicStringPackage::new().as_shared_module(),
            MoreStringPackage::new().as_shared_module(),
            BasicArrayPackage::new().as_shared_module(),
            BasicMapPackage::new().as_shared_module(),
            BasicMathPackage::new().as_shared_module(),
            BasicIteratorPackage::new().as_shared_module(),
        ]
    })
}

/// Builds the sandboxed engine, with `library` (helpers and lists) when given.
pub fn build_engine(library: Option<&Library>) -> Engine {
    let mut engine = Engine::new_raw();
    for package in packages() {
        engine.register_global_module(package.clone());
    }
    guard_amplifying_functions(&mut engine);
    for (symbol, _) in FORBIDDEN {
        engine.disable_symbol(*symbol);
    }
    engine
        .set_max_operations(limits::MAX_OPERATIONS)
        .set_max_call_levels(limits::MAX_CALL_LEVELS)
        .set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FN_EXPR_DEPTH)
        .set_max_string_size(limits::MAX_STRING_SIZE)
        .set_max_array_size(limits::MAX_ARRAY_SIZE)
        .set_max_map_size(limits::MAX_MAP_SIZE)
        .set_max_variables(limits::MAX_VARIABLES)
        .set_max_modules(0)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(false)
        // What the SRE wrote is what is checked and run: the optimizer would drop calls it
        // proves dead (hiding misspelt names from `check`) for little gain on short conditions.
        .set_optimization_level(rhai::OptimizationLevel::None);
    // A limit hit is remembered for the whole evaluation (`TRIPPED`), and every operation
    // after it stops at once: rhai's iterating built-ins call closures and may swallow the
    // error a closure stops with (a `sort` comparator does), so the limit must hold across
    // the calls, and the evaluation must fail even when the built-in carried on.
    engine.on_progress(|ops| {
        if let Some(trip) = TRIPPED.with(Cell::get) {
            return Some(Dynamic::from(trip.as_str()));
        }
        let trip = if ops >= limits::MAX_OPERATIONS {
            Trip::Operations
        } else if ops % 256 == 0 && DEADLINE.with(|d| d.get().is_some_and(|d| Instant::now() > d)) {
            Trip::Deadline
        } else {
            return None;
        };
        TRIPPED.with(|t| t.set(Some(trip)));
        Some(Dynamic::from(trip.as_str()))
    });
    engine.register_static_module("kg", kg::module().into());
    if let Some(library) = library {
        if let Some(helpers) = &library.helpers {
            let mut module = rhai::Module::new();
            for f in helpers.iter_fn_def() {
                module.set_script_fn(f.clone());
            }
            engine.register_global_module(Shared::new(module));
        }
        let mut lists = rhai::Module::new();
        for (name, values) in &library.lists {
            lists.set_var(name.clone(), values.clone());
        }
        engine.register_static_module("lists", lists.into());
    }
    engine
}

/// rhai checks a string's size only after a native function has built it, so a `replace`
/// of every character by a long string could allocate gigabytes before the check. These
/// versions, registered over the package's, compute the size first and refuse beforehand.
fn guard_amplifying_functions(engine: &mut Engine) {
    fn too_large() -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorDataTooLarge("Length of string".into(), rhai::Position::NONE))
    }
    fn checked_replace(s: &mut rhai::ImmutableString, find: &str, sub: &str) -> Result<(), Box<EvalAltResult>> {
        let count = s.matches(find).count();
        let grown = s.len().saturating_add(count.saturating_mul(sub.len())).saturating_sub(count * find.len());
        if grown > limits::MAX_STRING_SIZE {
            return Err(too_large());
        }
        *s = s.replace(find, sub).into();
        Ok(())
    }
    engine.register_fn("replace", checked_replace);
    // rhai's `sort` with a comparator treats a comparator that fails as "equal" and goes on:
    // this one stops at the first failure and fails the call.
    engine.register_fn(
        "sort",
        |ctx: rhai::NativeCallContext,
         array: &mut rhai::Array,
         comparer: rhai::FnPtr|
         -> Result<(), Box<EvalAltResult>> {
            let mut failed: Option<Box<EvalAltResult>> = None;
            array.sort_by(|x, y| {
                if failed.is_some() {
                    return std::cmp::Ordering::Equal;
                }
                match comparer.call_within_context::<Dynamic>(&ctx, (x.clone(), y.clone())) {
                    Ok(v) => match v.as_int() {
                        Ok(n) => n.cmp(&0),
                        Err(t) => {
                            failed =
                                Some(format!("the `sort` comparator returned {}, not a number", article(t)).into());
                            std::cmp::Ordering::Equal
                        }
                    },
                    Err(e) => {
                        failed = Some(e);
                        std::cmp::Ordering::Equal
                    }
                }
            });
            failed.map_or(Ok(()), Err)
        },
    );
    engine.register_fn("replace", |s: &mut rhai::ImmutableString, find: char, sub: &str| {
        checked_replace(s, find.encode_utf8(&mut [0; 4]), sub)
    });
    engine.register_fn("replace", |s: &mut rhai::ImmutableString, find: &str, sub: char| {
        checked_replace(s, find, sub.encode_utf8(&mut [0; 4]))
    });
}

thread_local! {
    /// The deadline of the evaluation running on this thread, checked by `on_progress`.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The limit the evaluation running on this thread hit, if any.
    static TRIPPED: Cell<Option<Trip>> = const { Cell::new(None) };
}

/// A limit `on_progress` enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trip {
    Deadline,
    Operations,
}

impl Trip {
    fn as_str(self) -> &'static str {
        match self {
            Trip::Deadline => "deadline",
            Trip::Operations => "operations",
        }
    }

    fn error(self) -> EvalError {
        match self {
            Trip::Deadline => EvalError::Deadline,
            Trip::Operations => EvalError::Limit(format!("more than {} operations", limits::MAX_OPERATIONS)),
        }
    }
}

/// Why an evaluation did not produce a boolean.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EvalError {
    /// The condition ran past its wall-clock deadline.
    Deadline,
    /// The condition exceeded an operation, depth or size limit.
    Limit(String),
    /// The condition returned something other than a boolean.
    NotBoolean(String),
    /// A run-time error (missing function, type mismatch, ...), with rhai's line and column.
    Runtime { message: String, line: Option<usize>, column: Option<usize> },
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Deadline => write!(f, "the condition ran past its {} ms deadline", limits::DEADLINE.as_millis()),
            EvalError::Limit(m) => write!(f, "the condition exceeded a limit: {m}"),
            EvalError::NotBoolean(t) => write!(f, "the condition returned {t}, not `true` or `false`"),
            EvalError::Runtime { message, .. } => write!(f, "the condition failed: {message}"),
        }
    }
}

/// Evaluates a compiled condition with `scope` (holding `event`) and the knowledge `context`.
/// The deadline is reset for this evaluation and cleared after it.
pub fn evaluate_bool(
    engine: &Engine,
    ast: &AST,
    scope: &mut Scope,
    context: &std::sync::Arc<dyn ContextView>,
    deadline: Duration,
) -> Result<bool, EvalError> {
    DEADLINE.with(|d| d.set(Some(Instant::now() + deadline)));
    TRIPPED.with(|t| t.set(None));
    let result = context::with_context(context, || engine.eval_ast_with_scope::<Dynamic>(scope, ast));
    DEADLINE.with(|d| d.set(None));
    // A limit hit anywhere, even inside a closure whose error a built-in swallowed, fails it.
    if let Some(trip) = TRIPPED.with(|t| t.take()) {
        return Err(trip.error());
    }
    match result {
        Ok(v) => v.as_bool().map_err(|t| EvalError::NotBoolean(article(t))),
        Err(e) => Err(to_eval_error(*e)),
    }
}

/// rhai's messages name Rust types (`&str | ImmutableString | String`, `i64`); SREs read
/// rhai's own names.
fn plain_types(message: &str) -> String {
    message
        .replace("&str | ImmutableString | String", "string")
        .replace("ImmutableString", "string")
        .replace("&mut ", "")
        .replace("i64", "int")
        .replace("f64", "float")
        .replace("rhai::Map", "map")
        .replace("rhai::Array", "array")
        .replace(" (())", " (on a missing value, `()`)")
}

fn article(type_name: &str) -> String {
    match type_name {
        "()" => "nothing".to_string(),
        t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
        t => format!("a {t}"),
    }
}

fn to_eval_error(e: EvalAltResult) -> EvalError {
    match e {
        EvalAltResult::ErrorTerminated(..) => EvalError::Deadline,
        EvalAltResult::ErrorTooManyOperations(..) => {
            EvalError::Limit(format!("more than {} operations", limits::MAX_OPERATIONS))
        }
        EvalAltResult::ErrorStackOverflow(..) => {
            EvalError::Limit(format!("calls nested more than {} deep", limits::MAX_CALL_LEVELS))
        }
        EvalAltResult::ErrorDataTooLarge(what, ..) => EvalError::Limit(format!("{} too large", what.to_lowercase())),
        EvalAltResult::ErrorTooManyVariables(..) => {
            EvalError::Limit(format!("more than {} variables", limits::MAX_VARIABLES))
        }
        mut other => {
            let pos = other.take_position();
            EvalError::Runtime { message: plain_types(&other.to_string()), line: pos.line(), column: pos.position() }
        }
    }
}

/// The engine's own functions (packages and `kg::`) with their argument counts. They do not
/// depend on the library, so they are listed once per process.
fn builtin_functions() -> &'static BTreeMap<String, Vec<usize>> {
    static BUILTIN: OnceLock<BTreeMap<String, Vec<usize>>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let mut known: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for sig in build_engine(None).gen_fn_signatures(true) {
            // Signatures read `name(a: T, b: U) -> R`, with the namespace for static modules.
            let Some((name, rest)) = sig.split_once('(') else { continue };
            let args = rest.split(')').next().unwrap_or("");
            let arity = if args.trim().is_empty() { 0 } else { args.split(',').count() };
            known.entry(name.trim().to_string()).or_default().push(arity);
        }
        for arities in known.values_mut() {
            arities.sort_unstable();
            arities.dedup();
        }
        known
    })
}

/// Whether `name` is one of the engine's own functions (which a helper may not redefine).
pub fn is_builtin(name: &str) -> bool {
    builtin_functions().contains_key(name)
}

/// Function names a condition may call (packages, `kg::`, the library's helpers), with the
/// argument counts each accepts; the compiler checks condition calls against it.
pub fn known_functions(library: Option<&Library>) -> BTreeMap<String, Vec<usize>> {
    let mut known = builtin_functions().clone();
    if let Some(helpers) = library.and_then(|l| l.helpers.as_ref()) {
        for f in helpers.iter_functions() {
            let arities = known.entry(f.name.to_string()).or_default();
            arities.push(f.params.len());
            arities.sort_unstable();
            arities.dedup();
        }
    }
    known
}

/// Names rhai handles itself rather than as registered functions.
pub const BUILTIN_CALLS: &[&str] = &["type_of", "is_def_var", "is_def_fn", "is_shared", "Fn", "call", "curry"];
