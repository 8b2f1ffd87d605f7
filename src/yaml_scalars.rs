//! Plain YAML scalars typed as ansible-core types them (PyYAML, YAML 1.1).
//!
//! An Ansible project's values mean what PyYAML makes of them: `y` and `n`
//! are strings, `yes`/`no`/`on`/`off` booleans, `0644` the octal 420,
//! `1:30` the sexagesimal 90, `1e3` a string (YAML 1.1 floats need a dot
//! and a signed exponent), `0o644` a string. serde-saphyr reads YAML 1.2
//! with some 1.1 habits, which differ on exactly those spellings. Rather
//! than fork the parser, every file is scanned for its plain, untagged,
//! one-line scalars in value position first, and those whose YAML 1.1
//! meaning serde-saphyr would not see are rewritten in place to a spelling
//! both agree on (`y` -> `'y'`, `1:30` -> `90`). Line numbers never move;
//! only columns after a rewritten scalar on its own line do.

use std::borrow::Cow;
use std::sync::LazyLock;

use granit_parser::{Event, Parser, ScalarStyle};
use regex::Regex;

/// What PyYAML's resolver makes of a plain scalar.
#[derive(Debug, PartialEq)]
enum Resolved {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .unwrap()
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .unwrap()
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .unwrap()
});

/// PyYAML's implicit resolvers (`yaml.resolver.Resolver`), in its order.
fn resolve(s: &str) -> Resolved {
    if matches!(s, "" | "~" | "null" | "Null" | "NULL") {
        return Resolved::Null;
    }
    if BOOL.is_match(s) {
        return Resolved::Bool(
            matches!(s.as_bytes()[0], b'y' | b'Y' | b't' | b'T') || s.eq_ignore_ascii_case("on"),
        );
    }
    if INT.is_match(s) {
        if let Some(i) = int_value(s) {
            return Resolved::Int(i);
        }
        return Resolved::Str;
    }
    if FLOAT.is_match(s) {
        return float_value(s).map_or(Resolved::Str, Resolved::Float);
    }
    Resolved::Str
}

/// Whether PyYAML reads this plain scalar back as a string (so a YAML
/// writer may leave it unquoted).
pub fn resolves_to_string(s: &str) -> bool {
    resolve(s) == Resolved::Str
}

/// PyYAML's `construct_yaml_int`.
fn int_value(s: &str) -> Option<i128> {
    let text = s.replace('_', "");
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, &text[..]),
    };
    let value = if digits == "0" {
        0
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i128::from_str_radix(bin, 2).ok()?
    } else if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix('0') {
        i128::from_str_radix(oct, 8).ok()?
    } else if digits.contains(':') {
        sexagesimal(digits)?
    } else {
        digits.parse().ok()?
    };
    Some(sign * value)
}

fn sexagesimal(digits: &str) -> Option<i128> {
    digits.split(':').try_fold(0i128, |acc, part| {
        Some(acc * 60 + part.parse::<i128>().ok()?)
    })
}

/// PyYAML's `construct_yaml_float` (finite values; `.inf`/`.nan` are left
/// to serde-saphyr, which refuses them: a JSON value cannot hold them).
fn float_value(s: &str) -> Option<f64> {
    let text = s.replace('_', "").to_ascii_lowercase();
    if text.contains("inf") || text.contains("nan") {
        return None;
    }
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, &text[..]),
    };
    if digits.contains(':') {
        let mut value = 0.0;
        for part in digits.split(':') {
            value = value * 60.0 + part.parse::<f64>().ok()?;
        }
        return Some(sign * value);
    }
    Some(sign * digits.parse::<f64>().ok()?)
}

/// How serde-saphyr would see a plain scalar that PyYAML reads as a string:
/// anything that might pass for a boolean, null or number is quoted.
fn ambiguous_string(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        || matches!(
            lower.as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
        )
}

/// The spelling of a plain scalar that serde-saphyr reads as PyYAML does,
/// when it differs from the original.
fn respelled(s: &str) -> Option<String> {
    let spelled = match resolve(s) {
        Resolved::Null => return None,
        Resolved::Bool(b) => b.to_string(),
        Resolved::Int(i) => i.to_string(),
        Resolved::Float(f) => {
            let text = format!("{f:?}");
            if text.contains('.') || text.contains('e') {
                text
            } else {
                format!("{text}.0")
            }
        }
        Resolved::Str if ambiguous_string(s) => format!("'{}'", s.replace('\'', "''")),
        Resolved::Str => return None,
    };
    (spelled != s).then_some(spelled)
}

