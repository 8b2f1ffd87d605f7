//! Python's printf-style `%` on a string literal, as Jinja2 (so Ansible)
//! evaluates it: `'node-%02d' % i`, `"%s:%s" % (host, port)`.
//!
//! minijinja's `%` is the modulo of numbers only, and it has no hook for
//! an operator; its `format` filter does Python's formatting. So before a
//! template is compiled, each `LITERAL % OPERAND` whose left side is a
//! string literal is written `(LITERAL | format(ARGS))`, where a
//! parenthesised tuple gives its items as the arguments (as Python spreads
//! a tuple) and any other operand is the one argument. The operand is
//! read as Jinja binds it: a primary (name, number, string, bracketed
//! group) with its attributes, subscripts, calls and filters, which bind
//! tighter than `%`. A `%` whose left side is anything else (a variable, a
//! filtered string) is left alone: on numbers it is the modulo, on a
//! string it stays minijinja's error, which names the `format` filter.

use std::borrow::Cow;

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Error, State};

/// The `format` filter (which `%` becomes): minijinja's printf, with a
/// list or a mapping given as Python's `str()` of it (`{'a': 1}`), as
/// Python's `%s` writes it.
pub(crate) fn format(state: &State, template: &Value, args: Rest<Value>) -> Result<Value, Error> {
    let args: Vec<Value> = args
        .iter()
        .map(|arg| match arg.kind() {
            ValueKind::Seq | ValueKind::Map => serde_json::to_value(arg)
                .map(|v| Value::from(crate::python_text::str(&v)))
                .unwrap_or_else(|_| arg.clone()),
            _ => arg.clone(),
        })
        .collect();
    minijinja::filters::format(state, template, Rest(args))
}

/// `source` (a template) with its `%` formats rewritten inside `{{ }}` and
/// `{% %}` (not inside `{% raw %}` or comments).
pub(crate) fn in_template(source: &str) -> Cow<'_, str> {
    if !source.contains('%') || !(source.contains('\'') || source.contains('"')) {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    let mut changed = false;
    while let Some(start) = next_tag(rest) {
        let (open, close) = match &rest[start..start + 2] {
            "{{" => ("{{", "}}"),
            "{%" => ("{%", "%}"),
            _ => ("{#", "#}"),
        };
        out.push_str(&rest[..start + 2]);
        rest = &rest[start + 2..];
        let end = tag_end(rest, close);
        let inner = &rest[..end];
        if open == "{#" {
            out.push_str(inner);
        } else {
            let rewritten = in_expression(inner);
            changed |= matches!(rewritten, Cow::Owned(_));
            out.push_str(&rewritten);
            if open == "{%" && is_raw(inner) {
                // Up to `{% endraw %}`, nothing is a template.
                rest = &rest[end..];
                let stop = rest.find("endraw").unwrap_or(rest.len());
                let stop = rest[..stop].rfind("{%").unwrap_or(stop);
                out.push_str(&rest[..stop]);
                rest = &rest[stop..];
                continue;
            }
        }
        rest = &rest[end..];
    }
    if !changed {
        return Cow::Borrowed(source);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn is_raw(tag: &str) -> bool {
    tag.trim().trim_matches('-').trim() == "raw"
}

/// Where the next `{{`, `{%` or `{#` starts.
fn next_tag(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (0..bytes.len().saturating_sub(1))
        .find(|&i| bytes[i] == b'{' && matches!(bytes[i + 1], b'{' | b'%' | b'#'))
}

/// The end of a tag's inside: where `close` starts, string literals skipped.
fn tag_end(s: &str, close: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') if close != "#}" => i = string_end(bytes, i, q),
            _ if s[i..].starts_with(close) => return i,
            _ => i += 1,
        }
    }
    s.len()
}

/// The index just past the string literal opening at `start`.
fn string_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Name,
    Number,
    Open(u8),
    Close(u8),
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

