//! What an event's value may become inside an action's parameter. An alert's content never
//! widens what an action touches: a value substituted into a template (`{labels.user_id}`) or
//! taken whole from the event is escaped for the kind of text the parameter is, or refused
//! when it cannot be made safe. The playbook's own literal text is the author's and is kept
//! as written (the `*` of `"user:{labels.user_id}:*"` stays a wildcard).

/// The kind of text a string parameter is, for the values an event puts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Free text (a chat message): any value but NUL.
    Plain,
    /// A Redis glob pattern: the value's `*`, `?`, `[`, `]` and `\` are escaped, so it
    /// matches itself only.
    Glob,
    /// Part of a URL: the value is percent-encoded as one path segment (no `/`, no `?`, no
    /// `#`); `.` and `..` are refused.
    UrlSegment,
    /// A Kubernetes object name (DNS-1123 subdomain: lowercase letters, digits, `-` and `.`,
    /// starting and ending with a letter or digit, at most 253 characters); anything else is
    /// refused.
    KubernetesName,
    /// A Kubernetes namespace (DNS-1123 label: lowercase letters, digits and `-`, at most 63).
    KubernetesNamespace,
}

impl TextKind {
    /// What the reference says of it (`None` for free text).
    pub fn describe(self) -> Option<&'static str> {
        match self {
            TextKind::Plain => None,
            TextKind::Glob => Some("event values glob-escaped (`*` `?` `[` `]` `\\`)"),
            TextKind::UrlSegment => Some("event values percent-encoded as one path segment (`.`, `..` refused)"),
            TextKind::KubernetesName => Some("event values must be Kubernetes names (else refused)"),
            TextKind::KubernetesNamespace => Some("event values must be Kubernetes namespaces (else refused)"),
        }
    }
}

/// The most bytes one value from an event may bring into a parameter.
pub const MAX_VALUE: usize = 4096;

