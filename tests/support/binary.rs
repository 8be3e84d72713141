//! The `sparky` binary as a child process, for tests that kill it (`SIGKILL`) mid-work; its
//! address is read from its log.
//!
//! ```ignore
//! #[path = "support/binary.rs"]
//! mod binary;
//! let child = binary::spawn(dir.path(), &["--config", "sparky.yaml"]);
//! ```

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;

pub struct Child {
    pub child: std::process::Child,
    pub base: String,
}

impl Child {
    /// Kills the process at once (no graceful shutdown) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sparky serve --listen 127.0.0.1:0 <args>` in `dir` and waits until it listens.
pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sparky"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("sparky exited before listening").unwrap();
        if let Some(i) = line.find("addr=") {
            break line[i + 5..].split_whitespace().next().unwrap().to_string();
        }
    };
    let addr = base.clone();
    // Keep draining the log so the child never blocks on a full pipe (shown with
    // `SPARKY_TEST_LOG=1`).
    let show = std::env::var_os("SPARKY_TEST_LOG").is_some();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if show {
                eprintln!("[{addr}] {line}");
            }
        }
    });
    Child { child, base: format!("http://{base}") }
}
