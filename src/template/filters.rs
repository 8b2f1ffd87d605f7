//! Ansible's filters that minijinja does not have (or has with other semantics).
//!
//! minijinja's builtins stay; the ones replaced here are `bool` and `int`, whose Ansible and
//! Jinja2 behaviour (`"yes" | bool` is true, `"abc" | int` is 0) playbooks rely on. Regex
//! filters live in [`super::patterns`], `hash` in [`super::digest`].

use std::io;

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::error::MANDATORY_DETAIL;

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("format", super::percent_format::format);
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_json", from_json);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("quote", quote);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
    env.add_filter("bool", to_bool);
    env.add_filter("int", to_int);
    env.add_filter("flatten", flatten);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("type_debug", type_debug);
}

/// Fails on undefined input: strict mode lets undefined values reach filters, and most of
/// ours would otherwise turn them into `null` or `""` silently.
pub(crate) fn defined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        Err(Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

pub(crate) fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail.into())
}

/// The value as text, as Ansible's `to_text` would give it for the common cases.
pub(crate) fn text(value: &Value) -> Result<String, Error> {
    defined(value)?;
    Ok(match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    })
}

pub(crate) fn to_serde(value: &Value) -> Result<serde_json::Value, Error> {
    defined(value)?;
    serde_json::to_value(value).map_err(|e| invalid(format!("cannot convert value: {e}")))
}

/// Ansible's boolean conversion (`bool` filter, result flags): strings "yes", "on", "1",
/// "true" (any case) and the number 1 are true, everything else false.
pub(crate) fn ansible_bool(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            value.as_str().unwrap_or("").to_lowercase().as_str(),
            "yes" | "on" | "1" | "true"
        ),
        ValueKind::Number => value.as_i64() == Some(1) || value.to_string() == "1.0",
        _ => false,
    }
}

// ---------------------------------------------------------------- JSON / YAML

/// Python's `json.dumps` separators (`", "` and `": "`), so `to_json` output matches
/// Ansible's byte for byte on ASCII data.
struct PythonCompact;

impl serde_json::ser::Formatter for PythonCompact {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

fn json_text(value: &Value, indent: Option<usize>, sort: bool) -> Result<String, Error> {
    let mut data = to_serde(value)?;
    if sort {
        data = sort_keys(data);
    }
    let mut out = Vec::new();
    let written = match indent {
        Some(n) => {
            let pad = vec![b' '; n];
            let formatter = serde_json::ser::PrettyFormatter::with_indent(&pad);
            serde::Serialize::serialize(
                &data,
                &mut serde_json::Serializer::with_formatter(&mut out, formatter),
            )
        }
        None => serde::Serialize::serialize(
            &data,
            &mut serde_json::Serializer::with_formatter(&mut out, PythonCompact),
        ),
    };
    written.map_err(|e| invalid(format!("cannot write JSON: {e}")))?;
    String::from_utf8(out).map_err(|e| invalid(format!("cannot write JSON: {e}")))
}

/// `to_json(indent=None, sort_keys=False)`.
fn to_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?;
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    json_text(value, indent, sort)
}

/// `to_nice_json(indent=4, sort_keys=True)`, Ansible's defaults.
fn to_nice_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(4);
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    json_text(value, Some(indent), sort)
}

fn yaml_text(value: &Value, indent: usize, flow_leaves: bool) -> Result<String, Error> {
    Ok(super::pyyaml::dump(&to_serde(value)?, indent, flow_leaves))
}

/// `to_yaml(indent=2)`: PyYAML's dump, leaf collections in flow style (`[x, y]`).
fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(2);
    kwargs.assert_all_used()?;
    yaml_text(value, indent, true)
}

/// `to_nice_yaml(indent=4)`: PyYAML's dump in block style.
fn to_nice_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(4);
    kwargs.assert_all_used()?;
    yaml_text(value, indent, false)
}

