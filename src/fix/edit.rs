//! Format-preserving edits of one scalar value in YAML, JSON and TOML files: the rest of the
//! file — comments, key order, quoting, indentation, blank lines — is left byte for byte, so
//! the pull request's diff shows only the change.
//!
//! YAML is read as an outline of its lines ([`outline`]): each `key: value` line with its
//! path (`spec.template.spec.containers[0].resources.limits.memory`) and the span of its
//! value. That covers Kubernetes manifests, Kustomize patches and Helm values as people write
//! them (block style); a value inside a flow collection (`{a: 1}`) or a block scalar (`|`) is
//! not found, and the generator says so rather than guessing. JSON is scanned with byte
//! spans; TOML goes through `toml_edit`, which keeps the document's formatting.

use std::fmt;

/// One step of a path: a mapping key or a sequence position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Item(usize),
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Item(i) => write!(f, "[{i}]"),
        }
    }
}

/// `a.b[0].c`.
pub fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        if matches!(s, Seg::Key(_)) && !out.is_empty() {
            out.push('.');
        }
        out.push_str(&s.to_string());
    }
    out
}

/// A `key: value` line of a YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The YAML document it is in (0 for the first; `---` starts the next).
    pub doc: usize,
    pub path: Vec<Seg>,
    /// The line's start and the value's span, in bytes of the whole text; an empty span for
    /// a key with nothing after it (a mapping or sequence starts below).
    pub line_start: usize,
    pub value: (usize, usize),
}

impl Entry {
    /// The value as written (quotes included).
    pub fn raw<'a>(&self, text: &'a str) -> &'a str {
        &text[self.value.0..self.value.1]
    }

    /// The value without its quotes.
    pub fn scalar(&self, text: &str) -> String {
        unquote(self.raw(text))
    }

    pub fn key(&self) -> &str {
        match self.path.last() {
            Some(Seg::Key(k)) => k,
            _ => "",
        }
    }
}

fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    if raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"')) || (raw.starts_with('\'') && raw.ends_with('\'')))
    {
        raw[1..raw.len() - 1].to_string()
    } else {
        raw.to_string()
    }
}

/// Where a `key:` ends in `rest` (the line after its indentation and any `- `): the byte
/// after the colon, when the line is a mapping entry.
fn key_end(rest: &str) -> Option<(String, usize)> {
    let bytes = rest.as_bytes();
    let (key, after) = match bytes.first()? {
        b'"' | b'\'' => {
            let q = bytes[0];
            let close = rest[1..].find(q as char)? + 1;
            (rest[1..close].to_string(), close + 1)
        }
        b'#' | b'{' | b'[' | b'-' | b'|' | b'>' => return None,
        _ => {
            let mut i = 0;
            loop {
                let c = rest[i..].find(':')? + i;
                let next = rest.as_bytes().get(c + 1);
                if next.is_none() || next == Some(&b' ') || next == Some(&b'\t') {
                    break (rest[..c].trim_end().to_string(), c);
                }
                i = c + 1;
            }
        }
    };
    if rest.as_bytes().get(after) != Some(&b':') {
        return None;
    }
    Some((key, after + 1))
}

/// The span of a scalar value in `line` from `from`: up to a ` #` comment or the end, trimmed.
fn value_span(line: &str, from: usize) -> (usize, usize) {
    let rest = &line[from..];
    let start = from + (rest.len() - rest.trim_start().len());
    let mut end = line.len();
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    for i in start..line.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'#' && i > start && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                end = i;
                break;
            }
            None => {}
        }
    }
    let end = start + line[start..end].trim_end().len();
    (start, end.max(start))
}

