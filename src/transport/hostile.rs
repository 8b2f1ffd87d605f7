//! Values an attacker would put in a playbook, for the tests that run
//! convoy's scripts with them: each tries to run `touch` on a marker file,
//! so a value that became code leaves a file behind.

use std::path::{Path, PathBuf};

/// A directory that must stay empty: every hostile value aims its `touch` here.
pub struct Markers {
    dir: tempfile::TempDir,
}

impl Markers {
    pub fn new() -> Markers {
        Markers {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// One hostile value per way into a shell: command substitution,
    /// backticks, `;`, either quote, a newline, a leading `-`, spaces,
    /// globs, a variable.
    pub fn values(&self) -> Vec<String> {
        let m = self.dir.path().display();
        vec![
            format!("$(touch {m}/dollar)"),
            format!("`touch {m}/backtick`"),
            format!("x; touch {m}/semicolon"),
            format!("x' ; touch {m}/squote ; '"),
            format!("x\" ; touch {m}/dquote ; \""),
            format!("x\ntouch {m}/newline"),
            "-rf".to_owned(),
            "with  two spaces".to_owned(),
            "*".to_owned(),
            "${HOME}".to_owned(),
        ]
    }

    /// Panics naming any file that a value made (none may exist).
    pub fn assert_untouched(&self) {
        let made: Vec<PathBuf> = walk(self.dir.path());
        assert!(made.is_empty(), "a value ran as code: {made:?}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
