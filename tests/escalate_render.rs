//! The renderings of the escalation package: every folder under `tests/fixtures/escalate/` is
//! one case.
//!
//! A case holds `escalation.json` (an escalation package as the outbox stores it), optionally
//! `note.json` (a later note on it) and `jira.json` (the issue it was filed as), and
//! `README.md` saying what it shows. Its Jira Cloud body (ADF), Jira Server body (wiki
//! markup), Slack message and Markdown are snapshotted in `snapshots/<case>-<form>.snap`;
//! the tests below assert what the destinations require of them, for every case.

use serde_json::Value;
use sparky::escalate::{EscalationPackage, IssueLink, Note, adf, slack, wiki};
use std::path::{Path, PathBuf};

struct Case {
    name: String,
    dir: PathBuf,
    package: EscalationPackage,
    note: Option<Note>,
    jira: Option<IssueLink>,
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn cases() -> Vec<Case> {
    let root = Path::new("tests/fixtures/escalate");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "snapshots"))
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "rich, minimal and hostile at least, found {}", dirs.len());
    dirs.into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            assert!(dir.join("README.md").exists(), "{name}: every fixture says what it shows in README.md");
            let package = read(&dir.join("escalation.json")).unwrap_or_else(|| panic!("{name}: no escalation.json"));
            Case { note: read(&dir.join("note.json")), jira: read(&dir.join("jira.json")), package, name, dir }
        })
        .collect()
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap()
}

#[test]
fn renderings_match_their_snapshots() {
    for c in cases() {
        let p = &c.package;
        let note = c.note.as_ref().map(|n| {
            serde_json::json!({ "adf": adf::note(n), "wiki": wiki::note(n), "slack": slack::note(n, c.jira.as_ref()) })
        });
        insta::with_settings!({ snapshot_path => "fixtures/escalate/snapshots", prepend_module_to_snapshot => false, input_file => &c.dir }, {
            insta::assert_json_snapshot!(format!("{}-adf", c.name), adf::description(p));
            insta::assert_snapshot!(format!("{}-wiki", c.name), wiki::description(p));
            insta::assert_json_snapshot!(format!("{}-slack", c.name), slack::message(p, c.jira.as_ref()));
            insta::assert_snapshot!(format!("{}-markdown", c.name), p.to_markdown());
            if let Some(note) = note {
                insta::assert_json_snapshot!(format!("{}-note", c.name), note);
            }
        });
    }
}

/// Every problem found in an ADF node and its children: Jira Cloud refuses the whole request
/// for one of them.
fn adf_problems(node: &Value, at: &str, out: &mut Vec<String>) {
    let kind = node["type"].as_str().unwrap_or_default();
    let allowed = ["doc", "paragraph", "heading", "bulletList", "listItem", "codeBlock", "text"];
    if !allowed.contains(&kind) {
        out.push(format!("{at}: node type `{kind}`"));
    }
    if kind == "text" {
        if node["text"].as_str().is_none_or(str::is_empty) {
            out.push(format!("{at}: empty text node"));
        }
        let marks: Vec<&str> =
            node["marks"].as_array().into_iter().flatten().filter_map(|m| m["type"].as_str()).collect();
        if marks.iter().any(|m| !["strong", "code", "link"].contains(m)) {
            out.push(format!("{at}: marks {marks:?}"));
        }
        if marks.contains(&"code") && marks.iter().any(|m| !["code", "link"].contains(m)) {
            out.push(format!("{at}: `code` mixed with {marks:?}"));
        }
        for m in node["marks"].as_array().into_iter().flatten().filter(|m| m["type"] == "link") {
            let href = m["attrs"]["href"].as_str().unwrap_or_default();
            if !href.starts_with("https://") && !href.starts_with("http://") {
                out.push(format!("{at}: link to `{href}`"));
            }
        }
        return;
    }
    let children = node["content"].as_array().cloned().unwrap_or_default();
    if children.is_empty() {
        out.push(format!("{at}: `{kind}` without content"));
    }
    match kind {
        "listItem" if children.iter().any(|ch| ch["type"] != "paragraph") => {
            out.push(format!("{at}: a list item holds something else than paragraphs"))
        }
        "bulletList" if children.iter().any(|ch| ch["type"] != "listItem") => {
            out.push(format!("{at}: a bullet list holds something else than list items"))
        }
        "heading" if !(1..=6).contains(&node["attrs"]["level"].as_u64().unwrap_or_default()) => {
            out.push(format!("{at}: heading level {}", node["attrs"]["level"]))
        }
        _ => {}
    }
    for (i, ch) in children.iter().enumerate() {
        adf_problems(ch, &format!("{at}/{kind}[{i}]"), out);
    }
}

