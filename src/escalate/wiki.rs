//! Jira Server / Data Center bodies (REST v2): the package and the notes in Jira wiki markup.
//!
//! Alert texts are written by whoever can send Sparky an event, so every user text is escaped
//! before it reaches the markup: a summary must not turn into a link (`[click|http://…]`), a
//! mention, an image, a macro, or close the `{code}` block around the attempt's detail.

use super::package::{Block, Span};
use super::{EscalationPackage, Note};

/// The issue description.
pub fn description(p: &EscalationPackage) -> String {
    render(&p.outline())
}

/// A comment body.
pub fn note(n: &Note) -> String {
    render(&n.outline())
}

fn render(outline: &[Block]) -> String {
    let blocks: Vec<String> = outline.iter().map(block).filter(|b| !b.is_empty()).collect();
    let mut out = blocks.join("\n\n");
    out.push('\n');
    out
}

fn block(b: &Block) -> String {
    match b {
        Block::Heading(level, text) if !text.is_empty() => format!("h{level}. {}", escape(text)),
        Block::Heading(..) => String::new(),
        Block::Paragraph(spans) => spans.iter().map(inline).collect(),
        Block::List(items) => items
            .iter()
            .map(|spans| spans.iter().map(inline).collect::<String>())
            .filter(|item| !item.is_empty())
            .map(|item| format!("* {item}"))
            .collect::<Vec<_>>()
            .join("\n"),
        Block::Json(text) => format!("{{code:json}}\n{}\n{{code}}", fence_safe(text)),
    }
}

fn inline(s: &Span) -> String {
    match s {
        Span::Text(t) => escape(t),
        Span::Strong(t) if !t.is_empty() => format!("*{}*", escape(t)),
        Span::Code(t) if !t.is_empty() => format!("{{{{{}}}}}", escape(t)),
        Span::Link { text, url } => format!("[{}|{}]", escape(text), link_target(url)),
        Span::Strong(_) | Span::Code(_) => String::new(),
    }
}

/// `text` with every character that could start markup escaped.
///
/// Characters that delimit links, macros, tables, images and bold (`[ ] { } | ! *`, the last
/// used by our own labels) are always escaped; the other phrase marks (`- + ^ ~ _`) only open
/// after a non-alphanumeric character, so they are escaped there and `checkout-7d9` or
/// `alert_name` stay readable in the raw text. A backslash becomes `&#92;`: `\\` is a line
/// break, and `\` before an escaped character would cancel the escape. Newlines become
/// spaces, so user text never starts a line (where `h1.`, `#` and `----` mean something).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut prev: Option<char> = None;
    for c in text.chars() {
        match c {
            '[' | ']' | '{' | '}' | '|' | '!' | '*' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' | '^' | '~' | '_' if !prev.is_some_and(char::is_alphanumeric) => {
                out.push('\\');
                out.push(c);
            }
            '\\' => out.push_str("&#92;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// A link's URL with the characters that end a wiki link (`|`, `]`) or could open markup
/// percent-encoded; the URL means the same to the browser.
fn link_target(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '|' => out.push_str("%7C"),
            '[' => out.push_str("%5B"),
            ']' => out.push_str("%5D"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c if c.is_whitespace() => out.push_str("%20"),
            _ => out.push(c),
        }
    }
    out
}

/// Pretty JSON that cannot end the `{code}` block around it: inside `{code}` nothing is
/// escaped and the first `{code}` closes it, so a `{` that starts `{code` or `{noformat`
/// within a JSON string is written `\u007b` — the same JSON, and no macro. Other braces stay
/// as they are, so a PromQL selector in the detail reads as written. Outside strings, pretty
/// JSON has `{` only as an object's start, never followed by a letter.
fn fence_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in json.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '{' if closes_code(&json[i + 1..]) => {
                    out.push_str("\\u007b");
                    continue;
                }
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

/// Whether `{` then `rest` would be read as a `{code}` or `{noformat}` macro.
fn closes_code(rest: &str) -> bool {
    let head: String = rest.chars().take(8).collect::<String>().to_ascii_lowercase();
    head.starts_with("code") || head.starts_with("noformat")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_make_links_macros_or_bold() {
        assert_eq!(escape("[click|http://evil]"), r"\[click\|http://evil\]");
        assert_eq!(escape("{code}x{noformat}"), r"\{code\}x\{noformat\}");
        assert_eq!(escape("*bold* !img.png! [~admin]"), r"\*bold\* \!img.png\! \[\~admin\]");
        assert_eq!(escape("a\\*b"), r"a&#92;\*b");
        assert_eq!(escape("line\nh1. title"), "line h1. title");
    }

    #[test]
    fn phrase_marks_inside_words_stay_as_they_are() {
        assert_eq!(escape("checkout-7d9 alert_name 1+1"), "checkout-7d9 alert_name 1+1");
        assert_eq!(escape("-struck- _em_ +ins+"), r"\-struck- \_em_ \+ins+");
    }

    #[test]
    fn a_json_string_cannot_close_the_code_block() {
        let json = serde_json::to_string_pretty(&serde_json::json!({ "error": "got {code} and \"{x}\"", "o": {} }))
            .unwrap_or_default();
        let safe = fence_safe(&json);
        assert!(!safe.contains("{code}"), "{safe}");
        assert!(safe.contains(r#"\"{x}\""#), "other braces stay: {safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back["error"], "got {code} and \"{x}\"", "the escaped JSON still means the same");
    }

    #[test]
    fn a_link_target_cannot_end_the_link() {
        assert_eq!(link_target("https://x.example/a|b]c d"), "https://x.example/a%7Cb%5Dc%20d");
    }
}