/// Every `key: value` line of `text`, in order.
pub fn outline(text: &str) -> Vec<Entry> {
    struct Level {
        indent: usize,
        seg: Seg,
        items: usize,
    }
    let mut out = Vec::new();
    let mut stack: Vec<Level> = Vec::new();
    let mut doc = 0;
    let mut offset = 0;
    // A block scalar (`|`, `>`): lines indented deeper than this belong to it.
    let mut block_scalar: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        let indent = content.len() - trimmed.len();
        if let Some(d) = block_scalar {
            if trimmed.is_empty() || indent > d {
                continue;
            }
            block_scalar = None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") {
            if trimmed.starts_with("---") && (out.iter().any(|e: &Entry| e.doc == doc) || !stack.is_empty()) {
                doc += 1;
            }
            stack.clear();
            continue;
        }
        let mut indent = indent;
        let mut rest = trimmed;
        let mut rest_at = line_start + indent;
        // `- ` items, possibly several on one line (`- - a`).
        while rest == "-" || rest.starts_with("- ") {
            while stack
                .last()
                .is_some_and(|l| l.indent > indent || (l.indent == indent && matches!(l.seg, Seg::Item(_))))
            {
                stack.pop();
            }
            let n = match stack.last_mut() {
                Some(parent) => {
                    parent.items += 1;
                    parent.items - 1
                }
                None => 0,
            };
            stack.push(Level { indent, seg: Seg::Item(n), items: 0 });
            let after = &rest[1..];
            let skip = 1 + (after.len() - after.trim_start().len());
            indent += skip;
            rest_at += skip;
            rest = &rest[skip..];
            if rest.is_empty() {
                break;
            }
        }
        if rest.starts_with('|') || rest.starts_with('>') {
            // A list item that is a block scalar: its lines are deeper than its dash.
            block_scalar = stack.last().map(|l| l.indent);
            continue;
        }
        let Some((key, colon)) = key_end(rest) else { continue };
        while stack.last().is_some_and(|l| l.indent >= indent) {
            stack.pop();
        }
        let line_text = &text[line_start..line_start + content.len()];
        let from = rest_at - line_start + colon;
        let (s, e) = value_span(line_text, from);
        let raw = &line_text[s..e];
        if raw.starts_with('|') || raw.starts_with('>') {
            block_scalar = Some(indent);
        }
        let mut path: Vec<Seg> = stack.iter().map(|l| l.seg.clone()).collect();
        path.push(Seg::Key(key.clone()));
        out.push(Entry { doc, path, line_start, value: (line_start + s, line_start + e) });
        stack.push(Level { indent, seg: Seg::Key(key), items: 0 });
    }
    out
}

/// Replaces the span `at` of `text` with `new`, keeping the quote style of what was there.
pub fn replace_scalar(text: &str, at: (usize, usize), new: &str) -> String {
    let old = &text[at.0..at.1];
    let quoted = if old.starts_with('"') && old.ends_with('"') && old.len() >= 2 {
        format!("\"{new}\"")
    } else if old.starts_with('\'') && old.ends_with('\'') && old.len() >= 2 {
        format!("'{new}'")
    } else {
        new.to_string()
    };
    format!("{}{}{}", &text[..at.0], quoted, &text[at.1..])
}

/// The YAML entry at dotted `key` (`server.pool.size`, `items[0].name`) in the first
/// document that has it.
pub fn yaml_find(text: &str, key: &str) -> Option<Entry> {
    outline(text).into_iter().find(|e| path_text(&e.path) == key)
}

/// The span of the scalar at dotted `key` in a JSON document, and its text as written.
pub fn json_find(text: &str, key: &str) -> Result<(usize, usize), String> {
    serde_json::from_str::<serde_json::Value>(text).map_err(|e| format!("it is not JSON: {e}"))?;
    let mut found = None;
    let mut scanner = JsonScanner { text: text.as_bytes(), pos: 0 };
    scanner.value(&mut Vec::new(), &mut |path, span| {
        if found.is_none() && path_text(path) == key {
            found = Some(span);
        }
    })?;
    found.ok_or_else(|| format!("no value at `{key}`"))
}

/// Called with the path and byte span of each scalar.
type Seen<'a> = dyn FnMut(&[Seg], (usize, usize)) + 'a;