fn tokens(expr: &str) -> Vec<Token> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'\'' | b'"' => {
                i = string_end(bytes, i, b);
                Kind::Str
            }
            b'0'..=b'9' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
                {
                    i += 1;
                }
                Kind::Number
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Kind::Name
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Kind::Open(b)
            }
            b')' | b']' | b'}' => {
                i += 1;
                Kind::Close(b)
            }
            _ => {
                // Non-ASCII is part of no token convoy rewrites around.
                i += expr[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Punct(b)
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// The index (in `toks`) just past the bracket group opening at `open`.
fn group_end(toks: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Open(_) => depth += 1,
            Kind::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// The operand starting at token `at`: where it ends (exclusive), or
/// none when no operand starts there.
fn operand_end(toks: &[Token], at: usize) -> Option<usize> {
    let mut i = at;
    if matches!(toks.get(i)?.kind, Kind::Punct(b'-') | Kind::Punct(b'+')) {
        i += 1;
    }
    i = match toks.get(i)?.kind {
        Kind::Str | Kind::Name | Kind::Number => i + 1,
        Kind::Open(_) => group_end(toks, i),
        _ => return None,
    };
    loop {
        match toks.get(i).map(|t| t.kind) {
            Some(Kind::Punct(b'.'))
                if matches!(
                    toks.get(i + 1).map(|t| t.kind),
                    Some(Kind::Name | Kind::Number)
                ) =>
            {
                i += 2
            }
            Some(Kind::Open(b'[' | b'(')) => i = group_end(toks, i),
            // A filter (`|` not `||`, which Jinja has not).
            Some(Kind::Punct(b'|'))
                if matches!(toks.get(i + 1).map(|t| t.kind), Some(Kind::Name)) =>
            {
                i += 2;
                if matches!(toks.get(i).map(|t| t.kind), Some(Kind::Open(b'('))) {
                    i = group_end(toks, i);
                }
            }
            _ => return Some(i),
        }
    }
}

/// Whether the tokens strictly inside a group hold a comma at its own level.
fn has_top_level_comma(toks: &[Token]) -> bool {
    let mut depth = 0usize;
    toks.iter().any(|t| match t.kind {
        Kind::Open(_) => {
            depth += 1;
            false
        }
        Kind::Close(_) => {
            depth = depth.saturating_sub(1);
            false
        }
        Kind::Punct(b',') => depth == 0,
        _ => false,
    })
}

/// One expression (the inside of a tag) with its `%` formats rewritten.
pub(crate) fn in_expression(expr: &str) -> Cow<'_, str> {
    if !expr.contains('%') {
        return Cow::Borrowed(expr);
    }
    let toks = tokens(expr);
    let mut out = String::with_capacity(expr.len() + 16);
    let mut copied = 0;
    let mut i = 1;
    while i < toks.len() {
        let is_format = toks[i].kind == Kind::Punct(b'%')
            && toks[i - 1].kind == Kind::Str
            // `%` then `}`/`%` would be a tag's end, not an operator.
            && !matches!(toks.get(i + 1).map(|t| t.kind), Some(Kind::Close(b'}')) | None)
            && (i < 2 || toks[i - 2].kind != Kind::Punct(b'.'));
        let Some(end) = is_format.then(|| operand_end(&toks, i + 1)).flatten() else {
            i += 1;
            continue;
        };
        let literal = &toks[i - 1];
        let operand = &toks[i + 1..end];
        let args = match operand {
            [first, .., last]
                if first.kind == Kind::Open(b'(') && group_end(&toks, i + 1) == end =>
            {
                let inner = &expr[first.end..last.start];
                let inner_toks = &toks[i + 2..end - 1];
                if has_top_level_comma(inner_toks) {
                    inner.trim().trim_end_matches(',').to_owned()
                } else {
                    inner.trim().to_owned()
                }
            }
            _ => expr[operand[0].start..operand[operand.len() - 1].end].to_owned(),
        };
        out.push_str(&expr[copied..literal.start]);
        out.push('(');
        out.push_str(&expr[literal.start..literal.end]);
        out.push_str(" | format(");
        out.push_str(&args);
        out.push_str("))");
        copied = toks[end - 1].end;
        i = end;
    }
    if copied == 0 {
        return Cow::Borrowed(expr);
    }
    out.push_str(&expr[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_on_the_left_becomes_the_format_filter() {
        assert_eq!(
            in_expression(" 'node-%02d' % 7 "),
            " ('node-%02d' | format(7)) "
        );
        assert_eq!(
            in_expression("\"%s:%s\" % (host, port)"),
            "(\"%s:%s\" | format(host, port))"
        );
        assert_eq!(in_expression("'%s' % (x,)"), "('%s' | format(x))");
        assert_eq!(in_expression("'%s' % (x)"), "('%s' | format(x))");
        assert_eq!(
            in_expression("'%s' % item.name | upper ~ '!'"),
            "('%s' | format(item.name | upper)) ~ '!'"
        );
        assert_eq!(
            in_expression("'a-%d' % groups['web'] | length"),
            "('a-%d' | format(groups['web'] | length))"
        );
        assert_eq!(in_expression("x ~ '%d' % -1"), "x ~ ('%d' | format(-1))");
        assert_eq!(in_expression("f('%d' % n, 2)"), "f(('%d' | format(n)), 2)");
    }

    #[test]
    fn other_percents_are_left_alone() {
        for expr in [
            "n % 2",
            "x | format(1) % 3",
            "'%' ~ x",
            "'a%b'",
            "s|upper % 3",
        ] {
            assert_eq!(in_expression(expr), expr, "{expr}");
        }
    }

    #[test]
    fn only_inside_tags_and_not_in_raw_or_comments() {
        assert_eq!(
            in_template("a % b {{ 'x%d' % 1 }} {% set y = '%s' % z %}{# '%d' % 2 #}"),
            "a % b {{ ('x%d' | format(1)) }} {% set y = ('%s' | format(z)) %}{# '%d' % 2 #}"
        );
        let raw = "{% raw %}{{ '%d' % 1 }}{% endraw %}";
        assert_eq!(in_template(raw), raw);
        assert_eq!(in_template("{{ 'a' }} 100%"), "{{ 'a' }} 100%");
    }
}
