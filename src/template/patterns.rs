//! Ansible's regex filters and tests (`regex_replace`, `regex_search`, `regex_findall`,
//! `regex_escape`, `is match`, `is search`, `is regex`).
//!
//! Playbooks are written for Python's `re`: patterns mostly carry over to the `regex` crate,
//! but replacement strings use Python's `\1` / `\g<name>` back-references, which are
//! translated here.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, Value};
use regex::{Regex, RegexBuilder};

use super::filters::{invalid, text};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
    env.add_test("match", is_match);
    env.add_test("search", is_search);
    env.add_test("regex", is_regex);
}

/// The `ignorecase` / `multiline` keyword arguments every Ansible regex filter takes.
fn flags(kwargs: &Kwargs) -> Result<(bool, bool), Error> {
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    Ok((ignorecase, multiline))
}

fn compile(pattern: &str, (ignorecase, multiline): (bool, bool)) -> Result<Regex, Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| invalid(format!("invalid regular expression {pattern:?}: {e}")))
}

/// Translates a Python `re.sub` replacement into the `regex` crate's syntax: `\1` and
/// `\g<1>` / `\g<name>` become `${1}` / `${name}`, `$` is escaped, and Python's string
/// escapes (`\n`, `\t`, `\\`...) are applied as `re.sub` applies them.
pub(crate) fn python_replacement(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len() + 8);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d @ '1'..='9') => {
                    let mut group = d.to_string();
                    if let Some(&e) = chars.peek().filter(|e| e.is_ascii_digit()) {
                        group.push(e);
                        chars.next();
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                Some('g') if chars.peek() == Some(&'<') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('f') => out.push('\x0c'),
                Some('v') => out.push('\x0b'),
                Some('a') => out.push('\x07'),
                Some('b') => out.push('\x08'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    if other == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(other);
                    }
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// `regex_replace(pattern, replacement='', ignorecase=False, multiline=False, count=0)`.
fn regex_replace(
    value: &Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let flags = flags(&kwargs)?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let subject = text(value)?;
    let re = compile(pattern.as_deref().unwrap_or(""), flags)?;
    let replacement = python_replacement(replacement.as_deref().unwrap_or(""));
    Ok(re
        .replacen(&subject, count, replacement.as_str())
        .into_owned())
}

/// `regex_search(pattern, '\\1', '\\g<name>', ..., ignorecase, multiline)`: the match (or
/// the listed groups, as a list), none when nothing matches.
fn regex_search(
    value: &Value,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let flags = flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let subject = text(value)?;
    let re = compile(&pattern, flags)?;
    let Some(caps) = re.captures(&subject) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(&caps[0]));
    }
    let mut out = Vec::new();
    for group in groups.iter() {
        let found = if let Some(name) = group.strip_prefix("\\g<").and_then(|g| g.strip_suffix('>'))
        {
            match name.parse::<usize>() {
                Ok(n) => caps.get(n),
                Err(_) => caps.name(name),
            }
        } else if let Some(n) = group
            .strip_prefix('\\')
            .and_then(|g| g.parse::<usize>().ok())
        {
            caps.get(n)
        } else {
            return Err(invalid(format!(
                "regex_search: unknown argument {group:?} (expected '\\\\N' or '\\\\g<name>')"
            )));
        };
        out.push(found.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(out))
}

/// `regex_findall(pattern, ignorecase, multiline)`, with Python's `findall` shapes: the
/// matches, or the single group's texts, or one list of groups per match.
fn regex_findall(value: &Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let flags = flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let subject = text(value)?;
    let re = compile(&pattern, flags)?;
    let groups = re.captures_len() - 1;
    let group_text = |m: Option<regex::Match>| Value::from(m.map_or("", |m| m.as_str()));
    let found: Vec<Value> = re
        .captures_iter(&subject)
        .map(|caps| match groups {
            0 => group_text(caps.get(0)),
            1 => group_text(caps.get(1)),
            n => Value::from((1..=n).map(|i| group_text(caps.get(i))).collect::<Vec<_>>()),
        })
        .collect();
    Ok(Value::from(found))
}

fn regex_escape(value: &Value) -> Result<String, Error> {
    Ok(regex::escape(&text(value)?))
}

/// `is match(pattern)`: anchored at the start only, like Python's `re.match`.
fn is_match(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let flags = flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let re = compile(&format!(r"\A(?:{pattern})"), flags)?;
    Ok(re.is_match(&text(value)?))
}

/// `is search(pattern)`: anywhere in the value.
fn is_search(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let flags = flags(&kwargs)?;
    kwargs.assert_all_used()?;
    Ok(compile(&pattern, flags)?.is_match(&text(value)?))
}

/// `is regex(pattern, match_type='search')`.
fn is_regex(value: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let flags = flags(&kwargs)?;
    let match_type = kwargs.get::<Option<String>>("match_type")?;
    kwargs.assert_all_used()?;
    let pattern = match match_type.as_deref().unwrap_or("search") {
        "search" => pattern,
        "match" => format!(r"\A(?:{pattern})"),
        "fullmatch" => format!(r"\A(?:{pattern})\z"),
        other => return Err(invalid(format!("regex test: unknown match_type `{other}`"))),
    };
    Ok(compile(&pattern, flags)?.is_match(&text(value)?))
}

#[cfg(test)]
mod tests {
    use super::python_replacement;

    #[test]
    fn python_backrefs_become_regex_crate_refs() {
        assert_eq!(python_replacement(r"a\1b"), "a${1}b");
        assert_eq!(python_replacement(r"\g<name>-\g<2>"), "${name}-${2}");
        assert_eq!(python_replacement(r"\12"), "${12}");
        assert_eq!(python_replacement("cost $5"), "cost $$5");
        assert_eq!(python_replacement(r"x\ny\\z"), "x\ny\\z");
    }
}