/// Where the parser stands: inside a mapping (next node a key or a value) or a sequence.
enum Frame {
    Map { key_next: bool },
    Seq,
}

/// A value tagged `!unsafe`, which convoy cannot honour yet: where it is.
#[derive(Debug, PartialEq)]
pub struct UnsafeTag {
    pub line: usize,
    pub column: usize,
}

/// `text` with every plain value scalar spelled so that serde-saphyr types
/// it as PyYAML does. Text the event parser refuses is returned unchanged
/// (serde-saphyr then reports the error with its location). A `!unsafe`
/// value is refused: read as plain text it would be templated, which is
/// what the tag is there to prevent.
pub fn as_ansible_reads(text: &str) -> Result<Cow<'_, str>, UnsafeTag> {
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for next in Parser::new_from_str(text) {
        let Ok((event, span)) = next else {
            return Ok(Cow::Borrowed(text));
        };
        if event
            .tag()
            .is_some_and(|t| t.handle() == "!" && t.suffix() == "unsafe")
        {
            return Err(UnsafeTag {
                line: span.start.line(),
                column: span.start.col() + 1,
            });
        }
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        // Is this node a mapping key? (Keys keep their text: they are names.)
        let mut is_key = false;
        if is_node && let Some(Frame::Map { key_next }) = stack.last_mut() {
            is_key = *key_next;
            *key_next = !*key_next;
        }
        match event {
            Event::Scalar(value, ScalarStyle::Plain, _, None) if !is_key => {
                let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset())
                else {
                    continue;
                };
                let raw = &text[start..end];
                // Only one-line scalars whose source is their value: a
                // rewrite must not move lines.
                if span.start.line() == span.end.line()
                    && raw == value
                    && let Some(spelled) = respelled(raw)
                {
                    edits.push((start, end, spelled));
                }
            }
            Event::SequenceStart(..) => stack.push(Frame::Seq),
            Event::MappingStart(..) => stack.push(Frame::Map { key_next: true }),
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len() + edits.len() * 2);
    let mut at = 0;
    for (start, end, spelled) in edits {
        out.push_str(&text[at..start]);
        out.push_str(&spelled);
        at = end;
    }
    out.push_str(&text[at..]);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value as ansible-core 2.18 (PyYAML) read it in the compat case
    /// `yaml-scalars`.
    #[test]
    fn plain_scalars_as_pyyaml_resolves_them() {
        let cases = [
            ("y", Resolved::Str),
            ("N", Resolved::Str),
            ("yes", Resolved::Bool(true)),
            ("Off", Resolved::Bool(false)),
            ("on", Resolved::Bool(true)),
            ("TRUE", Resolved::Bool(true)),
            ("yEs", Resolved::Str),
            ("0644", Resolved::Int(420)),
            ("0o644", Resolved::Str),
            ("0x1F", Resolved::Int(31)),
            ("1_000", Resolved::Int(1000)),
            ("007", Resolved::Int(7)),
            ("08", Resolved::Str),
            ("1:30", Resolved::Int(90)),
            ("+12", Resolved::Int(12)),
            ("1.5", Resolved::Float(1.5)),
            ("1.10", Resolved::Float(1.1)),
            ("1e3", Resolved::Str),
            ("1.0e3", Resolved::Str),
            ("1.0e+3", Resolved::Float(1000.0)),
            ("1.2.3", Resolved::Str),
            ("~", Resolved::Null),
            ("hello", Resolved::Str),
        ];
        for (text, expected) in cases {
            assert_eq!(resolve(text), expected, "{text:?}");
        }
    }

    #[test]
    fn rewrites_only_what_serde_saphyr_would_misread() {
        let text =
            "a: y\nb: [n, yes, 1:30]\ny: keep\nc: 'y'\nd: hello\ne: 1e3\nf: |\n  y\ng: !!str y\n";
        assert_eq!(
            as_ansible_reads(text).unwrap(),
            "a: 'y'\nb: ['n', true, 90]\ny: keep\nc: 'y'\nd: hello\ne: '1e3'\nf: |\n  y\ng: !!str y\n"
        );
        let clean = "a: 1\nb: true\nc: [x, 2.5]\n";
        assert!(matches!(as_ansible_reads(clean), Ok(Cow::Borrowed(_))));
        let broken = "a: [y\n";
        assert_eq!(as_ansible_reads(broken).unwrap(), broken);
        assert_eq!(
            as_ansible_reads("a: 1\nraw: !unsafe '{{ x }}'\n"),
            Err(UnsafeTag {
                line: 2,
                column: 14
            })
        );
    }
}
