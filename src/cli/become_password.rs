//! sudo's password from the command line, as ansible-playbook takes it:
//! `-K`/`--ask-become-pass` (asked once, on the terminal, before any host
//! is contacted) or `--become-password-file FILE` (ansible-core 2.12+),
//! else `$ANSIBLE_BECOME_PASSWORD_FILE`, else ansible.cfg's
//! `become_password_file` or `become_ask_pass`. A host's
//! `ansible_become_password` overrides it (see `run::escalation`).

use std::io::{IsTerminal, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::Error;
use crate::transport::BecomePassword;

#[derive(Args, Clone, Default)]
pub struct BecomePassOpts {
    /// Ask for sudo's password once, on the terminal (as ansible-playbook's -K).
    #[arg(
        short = 'K',
        long = "ask-become-pass",
        alias = "ask-become-password",
        conflicts_with = "become_password_file"
    )]
    pub ask_become_pass: bool,
    /// Read sudo's password from FILE (its text, trimmed; an executable is run and its output used; `-` is stdin).
    #[arg(
        long = "become-password-file",
        alias = "become-pass-file",
        value_name = "FILE"
    )]
    pub become_password_file: Option<PathBuf>,
    /// Set for what never becomes (jobs, listings): nothing is asked or
    /// read, whatever the environment or ansible.cfg say.
    #[arg(skip)]
    unused: bool,
}

/// Why no password could be had.
#[derive(Debug, thiserror::Error)]
pub enum BecomePassError {
    #[error(
        "-K asks for the become password on the terminal, but stdin is not a terminal: give --become-password-file FILE instead"
    )]
    NoTerminal,
    #[error("the become password file {} was not found", .0.display())]
    NotFound(PathBuf),
    #[error("cannot read the become password file {}: {why}", path.display())]
    Unreadable { path: PathBuf, why: String },
    #[error("the become password script {} failed: {why}", path.display())]
    Script { path: PathBuf, why: String },
    #[error("the become password file {} holds no password", .0.display())]
    Empty(PathBuf),
}

impl From<BecomePassError> for Error {
    fn from(e: BecomePassError) -> Error {
        Error::Usage(e.to_string())
    }
}

impl BecomePassOpts {
    /// The password these flags give (asked or read now), else the
    /// environment's or ansible.cfg's; `None` when nothing asks for one.
    /// For a command that never becomes: no password is asked or read.
    pub fn unused() -> BecomePassOpts {
        BecomePassOpts {
            unused: true,
            ..BecomePassOpts::default()
        }
    }

    pub fn password(&self) -> Result<Option<BecomePassword>, BecomePassError> {
        if self.unused {
            return Ok(None);
        }
        let cfg = crate::ansible_cfg::AnsibleCfg::current();
        // ansible-playbook's order: asking (the flag, or ansible.cfg's
        // become_ask_pass) before any file.
        if self.ask_become_pass || cfg.become_ask_pass == Some(true) {
            return ask();
        }
        let file = self.become_password_file.clone().or_else(|| {
            std::env::var_os("ANSIBLE_BECOME_PASSWORD_FILE")
                .map(PathBuf::from)
                .or_else(|| cfg.become_password_file.clone())
        });
        file.map(|f| from_file(&f)).transpose()
    }
}

/// Asked once, echo off; an empty answer is no password (then `sudo -n`),
/// as ansible-playbook's.
fn ask() -> Result<Option<BecomePassword>, BecomePassError> {
    if !std::io::stdin().is_terminal() {
        return Err(BecomePassError::NoTerminal);
    }
    let answer =
        crate::terminal::ask("BECOME password: ", true).map_err(|_| BecomePassError::NoTerminal)?;
    Ok(BecomePassword::new(&answer))
}

/// ansible-core's `get_password_from_file`: `-` is stdin, an executable
/// is run (its stdout stripped of line ends), a file's text is trimmed.
fn from_file(path: &Path) -> Result<BecomePassword, BecomePassError> {
    let unreadable = |e: std::io::Error| BecomePassError::Unreadable {
        path: path.to_owned(),
        why: e.to_string(),
    };
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        text
    } else {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BecomePassError::NotFound(path.to_owned()),
            _ => unreadable(e),
        })?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            // A bare name is the file here, not a program on $PATH.
            let program = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
            let out = std::process::Command::new(program)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| BecomePassError::Script {
                    path: path.to_owned(),
                    why: e.to_string(),
                })?;
            if !out.status.success() {
                return Err(BecomePassError::Script {
                    path: path.to_owned(),
                    why: format!("it exited with {}", out.status),
                });
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            std::fs::read_to_string(path)
                .map_err(unreadable)?
                .trim()
                .to_owned()
        }
    };
    let text = text.trim_matches(['\r', '\n']);
    BecomePassword::new(text).ok_or_else(|| BecomePassError::Empty(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_its_trimmed_text_and_an_empty_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "  s3cret pw \n").unwrap();
        assert_eq!(
            from_file(&file).unwrap(),
            BecomePassword::new("s3cret pw").unwrap()
        );
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(
            from_file(&file).unwrap_err().to_string(),
            format!(
                "the become password file {} holds no password",
                file.display()
            )
        );
        let missing = dir.path().join("nope");
        assert_eq!(
            from_file(&missing).unwrap_err().to_string(),
            format!(
                "the become password file {} was not found",
                missing.display()
            )
        );
    }

    #[test]
    fn an_executable_file_is_run_and_its_output_used() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw.sh");
        std::fs::write(&file, "#!/bin/sh\necho from-script\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            from_file(&file).unwrap(),
            BecomePassword::new("from-script").unwrap()
        );
    }
}
