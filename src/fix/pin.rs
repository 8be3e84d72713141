//! The test that pins a fix, so that the repository's CI fails if the change is undone: in
//! the repository's own framework when Sparky can tell which (pytest for a Python project, an
//! integration test for a Rust crate), otherwise a POSIX `sh` check script under
//! `.sparky/checks/` that any CI can run.
//!
//! What it checks is a list of [`Fact`]s: a configuration value as the fix wrote it, or a
//! line the fix removed. Values are compared on the line that holds them, without spaces,
//! quotes or a trailing comment — `memory: "768Mi"  # raised` reads `memory:768Mi` — so the
//! check holds whatever the file's formatting, and fails as soon as the value changes back.

use super::{FixError, PinnedTest, edit::Format, write};
use std::path::Path;

/// One thing the pinned test checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The value of `key` (its last segment, e.g. `memory`) in `file` is `value`.
    Value { file: String, format: Format, key: String, value: String },
    /// `line` (exactly) appears in `file` (`present`: a line the fix brings back), or no
    /// longer does (a line the fix removed).
    Line { file: String, line: String, present: bool },
}

impl Fact {
    /// The normalized line that holds the value: `memory:768Mi`, `pool=20`.
    fn wanted(&self) -> Option<String> {
        match self {
            Fact::Value { format, key, value, .. } => {
                let last = key.rsplit('.').next().unwrap_or(key);
                let last = last.split('[').next().unwrap_or(last);
                let sep = if *format == Format::Toml { "=" } else { ":" };
                Some(
                    format!("{last}{sep}{value}")
                        .chars()
                        .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
                        .collect(),
                )
            }
            Fact::Line { .. } => None,
        }
    }

    fn file(&self) -> &str {
        match self {
            Fact::Value { file, .. } | Fact::Line { file, .. } => file,
        }
    }

    fn describe(&self) -> String {
        match self {
            Fact::Value { file, key, value, .. } => format!("`{key}` in `{file}` is `{value}`"),
            Fact::Line { file, line, present: false } => format!("`{file}` no longer has the line `{}`", line.trim()),
            Fact::Line { file, line, present: true } => format!("`{file}` has the line `{}`", line.trim()),
        }
    }
}

/// Which framework the repository tests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framework {
    Pytest,
    Cargo,
    Script,
}

fn framework(repo: &Path) -> Framework {
    let has = |p: &str| repo.join(p).exists();
    let pyproject = std::fs::read_to_string(repo.join("pyproject.toml")).unwrap_or_default();
    let python_tests = std::fs::read_dir(repo.join("tests")).is_ok_and(|d| {
        d.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with("test_") && n.ends_with(".py")
        })
    });
    if pyproject.contains("pytest") || has("pytest.ini") || has("conftest.py") || python_tests {
        return Framework::Pytest;
    }
    let cargo = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap_or_default();
    if cargo.contains("[package]") {
        return Framework::Cargo;
    }
    Framework::Script
}

