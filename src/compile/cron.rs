//! Cron schedules and their time zones.

use super::Cx;
use crate::diagnostics::{Code, Diagnostic, as_fragment};
use crate::dsl::ast::Spanned;
use std::str::FromStr;

/// Checks a five-field cron expression (minute hour day-of-month month day-of-week).
pub(super) fn check_expr(cx: &mut Cx, expr: &Spanned<String>) -> bool {
    let fields = expr.node.split_whitespace().count();
    let problem = if fields != 5 {
        Some(format!("it has {fields} field{}, not 5", if fields == 1 { "" } else { "s" }))
    } else if let Some(why) = out_of_range(&expr.node) {
        Some(why)
    } else {
        croner::Cron::from_str(&expr.node)
            .err()
            .map(|e| as_fragment(e.to_string().trim_start_matches("Component error: ")))
    };
    match problem {
        None => true,
        Some(why) => {
            cx.push(
                Diagnostic::new(Code::InvalidCron, format!("`{}` is not a valid cron schedule: {why}", expr.node))
                    .at(&cx.file, expr.span, "invalid schedule")
                    .with_help(
                        "write five fields: minute hour day-of-month month day-of-week, e.g. `\"0 9 * * MON-FRI\"`",
                    ),
            );
            false
        }
    }
}

/// Checks an IANA time zone name such as `Europe/Paris`.
pub(super) fn check_tz(cx: &mut Cx, tz: &Spanned<String>) -> bool {
    if chrono_tz::Tz::from_str(&tz.node).is_ok() {
        return true;
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
    cx.push(
        Diagnostic::new(Code::UnknownTimeZone, format!("unknown time zone `{}`", tz.node))
            .at(&cx.file, tz.span, "not an IANA time zone")
            .with_help("use an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`")
            .suggest(&tz.node, names),
    );
    false
}

/// The first number outside its field's range, said plainly: croner only says "number out of
/// bounds", without the field.
fn out_of_range(expr: &str) -> Option<String> {
    const FIELDS: [(&str, u32, u32); 5] =
        [("minute", 0, 59), ("hour", 0, 23), ("day of the month", 1, 31), ("month", 1, 12), ("day of the week", 0, 7)];
    for (field, (name, min, max)) in expr.split_whitespace().zip(FIELDS) {
        for part in field.split(',') {
            let range = part.split('/').next().unwrap_or("");
            for bound in range.split('-') {
                if let Ok(n) = bound.parse::<u32>()
                    && (n < min || n > max)
                {
                    return Some(format!("the {name} `{n}` is out of range ({min} to {max})"));
                }
            }
        }
    }
    None
}
