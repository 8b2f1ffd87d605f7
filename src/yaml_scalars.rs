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

/// Where the parser stands: inside a mapping (next node a key or a value)
/// or a sequence, and whether under a collection tagged `!unsafe`.
enum Frame {
    Map { key_next: bool, unsafe_: bool },
    Seq { unsafe_: bool },
}

impl Frame {
    fn is_unsafe(&self) -> bool {
        match self {
            Frame::Map { unsafe_, .. } | Frame::Seq { unsafe_ } => *unsafe_,
        }
    }
}

/// A value tagged `!unsafe`: where it is.
#[derive(Debug, PartialEq)]
pub struct UnsafeTag {
    pub line: usize,
    pub column: usize,
}

const UNSAFE_TAG: &str = "!unsafe";

fn is_unsafe_tag(event: &Event) -> bool {
    event
        .tag()
        .is_some_and(|t| t.handle() == "!" && t.suffix() == "unsafe")
}

/// The first `!unsafe` tag in `text`, if any (for readers that, like
/// PyYAML's `safe_load`, know no such tag).
pub fn unsafe_tag(text: &str) -> Option<UnsafeTag> {
    if !text.contains(UNSAFE_TAG) {
        return None;
    }
    Parser::new_from_str(text)
        .map_while(Result::ok)
        .find(|(event, _)| is_unsafe_tag(event))
        .map(|(_, span)| UnsafeTag {
            line: span.start.line(),
            column: span.start.col() + 1,
        })
}

/// The marked form of an `!unsafe` string (see
/// `crate::template::unsafe_text`), in flow style, followed by the line
/// breaks of the source it replaces so that no line moves, and by the
/// indentation the next line had.
fn unsafe_spelling(value: &str, replaced: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    let mut out = format!("{{{}: {quoted}}}", crate::template::unsafe_text::KEY);
    let breaks = replaced.matches('\n').count();
    out.extend(std::iter::repeat_n('\n', breaks));
    if breaks > 0 {
        let tail = &replaced[replaced.rfind('\n').map_or(0, |i| i + 1)..];
        if tail.chars().all(char::is_whitespace) {
            out.push_str(tail);
        }
    }
    out
}

/// `text` with every plain value scalar spelled so that serde-saphyr types
/// it as PyYAML does, and every value tagged `!unsafe` written as the
/// marked map convoy carries such text in (strings inside a tagged list or
/// map each marked, as ansible-core's `wrap_var` does). Text the event
/// parser refuses is returned unchanged (serde-saphyr then reports the
/// error with its location).
pub fn as_ansible_reads(text: &str) -> Cow<'_, str> {
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for next in Parser::new_from_str(text) {
        let Ok((event, span)) = next else {
            return Cow::Borrowed(text);
        };
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        // Is this node a mapping key? (Keys keep their text: they are names.)
        let mut is_key = false;
        if is_node && let Some(Frame::Map { key_next, .. }) = stack.last_mut() {
            is_key = *key_next;
            *key_next = !*key_next;
        }
        let tagged = is_unsafe_tag(&event);
        let under_unsafe = stack.last().is_some_and(Frame::is_unsafe);
        let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset()) else {
            continue;
        };
        // The tag comes before its node, on its line or an earlier one
        // (a block scalar's or collection's content starts below it).
        let tag_at = || text[..start].rfind(UNSAFE_TAG);
        match event {
            Event::Scalar(ref value, style, _, ref tag) if !is_key => {
                let string = tagged
                    || (under_unsafe
                        && tag.is_none()
                        && (style != ScalarStyle::Plain || resolve(value) == Resolved::Str));
                if string {
                    let from = if tagged {
                        tag_at().unwrap_or(start)
                    } else {
                        start
                    };
                    edits.push((from, end, unsafe_spelling(value, &text[from..end])));
                    continue;
                }
                let raw = &text[start..end];
                // Only one-line scalars whose source is their value: a
                // rewrite must not move lines.
                if style == ScalarStyle::Plain
                    && tag.is_none()
                    && span.start.line() == span.end.line()
                    && raw == value
                    && let Some(spelled) = respelled(raw)
                {
                    edits.push((start, end, spelled));
                }
            }
            Event::Scalar(..) if tagged => {
                // A key keeps its text; the tag is dropped.
                if let Some(at) = tag_at() {
                    edits.push((at, at + UNSAFE_TAG.len(), " ".repeat(UNSAFE_TAG.len())));
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if tagged && let Some(at) = tag_at() {
                    edits.push((at, at + UNSAFE_TAG.len(), " ".repeat(UNSAFE_TAG.len())));
                }
                let unsafe_ = (tagged || under_unsafe) && !is_key;
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq { unsafe_ }
                } else {
                    Frame::Map {
                        key_next: true,
                        unsafe_,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    if edits.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + edits.len() * 2);
    let mut at = 0;
    for (start, end, spelled) in edits {
        out.push_str(&text[at..start]);
        out.push_str(&spelled);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
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
            as_ansible_reads(text),
            "a: 'y'\nb: ['n', true, 90]\ny: keep\nc: 'y'\nd: hello\ne: '1e3'\nf: |\n  y\ng: !!str y\n"
        );
        let clean = "a: 1\nb: true\nc: [x, 2.5]\n";
        assert!(matches!(as_ansible_reads(clean), Cow::Borrowed(_)));
        let broken = "a: [y\n";
        assert_eq!(as_ansible_reads(broken), broken);
        assert_eq!(
            unsafe_tag("a: 1\nraw: !unsafe '{{ x }}'\n"),
            Some(UnsafeTag {
                line: 2,
                column: 14
            })
        );
    }

    /// Every `!unsafe` string becomes the marked map, on the lines it was
    /// on: a block scalar, a flow list (its number stays a number), a
    /// block map, a plain scalar that would otherwise be a number.
    #[test]
    fn unsafe_values_are_marked_where_they_stand() {
        let text = "a: !unsafe |\n  x {{ y }}\n  z\nb: !unsafe [p, 1, '{{q}}']\nc: !unsafe\n  k: v\nd: !unsafe 010\ne: 1\n";
        assert_eq!(
            as_ansible_reads(text),
            "a: {__ansible_unsafe: \"x {{ y }}\\nz\\n\"}\n\n\nb:         [{__ansible_unsafe: \"p\"}, 1, {__ansible_unsafe: \"{{q}}\"}]\nc:        \n  k: {__ansible_unsafe: \"v\"}\nd: {__ansible_unsafe: \"010\"}\ne: 1\n"
        );
    }
}
