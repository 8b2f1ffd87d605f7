//! Python's `re` as Ansible's file-editing modules use it, on top of the
//! `regex` crate: compiling a pattern (with a one-line reason when it is
//! not valid) and expanding a replacement template (`\1`, `\g<name>`)
//! from a match. The crate has no look-around or back-references inside a
//! pattern; such patterns are refused when the task is built.

use regex::bytes::{Captures, Regex, RegexBuilder};

/// Compiles `pattern`: `unicode` for Python's `re` on text (`replace`),
/// ASCII classes for `re` on bytes (`lineinfile`, `blockinfile`).
/// `multi_line` is Python's `re.MULTILINE`.
pub(super) fn compile_with(
    what: &str,
    pattern: &str,
    unicode: bool,
    multi_line: bool,
) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .unicode(unicode)
        .multi_line(multi_line)
        .build()
        .map_err(|e| {
            let reason = e.to_string();
            let reason = reason
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid");
            format!(
                "{what} {pattern:?} is not a valid regular expression: {}",
                reason.trim()
            )
        })
}

/// [`compile_with`] without `re.MULTILINE`.
pub(super) fn compile(what: &str, pattern: &str, unicode: bool) -> Result<Regex, String> {
    compile_with(what, pattern, unicode, false)
}

/// Python's `match.expand(template)`: `\1`, `\g<1>`, `\g<name>` and the
/// usual escapes in `template`, filled from one match's groups.
pub(super) fn expand(caps: &Captures<'_>, template: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let group = |out: &mut Vec<u8>, name: &[u8]| {
        let text = std::str::from_utf8(name).unwrap_or_default();
        let m = match text.parse::<usize>() {
            Ok(n) => caps.get(n),
            Err(_) => caps.name(text),
        };
        if let Some(m) = m {
            out.extend_from_slice(m.as_bytes());
        }
    };
    while i < template.len() {
        let c = template[i];
        if c != b'\\' || i + 1 == template.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let next = template[i + 1];
        match next {
            b'1'..=b'9' => {
                let digits = if template.get(i + 2).is_some_and(u8::is_ascii_digit) {
                    2
                } else {
                    1
                };
                group(&mut out, &template[i + 1..i + 1 + digits]);
                i += 1 + digits;
            }
            b'g' if template.get(i + 2) == Some(&b'<') => {
                match template[i + 3..].iter().position(|&b| b == b'>') {
                    Some(end) => {
                        group(&mut out, &template[i + 3..i + 3 + end]);
                        i += 4 + end;
                    }
                    None => {
                        out.extend_from_slice(&template[i..i + 2]);
                        i += 2;
                    }
                }
            }
            b'n' | b't' | b'r' | b'\\' | b'0' => {
                out.push(match next {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    b'0' => 0,
                    _ => b'\\',
                });
                i += 2;
            }
            _ => {
                out.extend_from_slice(&template[i..i + 2]);
                i += 2;
            }
        }
    }
    out
}
