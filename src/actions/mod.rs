//! Actions: what an L1 response can do, one file per action.
//!
//! Each file holds the action's metadata: its name, what it does, its typed parameters with
//! their docs, examples, and how its blast radius is counted. `sparky check` validates every
//! `do` against this metadata. Execution (`plan()` pure, `apply()` idempotent) arrives with
//! the autonomous-engine issue and lives in the same files.

mod k8s_delete_pod;
mod k8s_scale;
mod notify_token_owners;
mod redis_delete_keys;
pub mod reference;

/// The type of a parameter, as written in a playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Text; may be a template such as `"user:{labels.user}:*"` or an event field.
    Str,
    /// A whole number.
    Int,
    /// A number, whole or not.
    Number,
    Bool,
    /// A duration such as `15m`.
    Duration,
    /// A list of strings.
    StrList,
    /// A list of durations.
    DurationList,
}

impl ParamType {
    pub fn describe(self) -> &'static str {
        match self {
            ParamType::Str => "a string",
            ParamType::Int => "an integer",
            ParamType::Number => "a number",
            ParamType::Bool => "a boolean",
            ParamType::Duration => "a duration",
            ParamType::StrList => "a list of strings",
            ParamType::DurationList => "a list of durations",
        }
    }
}

/// Where a parameter's value may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSource {
    /// A literal, a template or an event field.
    Any,
    /// A literal only: bounds and ceilings are set in reviewed code, never by the alert.
    Literal,
}

/// One parameter of an action or fix generator.
#[derive(Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub source: ParamSource,
    /// The parameter names what the action touches: it must be bound by the event (W306).
    pub target: bool,
    /// The values a string parameter may take; empty means any.
    pub choices: &'static [&'static str],
    /// The smallest and largest value a number parameter may take, both included.
    pub range: Option<(f64, f64)>,
    pub doc: &'static str,
}

impl ParamSpec {
    /// A required parameter that takes literals, templates and event fields; narrow it with
    /// the methods below.
    pub const fn new(name: &'static str, ty: ParamType, doc: &'static str) -> Self {
        ParamSpec { name, ty, required: true, source: ParamSource::Any, target: false, choices: &[], range: None, doc }
    }

    pub const fn optional(self) -> Self {
        ParamSpec { required: false, ..self }
    }

    /// Only a literal: for bounds and ceilings.
    pub const fn literal(self) -> Self {
        ParamSpec { source: ParamSource::Literal, ..self }
    }

    /// Names what the action touches (W306 wants it bound by the event).
    pub const fn target(self) -> Self {
        ParamSpec { target: true, ..self }
    }

    pub const fn choices(self, choices: &'static [&'static str]) -> Self {
        ParamSpec { choices, ..self }
    }

    pub const fn range(self, min: f64, max: f64) -> Self {
        ParamSpec { range: Some((min, max)), ..self }
    }
}

/// How many things one run of an action touches, for `guard blast_radius`.
#[derive(Debug)]
pub struct Radius {
    pub count: RadiusCount,
    /// The count in words, for the reference.
    pub doc: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub enum RadiusCount {
    Fixed(u64),
    /// The absolute value of an integer parameter (always a literal: see `ParamSpec::literal`).
    Param(&'static str),
}

/// The metadata of one action.
#[derive(Debug)]
pub struct ActionSpec {
    /// `k8s.delete_pod`.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Whether it changes the world (every action but notifications).
    pub mutating: bool,
    /// How its blast radius (for `guard blast_radius`) is counted.
    pub blast_radius: Radius,
    pub params: &'static [ParamSpec],
    /// Calls as a playbook writes them.
    pub examples: &'static [&'static str],
}

/// Every action, sorted by name.
pub fn all() -> &'static [&'static ActionSpec] {
    static ALL: [&ActionSpec; 4] =
        [&k8s_delete_pod::SPEC, &k8s_scale::SPEC, &notify_token_owners::SPEC, &redis_delete_keys::SPEC];
    &ALL
}

/// The action called `name`.
pub fn find(name: &str) -> Option<&'static ActionSpec> {
    all().iter().copied().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_sorted_unique_and_documented() {
        let names: Vec<_> = all().iter().map(|a| a.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for a in all() {
            assert!(!a.summary.is_empty() && !a.examples.is_empty(), "{}", a.name);
            assert!(a.params.iter().all(|p| !p.doc.is_empty()), "{}", a.name);
        }
    }
}