#[test]
fn adf_holds_only_valid_nodes_and_no_empty_text() {
    for c in cases() {
        let mut docs = vec![("description", adf::description(&c.package))];
        docs.extend(c.note.as_ref().map(|n| ("note", adf::note(n))));
        for (what, doc) in docs {
            assert_eq!((doc["version"].as_u64(), doc["type"].as_str()), (Some(1), Some("doc")));
            let mut problems = Vec::new();
            adf_problems(&doc, "", &mut problems);
            assert!(problems.is_empty(), "{} {what}:\n{}", c.name, problems.join("\n"));
        }
    }
}

/// How many times `pattern` occurs in `text` without a backslash before it.
fn unescaped(text: &str, pattern: &str) -> usize {
    text.match_indices(pattern).filter(|(i, _)| !text[..*i].ends_with('\\')).count()
}

#[test]
fn wiki_markup_shows_hostile_text_without_obeying_it() {
    let c = case("hostile");
    let text = wiki::description(&c.package);
    // The one link is the event's logs link, made by Sparky from an https URL.
    assert_eq!(unescaped(&text, "["), 1, "{text}");
    assert_eq!(unescaped(&text, "]"), 1, "{text}");
    assert!(text.contains("|https://logs.example.com/q?x=1&y=%5B2%5D%7Cz]"), "{text}");
    assert!(!text.contains("[javascript") && !text.contains("|javascript"), "a javascript: URL is no link");
    assert_eq!(unescaped(&text, "!"), 0, "no image: {text}");
    // The code block around the attempt's detail opens and closes once; user text cannot.
    assert_eq!(unescaped(&text, "{code"), 2, "{text}");
    assert_eq!(unescaped(&text, "{noformat"), 0, "{text}");
    assert!(text.contains(r"\[link\|http://evil.example\]") && text.contains(r"\{code\}"), "{text}");
    for line in text.lines() {
        let starts_markup = ["h1.", "#", "----", "bq.", "|"].iter().any(|m| line.starts_with(m));
        assert!(!starts_markup, "a user text starts a line: `{line}`");
    }
    let note = wiki::note(c.note.as_ref().unwrap());
    assert_eq!(unescaped(&note, "["), 0, "{note}");
    assert_eq!(unescaped(&note, "{code"), 0, "{note}");
}

/// Every text of a Block Kit message, with where it is.
fn slack_texts(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match (k.as_str(), val) {
                    ("text", Value::String(s)) => out.push((at.to_string(), s.clone())),
                    _ => slack_texts(val, &format!("{at}.{k}"), out),
                }
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, x)| slack_texts(x, &format!("{at}[{i}]"), out)),
        _ => {}
    }
}