/// `value` (from the event) made safe for `kind`, or why it cannot be.
pub fn substitute(kind: TextKind, value: &str) -> Result<String, String> {
    let shown = shown(value);
    if value.len() > MAX_VALUE {
        return Err(format!(
            "the value {shown} is {} bytes, more than the {MAX_VALUE} an event may bring into an action",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value {shown} holds a NUL byte"));
    }
    match kind {
        TextKind::Plain => Ok(value.to_string()),
        TextKind::Glob => {
            if value.contains(['\r', '\n']) {
                return Err(format!("the value {shown} holds a line break, which no key name in a pattern may"));
            }
            let mut out = String::with_capacity(value.len() + 4);
            for c in value.chars() {
                if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(out)
        }
        TextKind::UrlSegment => {
            if value == "." || value == ".." {
                return Err(format!("the value {shown} would climb the URL's path"));
            }
            let mut out = String::with_capacity(value.len());
            for b in value.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            Ok(out)
        }
        TextKind::KubernetesName => {
            let valid = value.len() <= 253 && value.split('.').all(|l| is_dns_label(l, 253)) && !value.is_empty();
            if valid {
                Ok(value.to_string())
            } else {
                Err(format!(
                    "the value {shown} is not a Kubernetes name (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters)"
                ))
            }
        }
        TextKind::KubernetesNamespace => {
            if is_dns_label(value, 63) {
                Ok(value.to_string())
            } else {
                Err(format!(
                    "the value {shown} is not a Kubernetes namespace (lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters)"
                ))
            }
        }
    }
}

fn is_dns_label(label: &str, max: usize) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The value as an error message shows it: quoted, cut at 60 characters, control characters
/// escaped.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(60).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("`{}{more}`", cut.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [&str; 10] = ["*", "../..", "a/b", "$(id)", ";", "a\nb", "a\0b", "", "é", "10k"];

    fn hostile(v: &str) -> String {
        if v == "10k" { "x".repeat(10_240) } else { v.to_string() }
    }

    /// Every hostile value, for every kind of text: escaped so that it is only itself, or
    /// refused with a reason; never passed through as it came.
    #[test]
    fn hostile_values_per_kind() {
        let table: Vec<String> = [
            TextKind::Plain,
            TextKind::Glob,
            TextKind::UrlSegment,
            TextKind::KubernetesName,
            TextKind::KubernetesNamespace,
        ]
        .iter()
        .flat_map(|k| {
            HOSTILE.iter().map(move |v| {
                let out = match substitute(*k, &hostile(v)) {
                    Ok(s) => {
                        format!("ok {:?}", if s.len() > 20 { format!("{}… ({} bytes)", &s[..20], s.len()) } else { s })
                    }
                    Err(e) => format!("refused: {}", e.chars().take(70).collect::<String>()),
                };
                format!("{k:?} {v:?}: {out}")
            })
        })
        .collect();
        let expected = [
            r#"Plain "*": ok "*""#,
            r#"Plain "../..": ok "../..""#,
            r#"Plain "a/b": ok "a/b""#,
            r#"Plain "$(id)": ok "$(id)""#,
            r#"Plain ";": ok ";""#,
            r#"Plain "a\nb": ok "a\nb""#,
            r#"Plain "a\0b": refused: the value `a\0b` holds a NUL byte"#,
            r#"Plain "": ok """#,
            r#"Plain "é": ok "é""#,
            r#"Plain "10k": refused: the value `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"#,
            r#"Glob "*": ok "\\*""#,
            r#"Glob "../..": ok "../..""#,
            r#"Glob "a/b": ok "a/b""#,
            r#"Glob "$(id)": ok "$(id)""#,
            r#"Glob ";": ok ";""#,
            r#"Glob "a\nb": refused: the value `a\nb` holds a line break, which no key name in a pattern ma"#,
            r#"Glob "a\0b": refused: the value `a\0b` holds a NUL byte"#,
            r#"Glob "": ok """#,
            r#"Glob "é": ok "é""#,
            r#"Glob "10k": refused: the value `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"#,
            r#"UrlSegment "*": ok "%2A""#,
            r#"UrlSegment "../..": ok "..%2F..""#,
            r#"UrlSegment "a/b": ok "a%2Fb""#,
            r#"UrlSegment "$(id)": ok "%24%28id%29""#,
            r#"UrlSegment ";": ok "%3B""#,
            r#"UrlSegment "a\nb": ok "a%0Ab""#,
            r#"UrlSegment "a\0b": refused: the value `a\0b` holds a NUL byte"#,
            r#"UrlSegment "": ok """#,
            r#"UrlSegment "é": ok "%C3%A9""#,
            r#"UrlSegment "10k": refused: the value `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"#,
        ];
        assert_eq!(table[..expected.len()], expected, "{table:#?}");
        // Kubernetes names take none of them: each is refused, naming the rule.
        for line in &table[expected.len()..] {
            assert!(line.contains("refused"), "{line}");
        }
        assert_eq!(substitute(TextKind::UrlSegment, ".").unwrap_err(), "the value `.` would climb the URL's path");
    }

    #[test]
    fn kubernetes_names_that_are_names_pass() {
        for ok in ["checkout-api-6f8d9c7b5-x2x9q", "a", "web.v2", "0abc"] {
            assert_eq!(substitute(TextKind::KubernetesName, ok).as_deref(), Ok(ok));
        }
        for bad in ["-a", "a-", "A", "a..b", "a_b", ".a", &"a".repeat(254)] {
            assert!(substitute(TextKind::KubernetesName, bad).is_err(), "{bad}");
        }
        assert!(substitute(TextKind::KubernetesNamespace, "prod").is_ok());
        assert!(substitute(TextKind::KubernetesNamespace, "prod.eu").is_err());
        assert!(substitute(TextKind::KubernetesNamespace, &"a".repeat(64)).is_err());
    }
}