/// `SPK-1a2b3c4d5e6f` → `spk_1a2b3c4d5e6f`.
fn slug(incident_key: &str) -> String {
    incident_key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Writes the test pinning `facts` for the fix of `incident_key` (`what` says what it pins),
/// and says how to run it.
pub fn write_pin(repo: &Path, incident_key: &str, what: &str, facts: &[Fact]) -> Result<PinnedTest, FixError> {
    if facts.is_empty() {
        return Err(FixError::new("nothing to pin: the fix changed nothing a test can check"));
    }
    let slug = slug(incident_key);
    let (path, framework, run, text) = match framework(repo) {
        Framework::Pytest => {
            let path = format!("tests/test_sparky_{slug}.py");
            let run = format!("python -m pytest {path}");
            (path, "pytest", run, python(incident_key, what, facts))
        }
        Framework::Cargo => {
            let path = format!("tests/sparky_{slug}.rs");
            let run = format!("cargo test --test sparky_{slug}");
            (path, "cargo test", run, rust(incident_key, what, facts))
        }
        Framework::Script => {
            let path = format!(".sparky/checks/{incident_key}.sh");
            let run = format!("sh {path}");
            (path, "sh", run, script(incident_key, what, facts))
        }
    };
    write(repo, &path, &text)?;
    Ok(PinnedTest { path, framework: framework.to_string(), run })
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn script(key: &str, what: &str, facts: &[Fact]) -> String {
    let mut out = format!(
        "#!/bin/sh\n# Pins Sparky's fix for incident {key}: {what}.\n# Run from the repository root: sh .sparky/checks/{key}.sh (exit 0: the fix holds).\nset -u\nstatus=0\n\n# A line without spaces, quotes or trailing comment, as the checks compare it.\nnormal() {{ sed -e 's/[[:space:]]#.*$//' -e \"s/[[:space:]\\\"']//g\" -e 's/^-//' -e 's/,$//' \"$1\"; }}\n\n"
    );
    for f in facts {
        let file = sh_quote(f.file());
        let describe = sh_quote(&f.describe());
        match (f, f.wanted()) {
            (Fact::Value { .. }, Some(wanted)) => out.push_str(&format!(
                "if ! normal {file} | grep -qxF {}; then echo \"FAIL: \"{describe}\" no longer holds\"; status=1; fi\n",
                sh_quote(&wanted)
            )),
            (Fact::Line { line, present, .. }, _) => out.push_str(&format!(
                "if {}grep -qxF {} {file}; then echo \"FAIL: \"{describe}\" no longer holds\"; status=1; fi\n",
                if *present { "! " } else { "" },
                sh_quote(line)
            )),
            _ => {}
        }
    }
    out.push_str("exit $status\n");
    out
}

fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn python(key: &str, what: &str, facts: &[Fact]) -> String {
    let mut out = format!(
        "\"\"\"Pins Sparky's fix for incident {key}: {what}.\"\"\"\nimport pathlib\nimport re\n\nROOT = pathlib.Path(__file__).resolve().parent.parent\n\n\ndef normal(line):\n    line = re.sub(r\"\\s#.*$\", \"\", line)\n    line = re.sub(r\"[\\s\\\"']\", \"\", line)\n    return line.lstrip(\"-\").rstrip(\",\")\n\n\ndef lines(path):\n    return (ROOT / path).read_text().splitlines()\n"
    );
    for (i, f) in facts.iter().enumerate() {
        let file = py_str(f.file());
        match (f, f.wanted()) {
            (Fact::Value { .. }, Some(wanted)) => out.push_str(&format!(
                "\n\ndef test_sparky_fix_holds_{i}():\n    \"\"\"{}\"\"\"\n    assert {} in [normal(l) for l in lines({file})]\n",
                f.describe().replace("\"\"\"", "'''"),
                py_str(&wanted)
            )),
            (Fact::Line { line, present, .. }, _) => out.push_str(&format!(
                "\n\ndef test_sparky_fix_holds_{i}():\n    \"\"\"{}\"\"\"\n    assert {} {}in lines({file})\n",
                f.describe().replace("\"\"\"", "'''"),
                py_str(line),
                if *present { "" } else { "not " }
            )),
            _ => {}
        }
    }
    out
}

fn rust(key: &str, what: &str, facts: &[Fact]) -> String {
    let mut out = format!(
        "//! Pins Sparky's fix for incident {key}: {what}.\n\nfn lines(path: &str) -> Vec<String> {{\n    let root = env!(\"CARGO_MANIFEST_DIR\");\n    std::fs::read_to_string(format!(\"{{root}}/{{path}}\")).unwrap().lines().map(str::to_string).collect()\n}}\n\nfn normal(line: &str) -> String {{\n    let line = match line.find(\" #\").or_else(|| line.find(\"\\t#\")) {{\n        Some(i) => &line[..i],\n        None => line,\n    }};\n    let s: String = line.chars().filter(|c| !c.is_whitespace() && *c != '\"' && *c != '\\'').collect();\n    s.trim_start_matches('-').trim_end_matches(',').to_string()\n}}\n"
    );
    for (i, f) in facts.iter().enumerate() {
        let file = py_str(f.file());
        let doc = f.describe();
        match (f, f.wanted()) {
            (Fact::Value { .. }, Some(wanted)) => out.push_str(&format!(
                "\n/// {doc}\n#[test]\nfn sparky_fix_holds_{i}() {{\n    assert!(lines({file}).iter().any(|l| normal(l) == {}));\n}}\n",
                py_str(&wanted)
            )),
            (Fact::Line { line, present, .. }, _) => out.push_str(&format!(
                "\n/// {doc}\n#[test]\nfn sparky_fix_holds_{i}() {{\n    assert!({}lines({file}).iter().any(|l| l == {}));\n}}\n",
                if *present { "" } else { "!" },
                py_str(line)
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_script_passes_on_the_fix_and_fails_once_it_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("values.yaml"), "resources:\n  limits:\n    memory: \"768Mi\"  # raised\n")
            .unwrap();
        let facts = [
            Fact::Value {
                file: "values.yaml".into(),
                format: Format::Yaml,
                key: "resources.limits.memory".into(),
                value: "768Mi".into(),
            },
            Fact::Line { file: "values.yaml".into(), line: "    memory: 512Mi".into(), present: false },
        ];
        let pin = write_pin(dir.path(), "SPK-0123456789ab", "raise the memory limit", &facts).unwrap();
        assert_eq!(pin.path, ".sparky/checks/SPK-0123456789ab.sh");
        let run = || std::process::Command::new("sh").arg(&pin.path).current_dir(dir.path()).output().unwrap();
        let ok = run();
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
        std::fs::write(dir.path().join("values.yaml"), "resources:\n  limits:\n    memory: 512Mi\n").unwrap();
        let undone = run();
        assert!(!undone.status.success());
        let said = String::from_utf8_lossy(&undone.stdout);
        assert!(said.contains("FAIL") && said.contains("768Mi") && said.contains("512Mi"), "{said}");
    }

    #[test]
    fn a_python_project_gets_a_pytest_and_a_crate_a_cargo_test() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), "[tool.pytest.ini_options]\n").unwrap();
        let fact = Fact::Value { file: "c.toml".into(), format: Format::Toml, key: "pool".into(), value: "20".into() };
        let pin = write_pin(dir.path(), "SPK-1", "raise the pool", std::slice::from_ref(&fact)).unwrap();
        assert_eq!((pin.path.as_str(), pin.framework.as_str()), ("tests/test_sparky_spk_1.py", "pytest"));
        let text = std::fs::read_to_string(dir.path().join(&pin.path)).unwrap();
        assert!(text.contains("\"pool=20\" in [normal(l) for l in lines(\"c.toml\")]"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let pin = write_pin(dir.path(), "SPK-1", "raise the pool", &[fact]).unwrap();
        assert_eq!((pin.path.as_str(), pin.run.as_str()), ("tests/sparky_spk_1.rs", "cargo test --test sparky_spk_1"));
    }
}
