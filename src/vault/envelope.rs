//! The ansible-vault envelope: `$ANSIBLE_VAULT;1.1;AES256` (or
//! `1.2;AES256;LABEL`) and then hex lines which, joined and decoded, hold
//! three hex fields separated by newlines: the salt, the HMAC and the
//! ciphertext (ansible-core's `parse_vaulttext_envelope` and
//! `_parse_vaulttext`).

use super::VaultError;

/// How vault text begins, file or `!vault` value.
pub const HEADER: &str = "$ANSIBLE_VAULT;";

/// One vaulted text, parsed but not decrypted.
#[derive(Debug, PartialEq)]
pub struct Envelope {
    /// The 1.2 format's vault id (`--vault-id LABEL@...`), if any.
    pub label: Option<String>,
    pub salt: Vec<u8>,
    pub hmac: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Envelope {
    pub fn parse(text: &str) -> Result<Envelope, VaultError> {
        let text = text.trim();
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default().trim();
        let fields: Vec<&str> = header.split(';').map(str::trim).collect();
        let malformed = |why: &str| VaultError::Malformed(why.to_owned());
        if fields.first() != Some(&"$ANSIBLE_VAULT") || fields.len() < 3 {
            return Err(malformed("no $ANSIBLE_VAULT header"));
        }
        let label = match (fields[1], fields.len()) {
            ("1.1", 3) => None,
            ("1.2", 4) => Some(fields[3].to_owned()),
            ("1.0", _) => {
                return Err(malformed(
                    "format 1.0 (AES, not AES256) is not supported; re-key it with `ansible-vault rekey`",
                ));
            }
            (version, _) => {
                return Err(VaultError::Malformed(format!(
                    "unknown vault format {version} in header `{header}`"
                )));
            }
        };
        if fields[2] != "AES256" {
            return Err(VaultError::Malformed(format!(
                "cipher {} is not supported (only AES256)",
                fields[2]
            )));
        }
        let hex_text: String = lines.map(str::trim).collect();
        let inner = hex::decode(&hex_text).map_err(|_| malformed("the body is not hex"))?;
        let inner =
            String::from_utf8(inner).map_err(|_| malformed("the body is not vault text"))?;
        let parts: Vec<&str> = inner.split('\n').collect();
        let [salt, hmac, ciphertext] = parts[..] else {
            return Err(malformed(
                "the body does not hold salt, hmac and ciphertext",
            ));
        };
        let field = |s: &str| hex::decode(s.trim()).map_err(|_| malformed("a field is not hex"));
        Ok(Envelope {
            label,
            salt: field(salt)?,
            hmac: field(hmac)?,
            ciphertext: field(ciphertext)?,
        })
    }
}
