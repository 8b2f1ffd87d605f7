//! Where vault passwords come from, as ansible-playbook takes them:
//! `--vault-password-file FILE` and `--vault-id [LABEL@]FILE` (a file's
//! text, trimmed; an executable file is run and its output used, as
//! ansible-core's script secrets are), `--vault-id LABEL@prompt` and
//! `--ask-vault-pass` (asked once on the terminal, not echoed), and
//! `ANSIBLE_VAULT_PASSWORD_FILE`.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::VaultError;

/// One password, with the vault id it was given under (`default` when none).
#[derive(Clone)]
pub struct Secret {
    pub label: String,
    pub password: Vec<u8>,
}

/// `--vault-id` as written: `LABEL@SOURCE` or `SOURCE`.
pub fn from_vault_id(spec: &str) -> Result<Secret, VaultError> {
    let (label, source) = match spec.split_once('@') {
        Some((label, source)) => (label.to_owned(), source),
        None => ("default".to_owned(), spec),
    };
    if source == "prompt" {
        return prompt(&label);
    }
    from_file(Path::new(source), &label)
}

/// A password file, or an executable that prints the password.
pub fn from_file(path: &Path, label: &str) -> Result<Secret, VaultError> {
    let unreadable = |e: std::io::Error| VaultError::PasswordFile {
        path: path.to_owned(),
        why: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let bytes = if meta.permissions().mode() & 0o111 != 0 {
        // A bare name is the file here, not a program on $PATH.
        let program = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let out = std::process::Command::new(program)
            .arg("--vault-id")
            .arg(label)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(unreadable)?;
        if !out.status.success() {
            return Err(VaultError::PasswordFile {
                path: path.to_owned(),
                why: format!("the password script exited with {}", out.status),
            });
        }
        out.stdout
    } else {
        std::fs::read(path).map_err(unreadable)?
    };
    let password = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
    if password.is_empty() {
        return Err(VaultError::PasswordFile {
            path: path.to_owned(),
            why: "it holds no password".into(),
        });
    }
    Ok(Secret {
        label: label.to_owned(),
        password,
    })
}

/// Asks on the terminal, echo off; refused without one (a run from cron
/// must not hang on a prompt nobody sees).
pub fn prompt(label: &str) -> Result<Secret, VaultError> {
    if !std::io::stdin().is_terminal() {
        return Err(VaultError::NoTerminal);
    }
    let question = if label == "default" {
        "Vault password: ".to_owned()
    } else {
        format!("Vault password ({label}): ")
    };
    let password = crate::terminal::ask(&question, true).map_err(|_| VaultError::NoTerminal)?;
    Ok(Secret {
        label: label.to_owned(),
        password: password.into_bytes(),
    })
}
