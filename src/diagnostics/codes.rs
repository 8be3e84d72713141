//! The registry of diagnostic codes.
//!
//! Codes are grouped by stage: E0xx syntax, E1xx names and semantics, E2xx conditions (rhai),
//! W3xx lints, E4xx the service catalog (whose warnings continue the W3xx range from W310). A
//! code is a promise to users (CI configurations and `--explain` refer to it): never reuse or
//! renumber one; retire it by leaving its line here with a note. Every code has its page
//! `docs/codes/<CODE>.md`, which `sparky check --explain CODE` prints.

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $sev:ident, $summary:literal;)*) => {
        /// A stable diagnostic code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as users see it, e.g. `E101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The name of the problem, e.g. `UnknownAction`.
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => stringify!($variant),)* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }

            /// One line saying what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// Finds a code by its text (`E101`, `e101`) or its name (`UnknownAction`).
            pub fn parse(text: &str) -> Option<Code> {
                let t = text.trim();
                Code::ALL.iter().copied().find(|c| c.as_str().eq_ignore_ascii_case(t) || c.name().eq_ignore_ascii_case(t))
            }

            /// The documentation page of the code (the text of `docs/codes/<CODE>.md`).
            pub fn page(self) -> &'static str {
                match self { $(Code::$variant => include_str!(concat!("../../docs/codes/", $code, ".md")),)* }
            }
        }
    };
}

codes! {
    // E0xx: syntax
    UnexpectedInput = "E001", Error, "the text does not follow the playbook grammar";
    UnterminatedString = "E002", Error, "a string is not closed before the end of its line";
    UnclosedBlock = "E003", Error, "a `{` is not closed before the end of the file";
    InvalidUtf8 = "E004", Error, "the file is not valid UTF-8 text";

    // E1xx: names and semantics
    UnknownAction = "E101", Error, "an L1 `do` names an action that does not exist";
    UnknownParameter = "E102", Error, "a call passes a parameter that the action or generator does not take";
    MissingParameter = "E103", Error, "a call leaves out a required parameter";
    ArgumentType = "E104", Error, "an argument's value has the wrong type for its parameter";
    DuplicatePlaybookId = "E105", Error, "two playbooks have the same id";
    InvalidStatus = "E106", Error, "a playbook status is not `active`, `draft` or `disabled`";
    UnknownField = "E107", Error, "a matcher, guard or argument refers to an event field that does not exist";
    UnknownSource = "E108", Error, "a trigger names an event source that Sparky does not know";
    UnknownKind = "E109", Error, "a trigger names an event kind that Sparky does not know";
    InvalidRegex = "E110", Error, "a `=~` or `!~` matcher has a regular expression that does not compile";
    UnknownList = "E111", Error, "a value refers to a list that is not defined";
    DuplicateStatement = "E112", Error, "a statement that may appear once appears twice";
    SeveralPlaybooksInFile = "E113", Error, "a file holds more than one playbook";
    ValueOutOfRange = "E114", Error, "a number, duration or percentage is outside the range it must be in";
    InvalidCron = "E115", Error, "a cron schedule expression is not valid";
    UnknownTimeZone = "E116", Error, "a cron schedule names a time zone that does not exist";
    MissingTrigger = "E117", Error, "a playbook has no `on` trigger";
    MissingResponse = "E118", Error, "a playbook has no `l1`, `l2` or `l3` response";
    MissingOwner = "E119", Error, "a playbook has no `owner`";
    InvalidPriority = "E120", Error, "an L3 priority is not one of `P1`..`P4`";
    UnknownFixGenerator = "E121", Error, "an L2 `fix` names a fix generator that does not exist";
    OperatorValueMismatch = "E122", Error, "a matcher's operator does not fit its value";
    DuplicateArgument = "E123", Error, "a call passes the same parameter twice";
    DuplicateName = "E124", Error, "a list or helper is defined twice";
    EmptyResponse = "E125", Error, "an `l1` block has no `do`, or an `l2` block has no `fix`";
    InvalidProbeUrl = "E126", Error, "a `verify probe` URL is not an `http://` or `https://` URL";

    // E2xx: conditions (rhai)
    ConditionSyntax = "E201", Error, "a `when` condition or helper is not valid rhai";
    UnknownFunction = "E202", Error, "a condition calls a function that does not exist";
    UnknownVariable = "E203", Error, "a condition uses a variable that does not exist";
    ForbiddenInCondition = "E204", Error, "a condition uses something the sandbox forbids (`import`, `eval`, ...)";
    WrongArgumentCount = "E205", Error, "a condition calls a known function with the wrong number of arguments";
    InvalidWindow = "E206", Error, "a `kg::` function is given a window that is not a duration";

    // W3xx: lints
    L1WithoutRateLimit = "W301", Warning, "an L1 response has neither a `cooldown` nor an `at_most` guard";
    L1WithoutVerification = "W302", Warning, "an L1 response has no `verify` step";
    UnreachablePlaybook = "W303", Warning, "a playbook can never decide: a higher-priority playbook has the same trigger";
    UnusedList = "W304", Warning, "a list is defined but never used";
    UnusedHelper = "W305", Warning, "a helper function is defined but never called";
    UnboundedTarget = "W306", Warning, "an L1 action's target is not bounded by the event";
    L1OnUnfilteredTrigger = "W307", Warning, "an L1 response runs on every event of its kind: no matcher and no condition";
    MissingDocs = "W308", Warning, "a playbook has no `///` documentation";
    EmptyFile = "W309", Warning, "a `.sparky` file holds no playbook, list or helper";
    UnresolvedEntityRef = "W310", Warning, "a catalog entity refers to an entity that is not in the catalog";
    DependencyCycle = "W311", Warning, "catalog services depend on each other in a cycle";
    UnknownAnnotation = "W312", Warning, "a catalog entity has a `sparky.dev/` annotation that Sparky does not know";
    AmbiguousAlias = "W313", Warning, "a service alias is already the name or alias of another service";

    // E4xx: catalog
    CatalogSyntax = "E401", Error, "a catalog file is not valid YAML";
    InvalidEntity = "E402", Error, "a catalog entity lacks a required field, has an unknown kind or a field of the wrong type";
    DuplicateEntity = "E403", Error, "two catalog entities have the same kind, namespace and name";
    InvalidAnnotation = "E404", Error, "a catalog annotation's value is not in the form Sparky reads";
}

impl Code {
    /// Whether the code is about the service catalog rather than playbooks: its fixtures are
    /// catalogs (`tests/fixtures/catalog/`) and its page's example is YAML.
    pub fn is_catalog(self) -> bool {
        matches!(
            self,
            Code::CatalogSyntax
                | Code::InvalidEntity
                | Code::DuplicateEntity
                | Code::InvalidAnnotation
                | Code::UnresolvedEntityRef
                | Code::DependencyCycle
                | Code::UnknownAnnotation
                | Code::AmbiguousAlias
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_grouped_by_stage() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{} is used twice", c.as_str());
            let warning = c.as_str().starts_with('W');
            assert_eq!(warning, c.severity() == Severity::Warning, "{}", c.as_str());
            assert!(!c.page().is_empty());
            assert_eq!(Code::parse(c.as_str()), Some(*c));
            assert_eq!(Code::parse(c.name()), Some(*c));
        }
    }
}