fn from_json(value: &Value) -> Result<Value, Error> {
    let source = text(value)?;
    let data: serde_json::Value = serde_json::from_str(&source)
        .map_err(|e| invalid(format!("from_json: invalid JSON: {e}")))?;
    Ok(Value::from_serialize(&data))
}

fn from_yaml(value: &Value) -> Result<Value, Error> {
    let source = text(value)?;
    // PyYAML's safe_load, which from_yaml is, knows no `!unsafe`.
    if let Some(at) = crate::yaml_scalars::unsafe_tag(&source) {
        return Err(invalid(format!(
            "from_yaml: could not determine a constructor for the tag '!unsafe' (line {}, column {})",
            at.line, at.column
        )));
    }
    let typed = crate::yaml_scalars::as_ansible_reads(&source);
    let data: serde_json::Value = serde_saphyr::from_str(&typed)
        .map_err(|e| invalid(format!("from_yaml: invalid YAML: {e}")))?;
    Ok(Value::from_serialize(&data))
}

// ---------------------------------------------------------------- strings

fn b64encode(value: &Value) -> Result<String, Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(text(value)?))
}

/// Decodes to UTF-8 text, as Ansible does. Whitespace is ignored, as Python's decoder
/// ignores line breaks in wrapped base64.
fn b64decode(value: &Value) -> Result<String, Error> {
    let encoded: String = text(value)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| invalid(format!("b64decode: invalid base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| invalid("b64decode: decoded data is not UTF-8 text"))
}

/// Python's `os.path.basename`: everything after the last `/` ("" for "dir/").
fn basename(value: &Value) -> Result<String, Error> {
    let path = text(value)?;
    Ok(path.rsplit('/').next().unwrap_or("").to_string())
}

/// Python's `os.path.dirname`: up to the last `/`, trailing slashes dropped unless the
/// result is all slashes (the root).
fn dirname(value: &Value) -> Result<String, Error> {
    let path = text(value)?;
    let head = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "",
    };
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        Ok(head.trim_end_matches('/').to_string())
    } else {
        Ok(head.to_string())
    }
}

/// Python's `shlex.quote`, which Ansible's `quote` uses: safe words stay bare, anything
/// else is single-quoted with `'` written as `'"'"'`.
fn quote(value: &Value) -> Result<String, Error> {
    let s = if value.is_none() {
        String::new()
    } else {
        text(value)?
    };
    if s.is_empty() {
        return Ok("''".to_string());
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        return Ok(s);
    }
    Ok(format!("'{}'", s.replace('\'', "'\"'\"'")))
}

fn type_debug(value: &Value) -> Result<&'static str, Error> {
    defined(value)?;
    Ok(match value.kind() {
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    })
}

// ---------------------------------------------------------------- conversions

/// `ternary(true_val, false_val, none_val=None)`.
fn ternary(
    value: &Value,
    true_val: Value,
    false_val: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    defined(value)?;
    Ok(match none_val {
        Some(none_val) if value.is_none() => none_val,
        _ if value.is_true() => true_val,
        _ => false_val,
    })
}

/// `mandatory(msg=None)`: the value, or an error when it is undefined. The translation in
/// [`super::error`] names the variable.
fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if !value.is_undefined() {
        return Ok(value.clone());
    }
    Err(match msg {
        Some(msg) => invalid(msg),
        None => Error::new(ErrorKind::UndefinedError, MANDATORY_DETAIL),
    })
}

/// Ansible's `bool`: booleans and none pass through, "yes"/"on"/"1"/"true" and 1 are true.
fn to_bool(value: &Value) -> Result<Value, Error> {
    defined(value)?;
    if value.is_none() {
        return Ok(Value::from(()));
    }
    Ok(Value::from(ansible_bool(value)))
}