struct JsonScanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl JsonScanner<'_> {
    fn ws(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        while self.pos < self.text.len() {
            match self.text[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    let raw = std::str::from_utf8(&self.text[start..self.pos]).map_err(|e| e.to_string())?;
                    return serde_json::from_str(raw).map_err(|e| e.to_string());
                }
                _ => self.pos += 1,
            }
        }
        Err("an unterminated string".into())
    }

    fn value(&mut self, path: &mut Vec<Seg>, seen: &mut Seen<'_>) -> Result<(), String> {
        self.ws();
        match self.text.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                loop {
                    self.ws();
                    if self.text.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        return Ok(());
                    }
                    let key = self.string()?;
                    self.ws();
                    self.pos += 1; // ':'
                    path.push(Seg::Key(key));
                    self.value(path, seen)?;
                    path.pop();
                    self.ws();
                    match self.text.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err("a malformed object".into()),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut i = 0;
                loop {
                    self.ws();
                    if self.text.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        return Ok(());
                    }
                    path.push(Seg::Item(i));
                    self.value(path, seen)?;
                    path.pop();
                    i += 1;
                    self.ws();
                    match self.text.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err("a malformed array".into()),
                    }
                }
            }
            Some(b'"') => {
                let start = self.pos;
                self.string()?;
                seen(path, (start, self.pos));
                Ok(())
            }
            Some(_) => {
                let start = self.pos;
                while self.pos < self.text.len()
                    && !matches!(self.text[self.pos], b',' | b'}' | b']')
                    && !self.text[self.pos].is_ascii_whitespace()
                {
                    self.pos += 1;
                }
                seen(path, (start, self.pos));
                Ok(())
            }
            None => Err("the document ended early".into()),
        }
    }
}

/// The value at dotted `key` of a TOML document, as TOML writes it.
pub fn toml_get(text: &str, key: &str) -> Result<toml_edit::Value, String> {
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("it is not TOML: {e}"))?;
    let mut item: &toml_edit::Item = doc.as_item();
    for part in key.split('.') {
        item = item.get(part).ok_or_else(|| format!("no value at `{key}`"))?;
    }
    item.as_value().cloned().ok_or_else(|| format!("`{key}` is a table, not a value"))
}

/// `text` with the value at dotted `key` set to `new`, its comment and spacing kept.
pub fn toml_set(text: &str, key: &str, new: toml_edit::Value) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("it is not TOML: {e}"))?;
    let mut item: &mut toml_edit::Item = doc.as_item_mut();
    for part in key.split('.') {
        item = item.get_mut(part).ok_or_else(|| format!("no value at `{key}`"))?;
    }
    let value = item.as_value_mut().ok_or_else(|| format!("`{key}` is a table, not a value"))?;
    let decor = value.decor().clone();
    *value = new;
    *value.decor_mut() = decor;
    Ok(doc.to_string())
}

/// The kind of a configuration file, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    pub fn of(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Some(Format::Yaml)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".toml") {
            Some(Format::Toml)
        } else {
            None
        }
    }
}

/// The scalar at dotted `key` of a configuration file, as text (quotes removed).
pub fn get(format: Format, text: &str, key: &str) -> Result<String, String> {
    match format {
        Format::Yaml => {
            for doc in serde_yaml::Deserializer::from_str(text) {
                use serde::Deserialize;
                serde_yaml::Value::deserialize(doc).map_err(|e| format!("it is not YAML: {e}"))?;
            }
            let e = yaml_find(text, key).ok_or_else(|| format!("no value at `{key}`"))?;
            if e.value.0 == e.value.1 {
                return Err(format!("`{key}` holds a mapping or a list, not a value"));
            }
            Ok(e.scalar(text))
        }
        Format::Json => {
            let span = json_find(text, key)?;
            Ok(unquote(&text[span.0..span.1]))
        }
        Format::Toml => {
            let v = toml_get(text, key)?;
            Ok(match v.as_str() {
                Some(s) => s.to_string(),
                None => v.to_string().trim().to_string(),
            })
        }
    }
}

