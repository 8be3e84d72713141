//! Small text helpers for messages, so every message lists and quotes things the same way.

/// `a`, `b`, `c`: names in backticks, comma-separated.
pub fn quoted_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items.into_iter().map(|s| format!("`{}`", s.as_ref())).collect::<Vec<_>>().join(", ")
}

/// Another library's message made to fit ours: first letter lowercase (unless the word is
/// an acronym such as `URL`), no trailing period.
pub fn as_fragment(message: &str) -> String {
    let message = message.trim().trim_end_matches('.');
    let mut chars = message.chars();
    let acronym = message.chars().take(2).all(char::is_uppercase);
    match chars.next() {
        Some(first) if !acronym => first.to_lowercase().collect::<String>() + chars.as_str(),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_and_lists() {
        assert_eq!(as_fragment("Number out of bounds."), "number out of bounds");
        assert_eq!(as_fragment("URL is bad"), "URL is bad");
        assert_eq!(quoted_list(["a", "b"]), "`a`, `b`");
    }
}
