//! `to_yaml` and `to_nice_yaml` as ansible-core writes them: PyYAML's
//! `yaml.dump` (keys sorted, `allow_unicode`), with leaf collections in
//! flow style for `to_yaml` (`b: [x, y]`) and block style for
//! `to_nice_yaml`, sequences inside mappings not indented, strings plain
//! unless PyYAML would read them back as something else (`'yes'`, `'1'`)
//! or their characters forbid it. A config rendered through these filters
//! then has the same bytes under both tools.
//!
//! Not reproduced: PyYAML folds plain and quoted strings, and flow
//! collections, longer than 80 columns; multi-line strings are written
//! double-quoted with `\n` escapes where PyYAML writes them single-quoted
//! over several lines.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::yaml_scalars::resolves_to_string;

/// `yaml.dump(value, indent=indent, default_flow_style=None|False)`.
pub fn dump(value: &Value, indent: usize, flow_leaves: bool) -> String {
    let writer = Writer {
        indent: indent.clamp(2, 9),
        flow_leaves,
    };
    let value = sorted(value);
    let mut out = String::new();
    match &value {
        Value::Array(items) if !items.is_empty() && !writer.is_flow(&value) => {
            writer.sequence(items, 0, false, &mut out)
        }
        Value::Object(map) if !map.is_empty() && !writer.is_flow(&value) => {
            writer.mapping(map, 0, false, &mut out)
        }
        Value::Array(_) | Value::Object(_) => {
            out.push_str(&writer.flow(&value));
            out.push('\n');
        }
        scalar => {
            let (text, plain) = writer.scalar(scalar, false);
            out.push_str(&text);
            // PyYAML ends a document whose root is a plain scalar with `...`.
            out.push_str(if plain { "\n...\n" } else { "\n" });
        }
    }
    out
}

/// PyYAML's `sort_keys=True`, at every level.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

struct Writer {
    indent: usize,
    flow_leaves: bool,
}

impl Writer {
    /// Empty collections are always `[]`/`{}`; with `default_flow_style=None`
    /// a collection of scalars only is written in flow style.
    fn is_flow(&self, value: &Value) -> bool {
        let scalar = |v: &Value| !matches!(v, Value::Array(_) | Value::Object(_));
        match value {
            Value::Array(items) => {
                items.is_empty() || (self.flow_leaves && items.iter().all(scalar))
            }
            Value::Object(map) => map.is_empty() || (self.flow_leaves && map.values().all(scalar)),
            _ => false,
        }
    }

    fn mapping(
        &self,
        map: &serde_json::Map<String, Value>,
        ind: usize,
        inline: bool,
        out: &mut String,
    ) {
        for (i, (key, value)) in map.iter().enumerate() {
            if !(i == 0 && inline) {
                out.push_str(&" ".repeat(ind));
            }
            out.push_str(&self.string(key, false).0);
            out.push(':');
            self.value_after_indicator(value, ind, true, out);
        }
    }

    fn sequence(&self, items: &[Value], ind: usize, inline: bool, out: &mut String) {
        for (i, item) in items.iter().enumerate() {
            if !(i == 0 && inline) {
                out.push_str(&" ".repeat(ind));
            }
            out.push('-');
            self.value_after_indicator(item, ind, false, out);
        }
    }

    /// What follows `key:` or `-`: a scalar or flow collection on the same
    /// line; a block mapping below (after `key:`) or beside (after `-`);
    /// a block sequence not indented under a key.
    fn value_after_indicator(&self, value: &Value, ind: usize, after_key: bool, out: &mut String) {
        let block = matches!(value, Value::Array(_) | Value::Object(_)) && !self.is_flow(value);
        if !block {
            out.push(' ');
            let text = match value {
                Value::Array(_) | Value::Object(_) => self.flow(value),
                scalar => self.scalar(scalar, false).0,
            };
            out.push_str(&text);
            out.push('\n');
            return;
        }
        match (value, after_key) {
            (Value::Object(map), true) => {
                out.push('\n');
                self.mapping(map, ind + self.indent, false, out);
            }
            (Value::Array(items), true) => {
                out.push('\n');
                self.sequence(items, ind, false, out);
            }
            (Value::Object(map), false) => {
                out.push_str(&" ".repeat(self.indent - 1));
                self.mapping(map, ind + self.indent, true, out);
            }
            (Value::Array(items), false) => {
                out.push_str(&" ".repeat(self.indent - 1));
                self.sequence(items, ind + self.indent, true, out);
            }
            _ => unreachable!("only collections are block"),
        }
    }