/// `text` with the scalar at dotted `key` set to `new` (written as a number when it reads as
/// one and the old value was not quoted, else as a string in the old quoting).
pub fn set(format: Format, text: &str, key: &str, new: &str) -> Result<String, String> {
    match format {
        Format::Yaml => {
            let e = yaml_find(text, key).ok_or_else(|| format!("no value at `{key}`"))?;
            Ok(replace_scalar(text, e.value, new))
        }
        Format::Json => {
            let span = json_find(text, key)?;
            let old = &text[span.0..span.1];
            let written = if old.starts_with('"') || new.parse::<f64>().is_err() {
                serde_json::to_string(new).map_err(|e| e.to_string())?
            } else {
                new.to_string()
            };
            Ok(format!("{}{}{}", &text[..span.0], written, &text[span.1..]))
        }
        Format::Toml => {
            let old = toml_get(text, key)?;
            let value: toml_edit::Value = if old.is_str() {
                new.into()
            } else if let Ok(i) = new.parse::<i64>() {
                i.into()
            } else if let Ok(f) = new.parse::<f64>() {
                f.into()
            } else {
                new.into()
            };
            toml_set(text, key, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "# the checkout API\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout   # the service\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: api\n        image: \"ghcr.io/acme/checkout:1.2\"\n        resources:\n          limits:\n            memory: 512Mi  # raised in March\n            cpu: \"1\"\n      - name: sidecar\n        resources:\n          limits: {memory: 64Mi}\n        args:\n          - |\n            memory: 1Gi\n---\nkind: Service\nmetadata:\n  name: checkout\n";

    #[test]
    fn the_outline_gives_each_value_its_path_and_span() {
        let entries = outline(MANIFEST);
        let paths: Vec<String> = entries.iter().map(|e| format!("{} {}", e.doc, path_text(&e.path))).collect();
        assert!(
            paths.contains(&"0 spec.template.spec.containers[0].resources.limits.memory".to_string()),
            "{paths:#?}"
        );
        assert!(paths.contains(&"0 spec.template.spec.containers[1].name".to_string()), "{paths:#?}");
        assert!(paths.contains(&"1 metadata.name".to_string()), "{paths:#?}");
        // The block scalar's text is not a key.
        assert_eq!(paths.iter().filter(|p| p.ends_with(".memory")).count(), 1, "{paths:#?}");
        let memory = yaml_find(MANIFEST, "spec.template.spec.containers[0].resources.limits.memory").unwrap();
        assert_eq!(memory.raw(MANIFEST), "512Mi");
        let name = yaml_find(MANIFEST, "metadata.name").unwrap();
        assert_eq!(name.raw(MANIFEST), "checkout");
        let image = yaml_find(MANIFEST, "spec.template.spec.containers[0].image").unwrap();
        assert_eq!(image.scalar(MANIFEST), "ghcr.io/acme/checkout:1.2");
    }

    #[test]
    fn a_yaml_edit_changes_one_value_and_keeps_comments_and_quotes() {
        let out =
            set(Format::Yaml, MANIFEST, "spec.template.spec.containers[0].resources.limits.memory", "768Mi").unwrap();
        assert_eq!(out, MANIFEST.replace("memory: 512Mi  # raised", "memory: 768Mi  # raised"));
        let out = set(Format::Yaml, MANIFEST, "spec.template.spec.containers[0].resources.limits.cpu", "2").unwrap();
        assert!(out.contains("cpu: \"2\"\n"));
        assert!(set(Format::Yaml, MANIFEST, "spec.nothing", "1").is_err());
    }

    #[test]
    fn json_and_toml_edits_keep_the_rest_of_the_file() {
        let json = "{\n  \"server\": {\n    \"timeout_ms\": 2000,\n    \"name\": \"api\"\n  },\n  \"list\": [1, {\"a\": \"b\"}]\n}\n";
        assert_eq!(get(Format::Json, json, "server.timeout_ms").unwrap(), "2000");
        assert_eq!(get(Format::Json, json, "list[1].a").unwrap(), "b");
        let out = set(Format::Json, json, "server.timeout_ms", "3000").unwrap();
        assert_eq!(out, json.replace("2000", "3000"));
        let out = set(Format::Json, json, "server.name", "web").unwrap();
        assert_eq!(out, json.replace("\"api\"", "\"web\""));
        let toml = "# service settings\n[server]\ntimeout = \"2s\" # per request\npool = 10\n\n[db]\nurl = \"x\"\n";
        assert_eq!(get(Format::Toml, toml, "server.pool").unwrap(), "10");
        let out = set(Format::Toml, toml, "server.pool", "20").unwrap();
        assert_eq!(out, toml.replace("pool = 10", "pool = 20"));
        let out = set(Format::Toml, toml, "server.timeout", "3s").unwrap();
        assert_eq!(out, toml.replace("\"2s\"", "\"3s\""));
        assert!(get(Format::Toml, toml, "server").is_err());
        assert!(get(Format::Json, "{", "a").is_err());
    }
}
