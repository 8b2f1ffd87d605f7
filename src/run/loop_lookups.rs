//! The `with_<lookup>` loops: what each turns its rendered terms into, as
//! ansible-core's lookup plugins of the same names do (`items` flattens one
//! level, `dict` gives `{key, value}` pairs, `together` transposes padding
//! with None, `nested` is the product, `sequence` counts, `indexed_items`
//! pairs an index with each item, `fileglob` matches files on the control
//! machine). `loop:` takes its list as it is.

use crate::playbook::LoopLookup;
use crate::template::Templates;
use crate::vars::Value;

/// The items of a loop whose terms rendered to `terms`.
pub fn expand(
    lookup: LoopLookup,
    terms: Value,
    templates: &Templates,
    origin: &str,
) -> Result<Vec<Value>, String> {
    let name = lookup.keyword();
    match lookup {
        LoopLookup::Loop => match terms {
            Value::Array(items) => Ok(items),
            other => Err(format!("`loop` must be a list, got {other}")),
        },
        LoopLookup::List => Ok(listify(terms)),
        LoopLookup::Items => Ok(flatten_once(listify(terms))),
        LoopLookup::IndexedItems => Ok(flatten_once(listify(terms))
            .into_iter()
            .enumerate()
            .map(|(i, item)| Value::Array(vec![i.into(), item]))
            .collect()),
        LoopLookup::Dict => match terms {
            Value::Object(map) => Ok(map
                .into_iter()
                .map(|(key, value)| serde_json::json!({"key": key, "value": value}))
                .collect()),
            other => Err(format!("`{name}` expects a dict, got {other}")),
        },
        LoopLookup::Together => {
            let lists = lists_of(terms, name)?;
            let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
            Ok((0..longest)
                .map(|i| {
                    Value::Array(
                        lists
                            .iter()
                            .map(|l| l.get(i).cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                })
                .collect())
        }
        LoopLookup::Nested => {
            let lists = lists_of(terms, name)?;
            let mut rows: Vec<Vec<Value>> = vec![vec![]];
            for list in lists {
                rows = rows
                    .into_iter()
                    .flat_map(|row| {
                        list.iter().map(move |x| {
                            let mut next = row.clone();
                            next.push(x.clone());
                            next
                        })
                    })
                    .collect();
            }
            Ok(rows.into_iter().map(Value::Array).collect())
        }
        LoopLookup::Sequence => {
            let mut items = Vec::new();
            for term in listify(terms) {
                let text = match term {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                items.extend(sequence(&text)?.into_iter().map(Value::String));
            }
            Ok(items)
        }
        LoopLookup::Fileglob => {
            let mut items = Vec::new();
            for term in listify(terms) {
                let vars = serde_json::json!({ "convoy_fileglob_term": term });
                match templates
                    .eval("query('fileglob', convoy_fileglob_term)", &vars, origin)
                    .map_err(|e| e.to_string())?
                {
                    Value::Array(found) => items.extend(found),
                    other => items.push(other),
                }
            }
            Ok(items)
        }
    }
}

/// A lookup's terms as a list: a single value is a list of one.
fn listify(terms: Value) -> Vec<Value> {
    match terms {
        Value::Array(items) => items,
        Value::Null => vec![],
        other => vec![other],
    }
}

/// `items`' flattening: lists among the terms give their elements (one
/// level only, as the `items` lookup does).
fn flatten_once(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .flat_map(|item| match item {
            Value::Array(inner) => inner,
            other => vec![other],
        })
        .collect()
}

fn lists_of(terms: Value, name: &str) -> Result<Vec<Vec<Value>>, String> {
    match terms {
        Value::Array(lists) if !lists.is_empty() => Ok(lists.into_iter().map(listify).collect()),
        other => Err(format!("`{name}` expects a list of lists, got {other}")),
    }
}

/// `with_sequence`'s term: `start=1 end=5 stride=1 format=x%02d`,
/// `count=3`, or the shortcut `[start-]end[/stride][:format]`; numbers in
/// decimal, 0x hex or 0 octal, as ansible-core's `sequence` lookup reads them.
fn sequence(term: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| format!("`with_sequence: {term}`: {why}");
    let (mut start, mut end, mut stride, mut count) = (1i64, None, 1i64, None);
    let mut format = "%d".to_owned();
    let number = |s: &str| -> Result<i64, String> {
        let s = s.trim();
        let parsed = if let Some(hex) = s.strip_prefix("0x") {
            i64::from_str_radix(hex, 16)
        } else if s.len() > 1 && s.starts_with('0') {
            i64::from_str_radix(&s[1..], 8)
        } else {
            s.parse()
        };
        parsed.map_err(|_| bad(&format!("can't parse {s:?} as an integer")))
    };
    let mut words = term.split_whitespace().peekable();
    if let Some(first) = words.peek()
        && !first.contains('=')
    {
        let shortcut = words.next().unwrap_or_default();
        let (rest, fmt) = match shortcut.split_once(':') {
            Some((r, f)) => (r, Some(f)),
            None => (shortcut, None),
        };
        let (range, step) = match rest.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (rest, None),
        };
        match range.split_once('-') {
            Some((a, b)) => {
                start = number(a)?;
                end = Some(number(b)?);
            }
            None => end = Some(number(range)?),
        }
        if let Some(s) = step {
            stride = number(s)?;
        }
        if let Some(f) = fmt {
            format = f.to_owned();
        }
    }
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| bad(&format!("{word:?} is not key=value")))?;
        match key {
            "start" => start = number(value)?,
            "end" => end = Some(number(value)?),
            "stride" => stride = number(value)?,
            "count" => count = Some(number(value)?),
            "format" => format = value.to_owned(),
            other => return Err(bad(&format!("unrecognized argument {other:?}"))),
        }
    }
    let end = match (count, end) {
        (Some(_), Some(_)) => return Err(bad("can't specify both count and end")),
        (Some(0), None) => return Ok(vec![]),
        (Some(c), None) => start + (c - 1) * stride,
        (None, Some(e)) => e,
        (None, None) => return Err(bad("must specify count or end")),
    };
    if stride == 0 {
        return Ok(vec![]);
    }
    if (stride > 0 && end < start) || (stride < 0 && end > start) {
        return Err(bad("to count backwards make stride negative"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(printf_int(&format, i).map_err(|e| bad(&e))?);
        i += stride;
    }
    Ok(out)
}

/// Python's `format % i` for one integer directive (`%d`, `%5d`, `%02x`,
/// `%o`, `%X`, `%s`), `%%` kept as `%`.
fn printf_int(format: &str, i: i64) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut used = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let conv = chars.next().ok_or("a format ends in %")?;
        if used {
            return Err(format!("format {format:?} takes more than one value"));
        }
        used = true;
        let body = match conv {
            'd' | 'i' | 's' => i.to_string(),
            'x' => format!("{i:x}"),
            'X' => format!("{i:X}"),
            'o' => format!("{i:o}"),
            other => return Err(format!("format directive %{other} is not supported")),
        };
        let left = spec.starts_with('-');
        let zero = spec.trim_start_matches('-').starts_with('0') && !left;
        let width: usize = spec.trim_start_matches('-').parse().unwrap_or(0);
        let padded = if body.len() >= width {
            body
        } else if left {
            format!("{body:<width$}")
        } else if zero {
            let (sign, digits) = body
                .strip_prefix('-')
                .map_or(("", body.as_str()), |d| ("-", d));
            format!("{sign}{digits:0>w$}", w = width - sign.len())
        } else {
            format!("{body:>width$}")
        };
        out.push_str(&padded);
    }
    if !used {
        return Err(format!("format {format:?} has no % directive"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates() -> Templates {
        Templates::new(std::path::Path::new("/nonexistent-convoy-test-dir"))
    }

    fn items(lookup: LoopLookup, terms: Value) -> Vec<Value> {
        expand(lookup, terms, &templates(), "test").unwrap()
    }

    #[test]
    fn with_items_flattens_one_level_and_with_list_does_not() {
        let terms = json!([[1, 2], 3, [[4]]]);
        assert_eq!(
            items(LoopLookup::Items, terms.clone()),
            vec![json!(1), json!(2), json!(3), json!([4])]
        );
        assert_eq!(
            items(LoopLookup::List, terms),
            vec![json!([1, 2]), json!(3), json!([[4]])]
        );
        assert_eq!(items(LoopLookup::Items, json!("one")), vec![json!("one")]);
    }

    #[test]
    fn dict_together_nested_and_indexed_items_shape_as_ansible() {
        assert_eq!(
            items(LoopLookup::Dict, json!({"a": 1, "b": 2})),
            vec![
                json!({"key": "a", "value": 1}),
                json!({"key": "b", "value": 2})
            ]
        );
        assert_eq!(
            items(LoopLookup::Together, json!([[1, 2, 3], ["a", "b"]])),
            vec![json!([1, "a"]), json!([2, "b"]), json!([3, null])]
        );
        assert_eq!(
            items(LoopLookup::Nested, json!([["x", "y"], [1, 2]])),
            vec![
                json!(["x", 1]),
                json!(["x", 2]),
                json!(["y", 1]),
                json!(["y", 2])
            ]
        );
        assert_eq!(
            items(LoopLookup::IndexedItems, json!(["a", "b"])),
            vec![json!([0, "a"]), json!([1, "b"])]
        );
    }

    #[test]
    fn sequences_count_as_the_sequence_lookup_does() {
        let seq = |t: &str| sequence(t).unwrap();
        assert_eq!(seq("start=1 end=3"), ["1", "2", "3"]);
        assert_eq!(
            seq("start=0 end=10 stride=5 format=web%02d"),
            ["web00", "web05", "web10"]
        );
        assert_eq!(seq("count=3"), ["1", "2", "3"]);
        assert_eq!(seq("4"), ["1", "2", "3", "4"]);
        assert_eq!(seq("2-10/4:h%x"), ["h2", "h6", "ha"]);
        assert_eq!(seq("start=5 end=1 stride=-2"), ["5", "3", "1"]);
        assert_eq!(seq("start=0x0a end=0x0c"), ["10", "11", "12"]);
        assert!(sequence("start=5 end=1").unwrap_err().contains("backwards"));
        assert!(sequence("start=1").unwrap_err().contains("count or end"));
        assert!(sequence("end=2 step=1").unwrap_err().contains("step"));
    }
}
