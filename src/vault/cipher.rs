//! VaultAES256, as ansible-core's `VaultAES256` does it: PBKDF2-HMAC-SHA256
//! (10,000 rounds) derives 80 bytes from the password and the salt: the AES
//! key, the HMAC key and the counter's start. The HMAC-SHA256 of the
//! ciphertext is checked (in constant time) before anything is decrypted;
//! AES-256-CTR then gives the PKCS#7-padded plaintext.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::envelope::Envelope;

const ROUNDS: u32 = 10_000;

/// The plaintext, or None when this password is not the one (the HMAC
/// differs) or the padding is broken.
pub fn decrypt(envelope: &Envelope, password: &[u8]) -> Option<Vec<u8>> {
    let mut derived = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &envelope.salt, ROUNDS, &mut derived);
    let (aes_key, rest) = derived.split_at(32);
    let (hmac_key, iv) = rest.split_at(32);
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(hmac_key).ok()?;
    mac.update(&envelope.ciphertext);
    mac.verify_slice(&envelope.hmac).ok()?;
    let mut data = envelope.ciphertext.clone();
    let mut cipher = ctr::Ctr128BE::<Aes256>::new_from_slices(aes_key, iv).ok()?;
    cipher.apply_keystream(&mut data);
    unpad(data)
}

/// PKCS#7 over 128-bit blocks.
fn unpad(mut data: Vec<u8>) -> Option<Vec<u8>> {
    let n = *data.last()? as usize;
    if n == 0 || n > 16 || n > data.len() || data[data.len() - n..].iter().any(|&b| b as usize != n)
    {
        return None;
    }
    data.truncate(data.len() - n);
    Some(data)
}
