//! The library: named lists and helper functions, from `stdlib/` and the user's files.

use super::Cx;
use super::condition;
use super::model::Scalar;
use crate::diagnostics::{Code, Diagnostic, SourceFile, Span};
use crate::dsl::ast::{File, Item, ValueKind};
use crate::script::Library;
use rhai::Dynamic;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A list or helper definition and whether anything used it.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub stdlib: bool,
    pub used: Cell<bool>,
}

#[derive(Debug)]
pub(crate) struct ListEntry {
    pub values: Vec<Scalar>,
    pub def: Definition,
}

pub(crate) struct HelperEntry {
    pub ast: rhai::AST,
    pub source: crate::dsl::ast::RhaiSource,
    pub def: Definition,
}

/// Every list and helper by name.
#[derive(Default)]
pub(crate) struct LibIndex {
    pub lists: BTreeMap<String, ListEntry>,
    pub helpers: BTreeMap<String, HelperEntry>,
}

impl LibIndex {
    /// The library as the engine takes it.
    pub fn to_library(&self) -> Library {
        let mut helpers: Option<rhai::AST> = None;
        for h in self.helpers.values() {
            helpers = Some(match helpers {
                None => h.ast.clone(),
                Some(acc) => acc.merge(&h.ast),
            });
        }
        let lists = self
            .lists
            .iter()
            .map(|(name, l)| (name.clone(), l.values.iter().map(scalar_to_dynamic).collect()))
            .collect();
        Library { helpers, lists }
    }
}

fn scalar_to_dynamic(s: &Scalar) -> Dynamic {
    match s {
        Scalar::Str(s) => s.clone().into(),
        Scalar::Int(n) => (*n).into(),
        Scalar::Float(f) => (*f).into(),
        Scalar::Bool(b) => (*b).into(),
    }
}

fn definition(cx: &Cx, span: Span, stdlib: bool) -> Definition {
    Definition { file: cx.file.clone(), span, stdlib, used: Cell::new(false) }
}

fn duplicate(cx: &mut Cx, what: &str, name: &str, span: Span, first: &Definition) {
    let mut d = Diagnostic::new(Code::DuplicateName, format!("the {what} `{name}` is defined twice")).at(
        &cx.file,
        span,
        "defined again here",
    );
    let mut help = String::new();
    if Arc::ptr_eq(&first.file, &cx.file) {
        d = d.with_secondary(first.span, "first defined here");
    } else {
        let (line, _) = first.file.line_col(first.span.start);
        help = format!("it is first defined in `{}` at line {line}; ", first.file.name);
    }
    help.push_str("rename one of them");
    if first.stdlib {
        help.push_str(" (the first is in Sparky's standard library)");
    }
    cx.push(d.with_help(help));
}

/// Phase 2: records the lists and compiles the helpers of one file.
pub(super) fn collect(cx: &mut Cx, file: &File, stdlib: bool) {
    for item in &file.items {
        match item {
            Item::List(list) => {
                let name = &list.name.node;
                if let Some(first) = cx.lib.lists.get(name) {
                    let first = first.def.clone();
                    duplicate(cx, "list", name, list.name.span, &first);
                    continue;
                }
                let mut values = Vec::new();
                for v in &list.values {
                    match &v.kind {
                        ValueKind::Str(s) => values.push(Scalar::Str(s.clone())),
                        ValueKind::Int(n) => values.push(Scalar::Int(*n)),
                        ValueKind::Float(f) => values.push(Scalar::Float(*f)),
                        ValueKind::Bool(b) => values.push(Scalar::Bool(*b)),
                        other => cx.push(
                            Diagnostic::new(
                                Code::ArgumentType,
                                format!(
                                    "items of the list `{name}` must be strings, numbers or booleans, not {}",
                                    other.describe()
                                ),
                            )
                            .at(&cx.file, v.span, "not a plain value")
                            .with_help("lists hold plain values; quote names, e.g. `\"OOMKilled\"`"),
                        ),
                    }
                }
                let def = definition(cx, list.name.span, stdlib);
                cx.lib.lists.insert(name.clone(), ListEntry { values, def });
            }
            Item::Helper(helper) => {
                let name = &helper.name.node;
                if let Some(first) = cx.lib.helpers.get(name) {
                    let first = first.def.clone();
                    duplicate(cx, "helper", name, helper.name.span, &first);
                    continue;
                }
                // A helper named like a built-in would replace it everywhere, `in` included
                // (it calls `contains`): a library file could then change what every condition
                // means, silently.
                if crate::script::is_builtin(name) {
                    cx.push(
                        Diagnostic::new(Code::DuplicateName, format!("the helper `{name}` has the name of a built-in function"))
                            .at(&cx.file, helper.name.span, "already defined by rhai")
                            .with_help(if name == "contains" {
                                "defining it would change what `in` means in every condition; give the helper its own name".to_string()
                            } else {
                                format!("defining it would change every condition that calls `{name}`; give the helper its own name")
                            }),
                    );
                    continue;
                }
                if let Some(ast) = condition::compile_helper(cx, &helper.source) {
                    let def = definition(cx, helper.name.span, stdlib);
                    cx.lib.helpers.insert(name.clone(), HelperEntry { ast, source: helper.source.clone(), def });
                }
            }
            Item::Playbook(_) => {}
        }
    }
}

/// Phase 4: checks the names called inside the helpers defined in `cx.file`.
pub(super) fn check_helper_names(cx: &mut Cx) {
    let mine: Vec<(String, rhai::AST, crate::dsl::ast::RhaiSource)> = cx
        .lib
        .helpers
        .iter()
        .filter(|(_, h)| Arc::ptr_eq(&h.def.file, &cx.file))
        .map(|(name, h)| (name.clone(), h.ast.clone(), h.source.clone()))
        .collect();
    for (name, ast, source) in mine {
        condition::check_names(cx, &ast, &source, Some(&name));
    }
}

/// Looks up a list by name for a matcher or argument, marking it used.
pub(super) fn use_list(cx: &mut Cx, name: &str, span: Span) -> Option<Vec<Scalar>> {
    if let Some(list) = cx.lib.lists.get(name) {
        list.def.used.set(true);
        return Some(list.values.clone());
    }
    let names: Vec<String> = cx.lib.lists.keys().cloned().collect();
    cx.push(
        Diagnostic::new(Code::UnknownList, format!("there is no list called `{name}`"))
            .at(&cx.file, span, "unknown list")
            .with_help("define it with `list NAME = [...]` in a `.sparky` file, or write the values inline as `[\"a\", \"b\"]`")
            .suggest(name, names.iter().map(String::as_str)),
    );
    None
}

/// Marks a helper used (called from a condition or another helper).
pub(super) fn mark_helper_used(cx: &Cx, name: &str) {
    if let Some(h) = cx.lib.helpers.get(name) {
        h.def.used.set(true);
    }
}

/// The names of all known lists, for suggestions.
pub(super) fn list_names(cx: &Cx) -> Vec<String> {
    cx.lib.lists.keys().cloned().collect()
}

/// Whether `name` is a known helper.
pub(super) fn is_helper(cx: &Cx, name: &str) -> bool {
    cx.lib.helpers.contains_key(name)
}