    fn flow(&self, value: &Value) -> String {
        match value {
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(|v| self.flow_item(v)).collect();
                format!("[{}]", parts.join(", "))
            }
            Value::Object(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{}: {}", self.string(k, true).0, self.flow_item(v)))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
            scalar => self.scalar(scalar, true).0,
        }
    }

    fn flow_item(&self, value: &Value) -> String {
        match value {
            Value::Array(_) | Value::Object(_) => self.flow(value),
            scalar => self.scalar(scalar, true).0,
        }
    }

    /// A scalar's text and whether it is plain.
    fn scalar(&self, value: &Value, flow: bool) -> (String, bool) {
        match value {
            Value::Null => ("null".into(), true),
            Value::Bool(b) => (b.to_string(), true),
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or_default();
                let mut text = crate::python_text::float_repr(f).to_lowercase();
                if !text.contains('.') && text.contains('e') {
                    text = text.replacen('e', ".0e", 1);
                }
                (text, true)
            }
            Value::Number(n) => (n.to_string(), true),
            Value::String(s) => self.string(s, flow),
            _ => (self.flow(value), false),
        }
    }

    fn string(&self, s: &str, flow: bool) -> (String, bool) {
        if s.chars().any(|c| c == '\n' || is_special(c)) {
            return (double_quoted(s), false);
        }
        if plain_allowed(s, flow) {
            return (s.to_owned(), true);
        }
        (format!("'{}'", s.replace('\'', "''")), false)
    }
}

static TIMESTAMP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?").unwrap());

/// PyYAML's `analyze_scalar` and implicit-resolver check, for one line.
fn plain_allowed(s: &str, flow: bool) -> bool {
    if s.is_empty() || !resolves_to_string(s) || TIMESTAMP.is_match(s) || s == "=" || s == "<<" {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut flow_indicators = false;
    let mut block_indicators = false;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_space = chars.get(i + 1).is_none_or(|n| *n == ' ');
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                flow_indicators = true;
                block_indicators = true;
            }
            if c == '?' || c == ':' {
                flow_indicators = true;
                if followed_by_space {
                    block_indicators = true;
                }
            }
            if c == '-' && followed_by_space {
                flow_indicators = true;
                block_indicators = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                flow_indicators = true;
            }
            if c == ':' {
                flow_indicators = true;
                if followed_by_space {
                    block_indicators = true;
                }
            }
            if c == '#' && chars[i - 1] == ' ' {
                flow_indicators = true;
                block_indicators = true;
            }
        }
    }
    if flow {
        !flow_indicators
    } else {
        !block_indicators
    }
}

/// Characters PyYAML will not write plain or single-quoted (non-printable).
fn is_special(c: char) -> bool {
    let code = c as u32;
    !(c == '\t'
        || (0x20..=0x7e).contains(&code)
        || code == 0x85
        || (0xa0..=0xd7ff).contains(&code)
        || (0xe000..=0xfffd).contains(&code) && code != 0xfeff
        || (0x10000..0x110000).contains(&code))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_special(c) => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02X}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04X}"));
                } else {
                    out.push_str(&format!("\\U{code:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Outputs of ansible-core 2.18's `to_yaml` / `to_nice_yaml`.
    #[test]
    fn dumps_as_pyyaml() {
        let v = json!({"b": ["x", "y"], "a": 1});
        assert_eq!(dump(&v, 2, true), "a: 1\nb: [x, y]\n");
        assert_eq!(dump(&v, 4, false), "a: 1\nb:\n- x\n- y\n");
        let v = json!({"users": [{"name": "ann", "admin": true}], "empty": [], "s": "yes", "n": "1.5", "y": "y"});
        assert_eq!(
            dump(&v, 2, false),
            "empty: []\nn: '1.5'\ns: 'yes'\nusers:\n- admin: true\n  name: ann\ny: y\n"
        );
        assert_eq!(dump(&v, 4, false).lines().nth(4), Some("-   admin: true"));
        assert_eq!(dump(&json!("abc"), 2, true), "abc\n...\n");
        assert_eq!(dump(&json!("a: b"), 2, true), "'a: b'\n");
        assert_eq!(dump(&json!({"k": "a,b"}), 2, true), "{k: 'a,b'}\n");
        assert_eq!(dump(&json!([1.0, 1e17]), 2, true), "[1.0, 1.0e+17]\n");
    }
}
