//! Bad input never panics or hangs: `check` on mutated real playbooks and on random bytes
//! returns diagnostics or nothing, whatever the bytes.

use proptest::prelude::*;
use sparky::compile::compile;
use sparky::diagnostics::SourceFile;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The shipped playbooks, the stdlib and some fixtures: real text to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["playbooks", "stdlib", "tests/fixtures/check/ok"] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "sparky") {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out.sort();
    assert!(!out.is_empty());
    out
}

/// Pieces of the language worth splicing in: they reach deeper than random bytes do.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "///",
    "//",
    "/*",
    "*/",
    "==",
    "=~",
    "!~",
    "in",
    "not in",
    "exists",
    "on",
    "when",
    "l1",
    "l2",
    "l3",
    "guard",
    "do",
    "verify",
    "every",
    "cron",
    "tz",
    "%",
    "0",
    "99999999999999999999",
    "1h",
    "-1",
    "labels.",
    "kg::",
    "lists::",
    "fn",
    "list",
    "playbook",
    "\\",
    "\n",
    "é",
    "\u{0}",
    "P9",
    "loop {}",
    "import",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Token(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Token(a, t)),
        (any::<usize>(), 1usize..200).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut text: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = text.len().max(1);
        match e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(text.len());
                if at < end {
                    text.drain(at..end);
                }
            }
            Edit::Insert(at, bytes) => {
                let at = at % (text.len() + 1);
                text.splice(at..at, bytes.iter().copied());
            }
            Edit::Token(at, t) => {
                let at = at % (text.len() + 1);
                text.splice(at..at, TOKENS[*t].bytes());
            }
            Edit::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(text.len());
                let piece: Vec<u8> = text.get(at..end).unwrap_or_default().to_vec();
                text.splice(at..at, piece);
            }
            Edit::Truncate(at) => text.truncate(at % len),
        }
    }
    text
}

/// Runs the whole check, as the CLI does, including UTF-8 validation and rendering.
fn check_bytes(bytes: &[u8]) {
    let file = match String::from_utf8(bytes.to_vec()) {
        Ok(t) => SourceFile::new("fuzz.sparky", t),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            SourceFile::new_invalid_utf8("fuzz.sparky", String::from_utf8_lossy(bytes).into_owned(), at)
        }
    };
    let compiled = compile(&[file]);
    for d in &compiled.diagnostics {
        let _ = sparky::diagnostics::render_human(d, false);
        assert!(!d.message.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_playbooks_never_panic(which in any::<usize>(), edits in proptest::collection::vec(edit(), 1..6)) {
        let corpus = corpus_cached();
        let text = apply(corpus[which % corpus.len()].clone(), &edits);
        check_bytes(&text);
    }
}

/// Random bytes, up to 2 KiB most of the time and up to 64 KiB sometimes.
fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![9 => 0usize..2048, 1 => 0usize..65_536].prop_flat_map(|len| proptest::collection::vec(any::<u8>(), len))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in random_bytes()) {
        check_bytes(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,512}") {
        check_bytes(text.as_bytes());
    }
}

fn corpus_cached() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(corpus)
}

/// A valid playbook with this title and this `do` line.
fn playbook(title: &str, action: &str) -> String {
    format!(
        "/// Restarts a crash-looping pod.\nplaybook PB-001 \"{title}\" {{\n  status active\n  owner \"team:platform\"\n  on alert from alertmanager {{\n    labels.alertname == \"KubePodCrashLooping\"\n  }}\n  l1 \"delete the pod\" {{\n    guard cooldown 15m per labels.pod\n{action}\n    verify resolved within 10m\n  }}\n}}\n"
    )
}

const DELETE_POD: &str = "    do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)";

/// How long one pathological input may take, in a debug build: a hang fails the test.
const TIME_LIMIT: Duration = Duration::from_secs(20);

#[test]
fn pathological_inputs_finish() {
    let inputs = [
        "[".repeat(100_000),
        "{".repeat(100_000),
        format!("playbook A \"x\" {{ tags [{}] }}", "\"a\",".repeat(50_000)),
        "/".repeat(100_000),
        "\"".repeat(100_000),
        format!("playbook A \"x\" {{ when {{ {} }} }}", "(".repeat(10_000)),
        "///\n".repeat(50_000),
        // Lines longer than 65,535 columns, where an error's column no longer fits in 16 bits.
        format!("{}x", " ".repeat(70_000)),
        playbook(&"t".repeat(100_000), DELETE_POD),
        playbook("Long line", &format!("{}do k8s.delete_pdo(namespace = labels.namespace)", " ".repeat(70_000))),
    ];
    for (i, text) in inputs.into_iter().enumerate() {
        let preview: String = text.chars().take(40).collect();
        let (done, finished) = mpsc::channel();
        let start = Instant::now();
        let worker = std::thread::spawn(move || {
            check_bytes(text.as_bytes());
            let _ = done.send(());
        });
        match finished.recv_timeout(TIME_LIMIT) {
            Ok(()) => worker.join().unwrap(),
            // The worker panicked: fail with its message.
            Err(RecvTimeoutError::Disconnected) => match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the worker ends by sending"),
            },
            Err(RecvTimeoutError::Timeout) => {
                panic!("input {i} ({preview:?}...) did not finish within {TIME_LIMIT:?}")
            }
        }
        let took = start.elapsed();
        assert!(took <= TIME_LIMIT, "input {i} ({preview:?}...) took {took:?}, more than {TIME_LIMIT:?}");
    }
}
