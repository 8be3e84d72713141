//! Jira Cloud bodies (REST v3): the package and the notes in Atlassian Document Format.
//!
//! Jira Cloud refuses a whole request for one invalid node — an empty text node, a list item
//! holding something other than paragraphs — and the escalation would then wait in the
//! outbox until someone reads the error. So this file writes only a handful of nodes (heading,
//! paragraph, bullet list, code block, text with the `strong`, `code` and `link` marks) and
//! drops whatever would be empty rather than sending it.

use super::package::{Block, Span};
use super::{EscalationPackage, Note};
use serde_json::{Value, json};

/// The issue description: the package's outline as an ADF document.
pub fn description(p: &EscalationPackage) -> Value {
    doc(&p.outline())
}

/// A comment body: the note's outline as an ADF document.
pub fn note(n: &Note) -> Value {
    doc(&n.outline())
}

fn doc(outline: &[Block]) -> Value {
    let content: Vec<Value> = outline.iter().filter_map(block).collect();
    json!({ "version": 1, "type": "doc", "content": content })
}

/// The node of `b`, or `None` when it would hold nothing.
fn block(b: &Block) -> Option<Value> {
    match b {
        Block::Heading(level, text) => {
            let text = plain(text)?;
            Some(json!({ "type": "heading", "attrs": { "level": level }, "content": [text] }))
        }
        Block::Paragraph(spans) => paragraph(spans),
        Block::List(items) => {
            // A list item holds paragraphs only (nested lists are not needed here).
            let items: Vec<Value> = items
                .iter()
                .filter_map(|spans| paragraph(spans))
                .map(|p| json!({ "type": "listItem", "content": [p] }))
                .collect();
            (!items.is_empty()).then(|| json!({ "type": "bulletList", "content": items }))
        }
        Block::Json(text) => {
            let text = plain(text)?;
            Some(json!({ "type": "codeBlock", "attrs": { "language": "json" }, "content": [text] }))
        }
    }
}

fn paragraph(spans: &[Span]) -> Option<Value> {
    let mut content: Vec<Value> = Vec::new();
    for node in spans.iter().filter_map(inline) {
        // Adjacent unmarked texts are one node, as Jira's editor would save them.
        match content.last_mut() {
            Some(last) if last.get("marks").is_none() && node.get("marks").is_none() => {
                let joined = format!(
                    "{}{}",
                    last["text"].as_str().unwrap_or_default(),
                    node["text"].as_str().unwrap_or_default()
                );
                last["text"] = json!(joined);
            }
            _ => content.push(node),
        }
    }
    (!content.is_empty()).then(|| json!({ "type": "paragraph", "content": content }))
}

/// The text node of `s`; `code` takes no other mark but `link`, so a span has one mark.
fn inline(s: &Span) -> Option<Value> {
    let (text, mark) = match s {
        Span::Text(t) => (t, None),
        Span::Strong(t) => (t, Some(json!({ "type": "strong" }))),
        Span::Code(t) => (t, Some(json!({ "type": "code" }))),
        Span::Link { text, url } => (text, Some(json!({ "type": "link", "attrs": { "href": url } }))),
    };
    let mut node = plain(text)?;
    if let Some(mark) = mark {
        node["marks"] = json!([mark]);
    }
    Some(node)
}

/// A text node, unless `text` is empty (ADF refuses `"text": ""`).
fn plain(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_spans_and_blocks_are_dropped_not_sent() {
        let outline = vec![
            Block::Paragraph(vec![Span::Text(String::new())]),
            Block::List(vec![vec![Span::Strong(String::new())]]),
            Block::Heading(3, String::new()),
            Block::Paragraph(vec![Span::Text("kept".into()), Span::Code(String::new()), Span::Text(" too".into())]),
        ];
        let d = doc(&outline);
        assert_eq!(d["content"], json!([{ "type": "paragraph", "content": [{ "type": "text", "text": "kept too" }] }]));
    }

    #[test]
    fn a_link_is_a_mark_on_its_text() {
        let node = inline(&Span::Link { text: "logs".into(), url: "https://logs.example.com/q".into() });
        assert_eq!(
            node,
            Some(
                json!({ "type": "text", "text": "logs", "marks": [{ "type": "link", "attrs": { "href": "https://logs.example.com/q" } }] })
            )
        );
    }
}
