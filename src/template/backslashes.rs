//! Backslashes in string literals of playbook templates, as Ansible keeps them.
//!
//! A playbook string reaches Jinja after YAML has already decoded its
//! escapes, so ansible-core doubles every backslash inside the string
//! literals of `{{ ... }}` before Jinja decodes them again
//! (`Templar._escape_backslashes`): `regex_replace('(\d+)', 'n\1')` in a
//! task argument means a regex `(\d+)` and a replacement `n\1`, not the
//! control character `\1`. Template files are not treated so, in Ansible
//! as here. Only `{{ }}` is concerned, not `{% %}`, as in Ansible.

use std::borrow::Cow;

/// `source` with the backslashes inside `{{ }}` string literals doubled.
pub(crate) fn escape_in_expressions(source: &str) -> Cow<'_, str> {
    if !source.contains('\\') || !source.contains("{{") {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 8);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start + 2]);
        rest = &rest[start + 2..];
        let end = expression_end(rest);
        out.push_str(&escape_literals(&rest[..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `expr` (the inside of one `{{ }}`, or a bare expression) with the
/// backslashes of its string literals doubled.
pub(crate) fn escape_literals(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 4);
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '\'' && c != '"' {
            continue;
        }
        // A literal, as Jinja's lexer reads it: a backslash takes the next character.
        while let Some(d) = chars.next() {
            if d == '\\' {
                out.push_str("\\\\");
                if let Some(e) = chars.next() {
                    if e == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(e);
                    }
                }
                continue;
            }
            out.push(d);
            if d == c {
                break;
            }
        }
    }
    out
}

/// Where the expression starting at `rest` ends: at its `}}` outside string
/// literals (or the end of the text).
fn expression_end(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut i = 0;
    let mut quote = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return i,
            None => {}
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_backslashes_only_in_expression_literals() {
        assert_eq!(
            escape_in_expressions(r"a\b {{ x | regex_replace('(\d+)', 'n\1') }} c\d"),
            r"a\b {{ x | regex_replace('(\\d+)', 'n\\1') }} c\d"
        );
        assert_eq!(
            escape_in_expressions(r"{% if '\d' %}{% endif %}"),
            r"{% if '\d' %}{% endif %}"
        );
        assert_eq!(escape_literals(r#"x ~ "a\\b""#), r#"x ~ "a\\\\b""#);
        assert!(matches!(escape_in_expressions("{{ x }}"), Cow::Borrowed(_)));
    }
}
