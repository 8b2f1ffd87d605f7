//! ansible-vault: files encrypted whole and `!vault` values inside YAML,
//! decrypted with the passwords given on the command line (format 1.1 and
//! 1.2, AES256). Decrypted values are secrets: everything the run reports
//! (screen, `--output json`, the journal) has them replaced by `********`.
//!
//! The passwords are set once per process, before any file is read
//! ([`configure`]): every YAML loader (playbooks, inventories,
//! group_vars, vars_files, include_vars, `-e @file`) reaches them here
//! rather than through each call chain.

mod cipher;
mod envelope;
mod inline;
pub mod secrets;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

pub use envelope::HEADER;
pub use inline::decrypt_inline_values;
#[cfg(test)]
use inline::decrypt_inline_values_with;
pub use secrets::Secret;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "no vault password was given: add --vault-password-file FILE, \
         --vault-id [LABEL@]FILE or --ask-vault-pass"
    )]
    NoSecrets,
    #[error("no vault password given decrypts it{}", label.as_ref().map(|l| format!(" (vault id `{l}`)")).unwrap_or_default())]
    WrongPassword { label: Option<String> },
    #[error("not valid ansible-vault text: {0}")]
    Malformed(String),
    #[error("the decrypted text is not UTF-8")]
    NotText,
    #[error("vault password file {}: {why}", path.display())]
    PasswordFile { path: PathBuf, why: String },
    #[error(
        "a vault password is asked for, but stdin is not a terminal: give --vault-password-file instead"
    )]
    NoTerminal,
}

static SECRETS: OnceLock<Vec<Secret>> = OnceLock::new();

/// What was decrypted so far: output replaces each with `********`.
static REVEALED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Sets the run's vault passwords (once; later calls are ignored).
pub fn configure(secrets: Vec<Secret>) {
    let _ = SECRETS.set(secrets);
}

/// Whether a text is ansible-vault ciphertext (a file's whole content).
pub fn is_vaulted(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

/// The plaintext of a vaulted text, tried with the matching vault id's
/// passwords first and then the others, as ansible-core tries them.
pub fn decrypt(text: &str) -> Result<String, VaultError> {
    decrypt_with(text, SECRETS.get().map(Vec::as_slice).unwrap_or_default())
}

/// [`decrypt`] with these passwords rather than the run's.
fn decrypt_with(text: &str, secrets: &[Secret]) -> Result<String, VaultError> {
    let envelope = envelope::Envelope::parse(text)?;
    if secrets.is_empty() {
        return Err(VaultError::NoSecrets);
    }
    let matching = secrets
        .iter()
        .filter(|s| Some(&s.label) == envelope.label.as_ref());
    let others = secrets
        .iter()
        .filter(|s| Some(&s.label) != envelope.label.as_ref());
    let plain = matching
        .chain(others)
        .find_map(|s| cipher::decrypt(&envelope, &s.password))
        .ok_or(VaultError::WrongPassword {
            label: envelope.label.clone(),
        })?;
    let plain = String::from_utf8(plain).map_err(|_| VaultError::NotText)?;
    reveal(&plain);
    Ok(plain)
}

/// Remembers a secret for [`redact`]: the whole text, and each of its
/// lines (a vaulted vars file's values show one by one).
fn reveal(plain: &str) {
    let mut revealed = REVEALED.lock().unwrap_or_else(|e| e.into_inner());
    let mut add = |s: &str| {
        // Very short strings would blank out ordinary words.
        if s.len() >= 4 && !revealed.iter().any(|r| r == s) {
            revealed.push(s.to_owned());
        }
    };
    add(plain.trim());
    for line in plain.lines() {
        add(line.trim());
        if let Some((_, value)) = line.split_once(':') {
            add(value.trim().trim_matches(['"', '\'']));
        }
    }
    // Longest first, so a secret holding another is replaced whole.
    revealed.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Marks `secret` (a password given on the command line, not decrypted
/// here) as one that output replaces by `********`, as a decrypted one.
pub fn conceal(secret: &str) {
    let mut revealed = REVEALED.lock().unwrap_or_else(|e| e.into_inner());
    let secret = secret.trim();
    if secret.len() >= 4 && !revealed.iter().any(|r| r == secret) {
        revealed.push(secret.to_owned());
        revealed.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every decrypted secret replaced by `********`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let revealed = REVEALED.lock().unwrap_or_else(|e| e.into_inner());
    if revealed.is_empty() || !revealed.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for secret in revealed.iter() {
        out = out.replace(secret.as_str(), "********");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