#[test]
fn slack_messages_stay_within_block_kit_limits_and_escape_user_text() {
    for c in cases() {
        let mut messages = vec![("message", slack::message(&c.package, c.jira.as_ref()))];
        messages.extend(c.note.as_ref().map(|n| ("note", slack::note(n, c.jira.as_ref()))));
        for (what, m) in messages {
            let at = format!("{} {what}", c.name);
            let blocks = m["blocks"].as_array().unwrap();
            assert!(!blocks.is_empty() && blocks.len() <= 50, "{at}: {} blocks", blocks.len());
            assert!(m["text"].as_str().is_some_and(|t| !t.is_empty()), "{at}: a fallback text");
            for b in blocks {
                let max = match b["type"].as_str() {
                    Some("header") => 150,
                    _ => 3000,
                };
                if let Some(t) = b["text"]["text"].as_str() {
                    assert!(t.chars().count() <= max, "{at}: {} characters in a {}", t.chars().count(), b["type"]);
                }
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                assert!(fields.len() <= 10, "{at}: {} fields", fields.len());
                for f in fields {
                    assert!(f["text"].as_str().unwrap().chars().count() <= 2000, "{at}: a field over 2000");
                }
            }
            let mut texts = Vec::new();
            slack_texts(&m, "", &mut texts);
            for (path, t) in texts {
                // `<` only opens a link Sparky made, to a web URL.
                for (i, _) in t.match_indices('<') {
                    let rest = &t[i..];
                    assert!(rest.starts_with("<https://") || rest.starts_with("<http://"), "{at} {path}: `{t}`");
                }
                assert!(!t.contains("<script") && !t.contains("<!"), "{at} {path}: `{t}`");
            }
        }
    }
    let hostile = slack::message(&case("hostile").package, None).to_string();
    assert!(hostile.contains("&lt;script&gt;") && hostile.contains("&lt;!channel&gt;"), "{hostile}");
}

#[test]
fn slack_shows_a_short_summary_with_the_jira_issue() {
    let c = case("rich");
    let with = slack::message(&c.package, c.jira.as_ref());
    let button = with["blocks"].as_array().unwrap().iter().find_map(|b| b.get("accessory")).unwrap();
    assert_eq!(button["url"], "https://acme.atlassian.net/browse/OPS-12");
    assert!(with["text"].as_str().unwrap().contains("OPS-12"), "the notification names the issue");
    let text = with.to_string();
    assert!(text.contains("v1.41.3") && !text.contains("cd-70"), "three deploys of four: {text}");
    assert!(text.contains("and 1 more"), "{text}");
    let without = slack::message(&c.package, None).to_string();
    assert!(!without.contains("OPS-12") && !without.contains("accessory"), "{without}");
}

#[test]
fn the_title_fits_jira_and_the_body_keeps_the_full_summary() {
    for c in cases() {
        let title = c.package.title();
        assert!(!title.is_empty() && title.chars().count() <= 255, "{}: {} characters", c.name, title.chars().count());
    }
    let c = case("hostile");
    assert!(c.package.title().ends_with('…'), "a 400-character summary is cut");
    let summary_end: String =
        c.package.package.event.summary.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(adf::description(&c.package).to_string().contains(summary_end.trim()), "the body has all of it");
}

#[test]
fn the_body_reads_in_the_order_an_on_call_engineer_needs() {
    let c = case("rich");
    let text = wiki::description(&c.package);
    let order = [
        "h2. P2 SPK-3f9a1c2e",
        "*Why Sparky escalated:*",
        "*What Sparky tried:* L1 execution ex-42 of PB-001: failed",
        "{code:json}",
        "h3. Event",
        "h3. Service",
        "h3. Links",
        "h3. Recent deploys",
        "h3. Has this happened before?",
        "h3. Impact",
        "h3. Analysis (builtin)",
        "h3. What Sparky did",
    ];
    let positions: Vec<Option<usize>> = order.iter().map(|s| text.find(s)).collect();
    assert!(positions.iter().all(Option::is_some), "{positions:?}\n{text}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}\n{text}");
    for fact in
        ["Team Checkout", "checkout-primary", "https://runbooks.example.com/checkout", "SPK-1b2c3d4e", "downstream (5)"]
    {
        assert!(text.contains(fact), "{fact} is missing:\n{text}");
    }
}
