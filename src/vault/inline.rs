//! `!vault |` values inside a YAML file: each is decrypted and written back
//! in its place as a double-quoted string before the file is parsed, with
//! as many newlines as the ciphertext took, so every line number after it
//! stays where the file has it (errors point at the file the user sees).

use std::borrow::Cow;

use granit_parser::{Event, Parser};

use super::VaultError;

/// Where a `!vault` value that cannot be decrypted is.
#[derive(Debug)]
pub struct VaultValueError {
    pub error: VaultError,
    pub line: usize,
    pub column: usize,
}

/// `text` with each `!vault` value replaced by its plaintext. Text the
/// event parser refuses is returned unchanged (the YAML parser then
/// reports the error with its location).
pub fn decrypt_inline_values(text: &str) -> Result<Cow<'_, str>, VaultValueError> {
    decrypt_inline_values_with(text, super::decrypt)
}

/// [`decrypt_inline_values`] with another decryption (tests pass their own
/// passwords rather than the run's).
pub fn decrypt_inline_values_with(
    text: &str,
    decrypt: impl Fn(&str) -> Result<String, VaultError>,
) -> Result<Cow<'_, str>, VaultValueError> {
    if !text.contains("!vault") {
        return Ok(Cow::Borrowed(text));
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for next in Parser::new_from_str(text) {
        let Ok((event, span)) = next else {
            return Ok(Cow::Borrowed(text));
        };
        let Event::Scalar(value, _, _, Some(tag)) = &event else {
            continue;
        };
        if !(tag.handle() == "!" && tag.suffix() == "vault") {
            continue;
        }
        let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset()) else {
            continue;
        };
        // The event starts at the scalar's content; the tag is before it.
        let tag_at = text[..start].rfind("!vault").unwrap_or(start);
        let line = text[..tag_at].matches('\n').count() + 1;
        let column = tag_at - text[..tag_at].rfind('\n').map_or(0, |i| i + 1) + 1;
        let plain = decrypt(value).map_err(|error| VaultValueError {
            error,
            line,
            column,
        })?;
        // A block scalar's span may reach into the next line's indentation:
        // that belongs to the next node.
        let region = &text[tag_at..end];
        let end = match region.rfind('\n') {
            Some(i) if region[i + 1..].trim().is_empty() => tag_at + i + 1,
            _ => end,
        };
        let quoted = serde_json::to_string(&plain).expect("a string serializes");
        let newlines = text[tag_at..end].matches('\n').count();
        // A block scalar's span ends after its last line's newline: keep it.
        edits.push((tag_at, end, format!("{quoted}{}", "\n".repeat(newlines))));
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, replacement) in edits {
        out.push_str(&text[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(Cow::Owned(out))
}