/// Jinja2's `int(default=0, base=10)`: integers from strings in `base`, else via float,
/// else `default` — where minijinja's `int` would fail on "abc".
fn to_int(value: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    defined(value)?;
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = kwargs.get::<Option<u32>>("base")?.unwrap_or(10);
    kwargs.assert_all_used()?;
    if !(2..=36).contains(&base) {
        return Err(invalid(format!(
            "int: base must be between 2 and 36, got {base}"
        )));
    }
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(i64::from(value.is_true())),
        ValueKind::Number if value.is_integer() => value.clone(),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(f) if f.is_finite() => Value::from(f.trunc() as i64),
            _ => default,
        },
        ValueKind::String => {
            let s = value.as_str().unwrap_or("");
            parse_int(s, base)
                .map(Value::from)
                .or_else(|| {
                    let f: f64 = s.trim().parse().ok()?;
                    f.is_finite().then(|| Value::from(f.trunc() as i64))
                })
                .unwrap_or(default)
        }
        _ => default,
    })
}

/// Python's `int(s, base)`: surrounding whitespace, a sign, `_` separators and the base's
/// prefix (`0x` for 16...) are accepted.
fn parse_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let prefix = match base {
        16 => ["0x", "0X"],
        8 => ["0o", "0O"],
        2 => ["0b", "0B"],
        _ => ["", ""],
    };
    let digits = prefix
        .iter()
        .filter(|p| !p.is_empty())
        .find_map(|p| digits.strip_prefix(p))
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let n = i128::from_str_radix(&digits.replace('_', ""), base).ok()?;
    Some(if negative { -n } else { n })
}

// ---------------------------------------------------------------- dictionaries

fn map_of(
    value: &Value,
    filter: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match to_serde(value)? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(invalid(format!(
            "{filter} expects a dictionary, got {}",
            value.kind()
        ))),
    }
}

/// How `combine` merges two lists found under the same key (Ansible's `list_merge`).
#[derive(Clone, Copy)]
enum ListMerge {
    Replace,
    Keep,
    Append,
    Prepend,
    AppendRp,
    PrependRp,
}

/// Ansible's `merge_hash`.
fn merge(
    into: &mut serde_json::Map<String, serde_json::Value>,
    from: serde_json::Map<String, serde_json::Value>,
    recursive: bool,
    lists: ListMerge,
) {
    use serde_json::Value as J;
    for (key, new) in from {
        let Some(old) = into.get_mut(&key) else {
            into.insert(key, new);
            continue;
        };
        match (old, new) {
            (J::Object(old), J::Object(new)) if recursive => merge(old, new, recursive, lists),
            (J::Array(old), J::Array(new)) => {
                let kept = |old: &[J], new: &[J]| -> Vec<J> {
                    old.iter().filter(|x| !new.contains(x)).cloned().collect()
                };
                *old = match lists {
                    ListMerge::Replace => new,
                    ListMerge::Keep => continue,
                    ListMerge::Append => old.iter().cloned().chain(new).collect(),
                    ListMerge::Prepend => new.into_iter().chain(old.iter().cloned()).collect(),
                    ListMerge::AppendRp => kept(old, &new).into_iter().chain(new).collect(),
                    ListMerge::PrependRp => {
                        let rest = kept(old, &new);
                        new.into_iter().chain(rest).collect()
                    }
                };
            }
            (old, new) => *old = new,
        }
    }
}

/// `combine(dict, ..., recursive=False, list_merge='replace')`; lists of dictionaries are
/// flattened, as Ansible does.
fn combine(value: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let lists = match kwargs
        .get::<Option<&str>>("list_merge")?
        .unwrap_or("replace")
    {
        "replace" => ListMerge::Replace,
        "keep" => ListMerge::Keep,
        "append" => ListMerge::Append,
        "prepend" => ListMerge::Prepend,
        "append_rp" => ListMerge::AppendRp,
        "prepend_rp" => ListMerge::PrependRp,
        other => return Err(invalid(format!("combine: unknown list_merge `{other}`"))),
    };
    kwargs.assert_all_used()?;
    let mut dicts = Vec::new();
    for item in std::iter::once(value).chain(others.iter()) {
        if item.kind() == ValueKind::Seq {
            for inner in item.try_iter()? {
                dicts.push(map_of(&inner, "combine")?);
            }
        } else {
            dicts.push(map_of(item, "combine")?);
        }
    }
    let mut result = serde_json::Map::new();
    for dict in dicts {
        merge(&mut result, dict, recursive, lists);
    }
    Ok(Value::from_serialize(&result))
}

