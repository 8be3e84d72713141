//! A service's repository for L2 tests: the pricing service (`tests/fixtures/fix/revert-python`)
//! with one bad commit on top, pushed to a bare repository on disk that serves as the remote.

#![allow(dead_code)]

use sparky::fix::git::Git;
use std::path::Path;

pub fn commit(git: &Git, message: &str) {
    git.run(&["add", "--all"]).unwrap();
    git.run(&["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", message]).unwrap();
}

/// A bare remote at `bare` holding the pricing service, its last commit the bad one; the
/// remote's path and the bad commit's id.
pub fn remote_at(root: &Path, bare: &Path) -> (String, String) {
    let work = root.join("work");
    std::fs::create_dir_all(work.join("app")).unwrap();
    std::fs::create_dir_all(work.join("tests")).unwrap();
    let fixture = Path::new("tests/fixtures/fix/revert-python/repo");
    for f in ["pyproject.toml", "app/pricing.py", "tests/test_pricing.py"] {
        std::fs::copy(fixture.join(f), work.join(f)).unwrap();
    }
    let git = Git::at(&work);
    git.run(&["init", "-q", "-b", "main"]).unwrap();
    commit(&git, "the service as it was");
    let patch = std::fs::read("tests/fixtures/fix/revert-python/history.patch").unwrap();
    git.run_with(&["apply", "-"], Some(&patch)).unwrap();
    commit(&git, "make big orders cheaper");
    let bad = git.run(&["rev-parse", "HEAD"]).unwrap().trim().to_string();
    std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
    Git::at(root).run(&["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]).unwrap();
    (bare.to_string_lossy().to_string(), bad)
}

/// [`remote_at`] `root/pricing.git`.
pub fn remote(root: &Path) -> (String, String) {
    remote_at(root, &root.join("pricing.git"))
}

/// What the repository's tests check on the fix branch: the bad commit's change is gone.
pub const TEST_COMMAND: &str = "grep -q 'round(net \\* (1 + TAX), 2)' app/pricing.py && echo 12 passed";
