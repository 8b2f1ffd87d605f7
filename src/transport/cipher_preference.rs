//! Which cipher convoy asks its SSH masters to prefer.
//!
//! OpenSSH's default client preference puts chacha20-poly1305 first. On a
//! CPU with AES instructions (nearly every server and laptop since 2010),
//! aes128-gcm costs ssh and sshd far less CPU per byte: an artifact of
//! 20 MB sent over one master cost the host's sshd about 15 ms and the
//! master about 10 ms less with it (measured on this project's fleet). So
//! when the operator's ssh configuration does not choose `Ciphers` itself,
//! convoy's masters are started with
//! `-o Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com`: the two
//! moved to the front of the client's own default list, which otherwise
//! stays as it is (a server without them still agrees on another).
//!
//! A configuration that names `Ciphers` anywhere (in the file given with
//! `-F`, else `~/.ssh/config` and `/etc/ssh/ssh_config`, and whatever they
//! `Include`) is left alone, for every host: whether that line applies to a
//! given host is ssh's business, and convoy never overrides it. An ssh too
//! old for the `^` form refuses the option as a bad cipher spec; the master
//! is then started again without it, and no later one asks for it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// The option given to every master, unless the configuration chooses.
pub const PREFER_AES_GCM: &str = "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com";

/// Set once an ssh refused [`PREFER_AES_GCM`].
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Includes nested deeper than this are not followed (ssh stops at 16 too).
const MAX_DEPTH: usize = 16;

/// The `-o` option for a master whose ssh reads `config_file` (`-F`), or
/// the default files when `None`; `None` when the configuration names
/// `Ciphers` or ssh refused the option before. Files are read once per run.
pub fn option_for(config_file: Option<&Path>) -> Option<&'static str> {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    static CHOSEN: OnceLock<Mutex<HashMap<Option<PathBuf>, bool>>> = OnceLock::new();
    let mut chosen = CHOSEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = config_file.map(Path::to_owned);
    let sets = *chosen.entry(key).or_insert_with(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let files: Vec<(PathBuf, PathBuf)> = match config_file {
            Some(f) => vec![(f.to_owned(), user_dir(home.as_deref()))],
            None => {
                let mut files = Vec::new();
                if let Some(h) = &home {
                    files.push((h.join(".ssh/config"), h.join(".ssh")));
                }
                files.push((
                    PathBuf::from("/etc/ssh/ssh_config"),
                    PathBuf::from("/etc/ssh"),
                ));
                files
            }
        };
        files
            .iter()
            .any(|(file, base)| names_ciphers(file, base, 0))
    });
    (!sets).then_some(PREFER_AES_GCM)
}

/// Whether ssh's error output says it does not understand the option; it
/// then is not asked for again in this process.
pub fn refused(ssh_output: &str) -> bool {
    let refused = ssh_output.contains("Bad SSH2 cipher spec");
    if refused {
        UNSUPPORTED.store(true, Ordering::Relaxed);
    }
    refused
}

fn user_dir(home: Option<&Path>) -> PathBuf {
    home.map_or_else(|| PathBuf::from("."), |h| h.join(".ssh"))
}

/// Whether `file`, or a file it includes, has a `Ciphers` line. `base` is
/// where relative `Include` paths are (`~/.ssh` for a user's file,
/// `/etc/ssh` for the system's). An unreadable file names nothing.
fn names_ciphers(file: &Path, base: &Path, depth: usize) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    text.lines().any(|line| {
        let (keyword, rest) = keyword(line);
        if keyword.eq_ignore_ascii_case("ciphers") {
            return true;
        }
        depth < MAX_DEPTH
            && keyword.eq_ignore_ascii_case("include")
            && rest.split_whitespace().any(|pattern| {
                included(pattern, base)
                    .iter()
                    .any(|f| names_ciphers(f, base, depth + 1))
            })
    })
}

/// A config line's keyword and the rest (`Keyword value`, `Keyword=value`).
fn keyword(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    (&line[..end], rest.trim())
}

/// The files an `Include` pattern names: `~/` is the home directory, a
/// relative path is under `base`; `*` and `?` in the last component match
/// as in a glob.
fn included(pattern: &str, base: &Path) -> Vec<PathBuf> {
    let pattern = pattern.trim_matches('"');
    let path = match pattern.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(rest),
            None => return Vec::new(),
        },
        None if pattern.starts_with('/') => PathBuf::from(pattern),
        None => base.join(pattern),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| wildcard(name.as_bytes(), e.file_name().to_string_lossy().as_bytes()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `*` (any run) and `?` (any one byte), as ssh's globs for file names.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_file_without_ciphers_gets_the_preference() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "config",
            "Host *\n    User root\n    # Ciphers in a comment\n    CipherSpecs x\n",
        );
        assert!(!names_ciphers(&f, dir.path(), 0));
    }

    #[test]
    fn a_ciphers_line_in_any_spelling_is_the_operators_choice() {
        let dir = tempfile::tempdir().unwrap();
        for line in [
            "Ciphers aes256-ctr",
            "  ciphers=chacha20-poly1305@openssh.com",
            "Host h1\n\tCIPHERS = aes128-ctr",
        ] {
            let f = write(dir.path(), "config", &format!("User root\n{line}\n"));
            assert!(names_ciphers(&f, dir.path(), 0), "{line:?}");
        }
    }

    #[test]
    fn ciphers_in_an_included_file_count_relative_absolute_and_globbed() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "conf.d/10-a.conf", "User x\n");
        write(base, "conf.d/20-b.conf", "Ciphers aes256-ctr\n");
        let globbed = write(base, "globbed", "Include conf.d/*.conf\n");
        assert!(names_ciphers(&globbed, base, 0));
        let only_a = write(base, "only-a", "Include conf.d/1?-a.conf\n");
        assert!(!names_ciphers(&only_a, base, 0));
        let absolute = write(
            base,
            "absolute",
            &format!("Include {}\n", base.join("conf.d/20-b.conf").display()),
        );
        assert!(names_ciphers(&absolute, base, 0));
        // A file that includes itself ends at the depth bound.
        let looped = write(base, "looped", "Include looped\n");
        assert!(!names_ciphers(&looped, base, 0));
    }

    #[test]
    fn the_option_moves_aes_gcm_first_and_a_refusal_is_recognised() {
        assert!(PREFER_AES_GCM.starts_with("Ciphers=^aes128-gcm@openssh.com"));
        assert!(!refused(
            "ssh: connect to host x port 22: Connection refused"
        ));
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.conf.bak"));
    }
}