/// `dict2items(key_name='key', value_name='value')`.
fn dict2items(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs.get::<Option<&str>>("key_name")?.unwrap_or("key");
    let value_name = kwargs.get::<Option<&str>>("value_name")?.unwrap_or("value");
    kwargs.assert_all_used()?;
    defined(value)?;
    if value.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "dict2items expects a dictionary, got {}",
            value.kind()
        )));
    }
    let mut items = Vec::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        items.push(Value::from_iter([(key_name, key), (value_name, item)]));
    }
    Ok(Value::from(items))
}

/// `items2dict(key_name='key', value_name='value')`.
fn items2dict(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs.get::<Option<&str>>("key_name")?.unwrap_or("key");
    let value_name = kwargs.get::<Option<&str>>("value_name")?.unwrap_or("value");
    kwargs.assert_all_used()?;
    defined(value)?;
    if !matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Err(invalid(format!(
            "items2dict expects a list, got {}",
            value.kind()
        )));
    }
    let mut pairs = Vec::new();
    for item in value.try_iter()? {
        let key = item.get_attr(key_name)?;
        let val = item.get_attr(value_name)?;
        if key.is_undefined() || val.is_undefined() {
            return Err(invalid(format!(
                "items2dict: every item needs `{key_name}` and `{value_name}` keys, got {item}"
            )));
        }
        pairs.push((key, val));
    }
    Ok(Value::from_iter(pairs))
}

// ---------------------------------------------------------------- lists

fn list_of(value: &Value, filter: &str) -> Result<Vec<Value>, Error> {
    defined(value)?;
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable => Ok(value.try_iter()?.collect()),
        kind => Err(invalid(format!("{filter} expects a list, got {kind}"))),
    }
}

fn unique(items: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `flatten(levels=None, skip_nulls=True)`.
fn flatten(value: &Value, levels: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match levels {
        Some(n) => Some(n),
        None => kwargs.get::<Option<usize>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    fn walk(
        items: Vec<Value>,
        depth: Option<usize>,
        skip_nulls: bool,
        out: &mut Vec<Value>,
    ) -> Result<(), Error> {
        for item in items {
            if skip_nulls && (item.is_none() || matches!(item.as_str(), Some("None" | "null"))) {
                continue;
            }
            if item.kind() == ValueKind::Seq && depth != Some(0) {
                let inner = item.try_iter()?.collect();
                walk(inner, depth.map(|d| d - 1), skip_nulls, out)?;
            } else {
                out.push(item);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(list_of(value, "flatten")?, levels, skip_nulls, &mut out)?;
    Ok(Value::from(out))
}

fn union(a: &Value, b: &Value) -> Result<Value, Error> {
    let all = list_of(a, "union")?.into_iter().chain(list_of(b, "union")?);
    Ok(Value::from(unique(all)))
}

fn intersect(a: &Value, b: &Value) -> Result<Value, Error> {
    let other = list_of(b, "intersect")?;
    let both = list_of(a, "intersect")?
        .into_iter()
        .filter(|x| other.contains(x));
    Ok(Value::from(unique(both)))
}

fn difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let other = list_of(b, "difference")?;
    let only = list_of(a, "difference")?
        .into_iter()
        .filter(|x| !other.contains(x));
    Ok(Value::from(unique(only)))
}

fn symmetric_difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let left = list_of(a, "symmetric_difference")?;
    let right = list_of(b, "symmetric_difference")?;
    let only_left = left.iter().filter(|x| !right.contains(x));
    let only_right = right.iter().filter(|x| !left.contains(x));
    Ok(Value::from(unique(only_left.chain(only_right).cloned())))
}
