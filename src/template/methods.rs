//! Python methods that Ansible templates call on values: `d.items()`, `d.get('k', 1)`,
//! `s.startswith('x')`, `s.split(',')`, ...
//!
//! Jinja2 exposes every Python method; minijinja exposes none. Playbooks lean on a small,
//! stable set of them (`{% for k, v in d.items() %}` above all), implemented here through
//! minijinja's unknown-method hook.

use minijinja::value::{ValueKind, from_args};
use minijinja::{Error, ErrorKind, State, Value};

/// The hook given to `Environment::set_unknown_method_callback`.
pub(crate) fn call(
    _state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::Map => map_method(value, method, args),
        ValueKind::String => string_method(value.as_str().unwrap_or(""), method, args),
        ValueKind::Seq => list_method(value, method, args),
        _ => Err(no_such_method(value, method)),
    }
}

fn no_such_method(value: &Value, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{} has no method named {method}", value.kind()),
    )
}

fn map_method(map: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "items" => {
            let () = from_args(args)?;
            let mut pairs = Vec::new();
            for key in map.try_iter()? {
                let item = map.get_item(&key)?;
                pairs.push(Value::from(vec![key, item]));
            }
            Ok(Value::from(pairs))
        }
        "keys" => {
            let () = from_args(args)?;
            Ok(Value::from(map.try_iter()?.collect::<Vec<_>>()))
        }
        "values" => {
            let () = from_args(args)?;
            let mut values = Vec::new();
            for key in map.try_iter()? {
                values.push(map.get_item(&key)?);
            }
            Ok(Value::from(values))
        }
        "get" => {
            let (key, default): (Value, Option<Value>) = from_args(args)?;
            let found = map.get_item(&key)?;
            Ok(if found.is_undefined() {
                default.unwrap_or(Value::from(()))
            } else {
                found
            })
        }
        _ => Err(no_such_method(map, method)),
    }
}

fn list_method(list: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "index" => {
            let (needle,): (Value,) = from_args(args)?;
            list.try_iter()?
                .position(|item| item == needle)
                .map(Value::from)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("{needle} is not in list"),
                    )
                })
        }
        "count" => {
            let (needle,): (Value,) = from_args(args)?;
            Ok(Value::from(
                list.try_iter()?.filter(|item| *item == needle).count(),
            ))
        }
        _ => Err(no_such_method(list, method)),
    }
}

/// The prefixes for `startswith`/`endswith`: one string or a tuple (list) of them.
fn affixes(value: &Value) -> Result<Vec<String>, Error> {
    if let Some(s) = value.as_str() {
        return Ok(vec![s.to_string()]);
    }
    let mut out = Vec::new();
    for item in value.try_iter()? {
        out.push(item.as_str().map(str::to_string).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "startswith/endswith expect strings",
            )
        })?);
    }
    Ok(out)
}

fn strip_set<'a>(s: &'a str, chars: Option<&str>, left: bool, right: bool) -> &'a str {
    let strip = |c: char| match chars {
        Some(set) => set.contains(c),
        None => c.is_whitespace(),
    };
    let s = if left { s.trim_start_matches(strip) } else { s };
    if right { s.trim_end_matches(strip) } else { s }
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
fn split(s: &str, sep: Option<&str>, maxsplit: i64) -> Result<Vec<Value>, Error> {
    let limit = usize::try_from(maxsplit).ok();
    let parts: Vec<&str> = match sep {
        Some("") => return Err(Error::new(ErrorKind::InvalidOperation, "empty separator")),
        Some(sep) => match limit {
            Some(n) => s.splitn(n + 1, sep).collect(),
            None => s.split(sep).collect(),
        },
        // No separator: runs of whitespace, ignoring leading/trailing whitespace.
        None => {
            let mut parts = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if limit.is_some_and(|n| parts.len() == n) {
                    parts.push(rest.trim_end());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                parts.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            parts
        }
    };
    Ok(parts.into_iter().map(Value::from).collect())
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let text = |v: String| Ok(Value::from(v));
    match method {
        "upper" => {
            let () = from_args(args)?;
            text(s.to_uppercase())
        }
        "lower" => {
            let () = from_args(args)?;
            text(s.to_lowercase())
        }
        "strip" | "lstrip" | "rstrip" => {
            let (chars,): (Option<&str>,) = from_args(args)?;
            let left = method != "rstrip";
            let right = method != "lstrip";
            text(strip_set(s, chars, left, right).to_string())
        }
        "split" => {
            let (sep, maxsplit): (Option<&str>, Option<i64>) = from_args(args)?;
            Ok(Value::from(split(s, sep, maxsplit.unwrap_or(-1))?))
        }
        "splitlines" => {
            let () = from_args(args)?;
            Ok(Value::from(s.lines().map(Value::from).collect::<Vec<_>>()))
        }
        "startswith" | "endswith" => {
            let (affix,): (Value,) = from_args(args)?;
            let found = affixes(&affix)?.iter().any(|a| {
                if method == "startswith" {
                    s.starts_with(a.as_str())
                } else {
                    s.ends_with(a.as_str())
                }
            });
            Ok(Value::from(found))
        }
        "replace" => {
            let (old, new, count): (&str, &str, Option<i64>) = from_args(args)?;
            match usize::try_from(count.unwrap_or(-1)) {
                Ok(n) => text(s.replacen(old, new, n)),
                Err(_) => text(s.replace(old, new)),
            }
        }
        "find" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(match s.find(needle) {
                Some(byte) => s[..byte].chars().count() as i64,
                None => -1,
            }))
        }
        "count" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(s.matches(needle).count()))
        }
        "join" => {
            let (items,): (Value,) = from_args(args)?;
            let parts: Vec<String> = items
                .try_iter()?
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_string)
                })
                .collect();
            text(parts.join(s))
        }
        "capitalize" => {
            let () = from_args(args)?;
            let mut chars = s.chars();
            text(match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.as_str().to_lowercase().chars())
                    .collect(),
                None => String::new(),
            })
        }
        "isdigit" | "isalpha" | "isalnum" | "isspace" => {
            let () = from_args(args)?;
            let test: fn(char) -> bool = match method {
                "isdigit" => |c| c.is_numeric(),
                "isalpha" => char::is_alphabetic,
                "isalnum" => char::is_alphanumeric,
                _ => char::is_whitespace,
            };
            Ok(Value::from(!s.is_empty() && s.chars().all(test)))
        }
        _ => Err(no_such_method(&Value::from(s), method)),
    }
}
