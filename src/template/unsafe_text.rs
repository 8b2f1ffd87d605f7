//! Text tagged `!unsafe`: a value that is never templated, wherever it flows.
//!
//! ansible-core wraps such a string in `AnsibleUnsafeText`; its templar
//! returns it as it is, and anything rendered from it (`"{{ raw }}/x"`, a
//! `set_fact`) is unsafe in turn, so that `{{` in it is never read as a
//! template later either. convoy's values are JSON, so the mark is the
//! shape ansible-core's own JSON encoder gives such a string: a map of one
//! key, `{"__ansible_unsafe": "text"}`. The YAML reader writes it
//! (`crate::yaml_scalars`); a template reading the variable gets the plain
//! text ([`super::lazy`]) and notes that it read unsafe text ([`tracking`]),
//! which marks what the render made of it; module arguments are given the
//! plain text ([`plain`]), except to `set_fact`, whose values are variables
//! and stay marked.

use std::cell::Cell;

use crate::vars::{Value, VarMap};

/// The key of the mark, as ansible-core's JSON encoder spells it.
pub const KEY: &str = "__ansible_unsafe";

thread_local! {
    /// Rendering is synchronous: whether the render under way on this
    /// thread has read unsafe text.
    static READ: Cell<bool> = const { Cell::new(false) };
}

/// The text of a marked value.
pub fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get(KEY)?.as_str(),
        _ => None,
    }
}

/// `text` marked unsafe.
pub fn marked(text: String) -> Value {
    let mut map = VarMap::with_capacity(1);
    map.insert(KEY.to_owned(), Value::String(text));
    Value::Object(map)
}

/// `value` with every string in it marked (ansible-core's `wrap_var`:
/// numbers, booleans and map keys stay as they are).
pub fn mark_strings(value: Value) -> Value {
    match value {
        Value::String(s) => marked(s),
        Value::Array(items) => Value::Array(items.into_iter().map(mark_strings).collect()),
        Value::Object(map) => {
            let value = Value::Object(map);
            if text(&value).is_some() {
                return value;
            }
            let Value::Object(map) = value else {
                unreachable!("a map")
            };
            Value::Object(map.into_iter().map(|(k, v)| (k, mark_strings(v))).collect())
        }
        other => other,
    }
}

/// `value` with every mark replaced by its text: what a module is given.
pub fn plain(value: Value) -> Value {
    if let Some(s) = text(&value) {
        return Value::String(s.to_owned());
    }
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(plain).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, plain(v))).collect()),
        other => other,
    }
}

/// Whether `value` holds a mark anywhere (most values hold none: they are
/// then used as they are, without a copy).
pub fn holds_mark(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(holds_mark),
        Value::Object(map) => text(value).is_some() || map.values().any(holds_mark),
        _ => false,
    }
}

/// A template read unsafe text (called where a variable's value is looked up).
pub fn note_read() {
    READ.with(|r| r.set(true));
}

/// Runs one render, and says whether it read unsafe text. A render inside
/// another (a variable whose value is a template) counts for both.
pub fn tracking<T>(render: impl FnOnce() -> T) -> (T, bool) {
    let before = READ.with(|r| r.replace(false));
    let result = render();
    let read = READ.with(|r| r.replace(before));
    READ.with(|r| r.set(before || read));
    (result, read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marks_strings_only_and_plain_undoes_it() {
        let value = json!({"a": ["{{ x }}", 1, true], "b": "y"});
        let marked = mark_strings(value.clone());
        assert_eq!(
            marked,
            json!({"a": [{KEY: "{{ x }}"}, 1, true], "b": {KEY: "y"}})
        );
        assert!(holds_mark(&marked));
        assert!(!holds_mark(&value));
        assert_eq!(plain(marked), value);
    }

    #[test]
    fn a_mark_is_not_marked_twice() {
        let once = marked("t".into());
        assert_eq!(mark_strings(once.clone()), once);
    }

    #[test]
    fn tracking_reports_reads_inside_and_keeps_the_outer_render_told() {
        let (_, outer) = tracking(|| {
            let (_, inner) = tracking(note_read);
            assert!(inner);
        });
        assert!(outer);
        let (_, none) = tracking(|| ());
        assert!(!none);
    }
}
