//! The typing of INI inventory values: Python's `ast.literal_eval`.
//!
//! Ansible's INI plugin hands every value (host-line `k=v`, `[g:vars]`
//! lines) to `ast.literal_eval` and keeps the text when that fails, so
//! `port=22` is a number, `flag=True` a boolean but `flag=true` and
//! `flag=yes` strings, `x='1'` on a `[g:vars]` line the string `1`, and
//! `l=[1, 2]` a list. An inventory behaves the same under convoy only if
//! the same values come out, so this reads the same subset of Python:
//! numbers (with `_`, `0x`/`0o`/`0b`, a sign), strings (quotes, escapes,
//! adjacent literals joined), `True`/`False`/`None`, lists, tuples and
//! dicts, and a trailing `# comment`.

use crate::vars::{Value, VarMap};

/// The value Ansible's INI plugin makes of `text`: the literal, or the text itself.
pub fn ini_value(text: &str) -> Value {
    literal_eval(text).unwrap_or_else(|| Value::String(text.to_owned()))
}

/// `ast.literal_eval(text)`, or `None` where Python raises.
pub fn literal_eval(text: &str) -> Option<Value> {
    // literal_eval strips leading spaces and tabs (not other whitespace).
    let mut parser = Parser {
        s: text.trim_start_matches([' ', '\t']).as_bytes(),
        i: 0,
    };
    let value = parser.expression()?;
    parser.blank();
    (parser.i == parser.s.len()).then_some(value)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips whitespace and a `#` comment running to the end of the line.
    fn blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.i += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.blank();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expression(&mut self) -> Option<Value> {
        self.blank();
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.sequence(b']').map(Value::Array)
            }
            b'(' => {
                self.i += 1;
                // `(x)` is x; `(x,)` and `()` are tuples (JSON lists).
                let start = self.i;
                if self.eat(b')') {
                    return Some(Value::Array(Vec::new()));
                }
                self.i = start;
                let first = self.expression()?;
                if self.eat(b')') {
                    return Some(first);
                }
                if !self.eat(b',') {
                    return None;
                }
                let mut items = vec![first];
                items.extend(self.sequence(b')')?);
                Some(Value::Array(items))
            }
            b'{' => {
                self.i += 1;
                self.dict()
            }
            b'\'' | b'"' => self.strings(),
            b'b' | b'B' | b'r' | b'R' | b'u' | b'U'
                if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                self.strings()
            }
            b'-' | b'+' => {
                let negative = self.peek() == Some(b'-');
                self.i += 1;
                self.blank();
                match self.number()? {
                    Value::Number(n) if negative => negate(&n),
                    n => Some(n),
                }
            }
            b'0'..=b'9' | b'.' => self.number(),
            _ => self.name(),
        }
    }

    /// Items up to `close`, a trailing comma allowed.
    fn sequence(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.expression()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        let mut map = VarMap::new();
        loop {
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            // A key must be hashable; JSON keys are strings, as Ansible's
            // variables end up once they are templated.
            let key = match self.expression()? {
                Value::String(s) => s,
                Value::Array(_) | Value::Object(_) => return None,
                other => other.to_string(),
            };
            if !self.eat(b':') {
                return None; // a set, `{1, 2}`: not a JSON value
            }
            let value = self.expression()?;
            map.insert(key, value);
            if !self.eat(b',') {
                return self.eat(b'}').then(|| Value::Object(map));
            }
        }
    }

    fn name(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        match &self.s[start..self.i] {
            b"True" => Some(Value::Bool(true)),
            b"False" => Some(Value::Bool(false)),
            b"None" => Some(Value::Null),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            // an exponent's sign
            || (matches!(self.peek(), Some(b'+' | b'-'))
                && matches!(self.s.get(self.i.wrapping_sub(1)), Some(b'e' | b'E'))
                && !self.s[start..self.i].starts_with(b"0x"))
        {
            self.i += 1;
        }
        let raw = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if raw.starts_with('_') || raw.ends_with('_') || raw.contains("__") {
            return None;
        }
        let text = raw.replace('_', "");
        let lower = text.to_ascii_lowercase();
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(digits) = lower.strip_prefix(prefix) {
                return i64::from_str_radix(digits, radix).ok().map(Value::from);
            }
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            // Python 3 refuses leading zeros (`07`) except for zero itself.
            if text.len() > 1 && text.starts_with('0') && text.bytes().any(|b| b != b'0') {
                return None;
            }
            return text.parse::<i64>().ok().map(Value::from);
        }
        let valid_float = lower
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
            && lower.bytes().any(|b| b.is_ascii_digit());
        if !valid_float {
            return None;
        }
        let float: f64 = text.parse().ok()?;
        serde_json::Number::from_f64(float).map(Value::Number)
    }

    /// One or more adjacent string literals, joined as Python does.
    fn strings(&mut self) -> Option<Value> {
        let mut out = String::new();
        loop {
            self.blank();
            let mut raw = false;
            while let Some(c @ (b'b' | b'B' | b'r' | b'R' | b'u' | b'U')) = self.peek() {
                raw |= matches!(c, b'r' | b'R');
                self.i += 1;
            }
            let quote = match self.peek() {
                Some(q @ (b'\'' | b'"')) => q,
                _ if out.is_empty() => return None,
                _ => return Some(Value::String(out)),
            };
            self.string(quote, raw, &mut out)?;
            self.blank();
            if !matches!(
                self.peek(),
                Some(b'\'' | b'"' | b'b' | b'B' | b'r' | b'R' | b'u' | b'U')
            ) {
                return Some(Value::String(out));
            }
        }
    }

    fn string(&mut self, quote: u8, raw: bool, out: &mut String) -> Option<()> {
        let triple = self.s[self.i..].starts_with(&[quote; 3]);
        self.i += if triple { 3 } else { 1 };
        let mut bytes = Vec::new();
        loop {
            let c = self.peek()?;
            if c == quote && (!triple || self.s[self.i..].starts_with(&[quote; 3])) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                return None;
            }
            self.i += 1;
            if c != b'\\' || raw {
                if c == b'\\' && raw {
                    // A raw string still cannot end in an odd backslash.
                    bytes.push(c);
                    if let Some(next) = self.peek() {
                        bytes.push(next);
                        self.i += 1;
                    }
                    continue;
                }
                bytes.push(c);
                continue;
            }
            let e = self.peek()?;
            self.i += 1;
            let simple = match e {
                b'n' => Some('\n'),
                b't' => Some('\t'),
                b'r' => Some('\r'),
                b'\\' => Some('\\'),
                b'\'' => Some('\''),
                b'"' => Some('"'),
                b'a' => Some('\x07'),
                b'b' => Some('\x08'),
                b'f' => Some('\x0c'),
                b'v' => Some('\x0b'),
                b'0'..=b'7' => {
                    let mut n = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                n = n * 8 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    char::from_u32(n)
                }
                b'x' | b'u' | b'U' => {
                    let len = match e {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    let hex = std::str::from_utf8(self.s.get(self.i..self.i + len)?).ok()?;
                    self.i += len;
                    Some(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?)
                }
                b'\n' => None,
                // Unknown escapes keep their backslash, as in Python.
                other => {
                    bytes.push(b'\\');
                    bytes.push(other);
                    continue;
                }
            };
            if let Some(ch) = simple {
                let mut buf = [0; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
        out.push_str(&String::from_utf8(bytes).ok()?);
        Some(())
    }
}

fn negate(n: &serde_json::Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return Some(Value::from(-i));
    }
    serde_json::Number::from_f64(-n.as_f64()?).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each pair was checked against ansible-inventory (ansible-core 2.18).
    #[test]
    fn values_as_ansible_types_them() {
        let cases = [
            ("1", json!(1)),
            ("true", json!("true")),
            ("True", json!(true)),
            ("yes", json!("yes")),
            ("x y", json!("x y")),
            ("[1,2]", json!([1, 2])),
            ("{k:1}", json!("{k:1}")),
            ("{'k': 1}", json!({"k": 1})),
            ("1.5", json!(1.5)),
            ("0x1F", json!(31)),
            ("None", json!(null)),
            ("07", json!("07")),
            ("1_000", json!(1000)),
            ("'q'", json!("q")),
            ("\"1\"", json!("1")),
            ("", json!("")),
            ("a b # c", json!("a b # c")),
            ("1 # c", json!(1)),
            ("-3", json!(-3)),
            ("(1, 'a')", json!([1, "a"])),
            ("'a' 'b'", json!("ab")),
            ("'a\\nb'", json!("a\nb")),
            ("'a\\db'", json!("a\\db")),
            ("1e3", json!(1000.0)),
            ("a=b", json!("a=b")),
            ("/usr/bin/python3", json!("/usr/bin/python3")),
            ("10.0.0.1", json!("10.0.0.1")),
        ];
        for (text, expected) in cases {
            assert_eq!(ini_value(text), expected, "{text:?}");
        }
    }
}
