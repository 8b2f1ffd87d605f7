//! Ansible's native types and truthiness: which strings need the engine at all, which are a
//! single `{{ expr }}` whose value is kept as-is, and how a result reads as a condition.

use serde_json::Value;

/// Whether `s` contains any Jinja markup; strings without it skip the engine entirely.
pub(crate) fn has_markers(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression inside a string that is exactly one `{{ expr }}` (surrounding whitespace
/// and whitespace-control dashes allowed), or none.
pub(crate) fn single_expression(s: &str) -> Option<&str> {
    // Jinja drops one trailing newline of the source, so `"{{ x }}\n"` is
    // still one expression when `x` is a variable name (Ansible gives the
    // number 1 for `"{{ one }}\n"` and re-adds the newline only to a
    // string: see `trailing_newline`).
    // Other whitespace around it is text (`" {{ x }}"` is `" 1"`), unless
    // `{{-`/`-}}` strip it.
    let newline = s.ends_with('\n');
    let s = s.strip_suffix('\n').unwrap_or(s);
    let trimmed = s.trim();
    if (trimmed.len() != s.trim_start().len() && !trimmed.ends_with("-}}"))
        || (trimmed.len() != s.trim_end().len() && !trimmed.starts_with("{{-"))
    {
        return None;
    }
    let inner = trimmed.strip_prefix("{{")?.strip_suffix("}}")?;
    if has_markers(inner) || inner.contains("}}") {
        return None;
    }
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    // ansible-core keeps a value across the newline only for a bare
    // variable name (its SINGLE_VAR shortcut, whose `$` matches before a
    // final newline); `"{{ d.uid }}\n"` goes through the renderer and is
    // the text "1001\n".
    if newline && !is_identifier(inner.trim()) {
        return None;
    }
    (!inner.trim().is_empty()).then_some(inner)
}

/// A variable's name (a number such as `1` is not one: ansible-core's
/// shortcut looks the name up among the variables).
fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c == '_' || c.is_alphabetic())
        && s.chars().all(|c| c == '_' || c.is_alphanumeric())
}

/// What ansible-core makes of a rendered text (`ansible_eval_concat`): text
/// that looks like a list, a dict or a boolean (`[{{ a }}, {{ b }}]`,
/// `{{ x }}ue`) is read as a Python literal when it is one.
pub(crate) fn concat_value(text: String) -> Value {
    if (text.starts_with(['[', '{']) || text == "True" || text == "False")
        && let Some(value) = crate::inventory::python_literal::literal_eval(&text)
    {
        return value;
    }
    Value::String(text)
}

/// What ansible-core makes of a whole template's output, `rendered` with
/// the source's trailing newlines kept: its Jinja drops the source's last
/// newline before rendering, reads the text as a literal if it looks like
/// one (so `"{{ flag }}\n"` giving `True` is the boolean, newline lost),
/// and gives a string back the newlines the source ends with and the text
/// lacks (so a value that ends with a newline is not given a second one).
pub(crate) fn concat_rendered(source: &str, mut rendered: String) -> Value {
    let wanted = trailing_newlines(source);
    if wanted > 0 && rendered.ends_with('\n') {
        rendered.pop();
    }
    let mut value = concat_value(rendered);
    if let Value::String(text) = &mut value {
        let have = trailing_newlines(text);
        text.extend(std::iter::repeat_n('\n', wanted.saturating_sub(have)));
    }
    value
}

fn trailing_newlines(s: &str) -> usize {
    s.len() - s.trim_end_matches('\n').len()
}

/// What ansible-core appends to a lone expression's value: the newline
/// Jinja dropped from the source, when the value is a string.
pub(crate) fn trailing_newline(source: &str, value: &mut Value) {
    if let Value::String(text) = value
        && source.ends_with('\n')
        && !text.ends_with('\n')
    {
        text.push('\n');
    }
}

/// Ansible's truthiness of a conditional's result: the usual Jinja rules, except that the
/// strings "yes"/"true"/"on"/"1" are true and "no"/"false"/"off"/"0"/"" false (any case),
/// since such strings often arrive from inventory files or `set_fact`.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => true,
            "no" | "false" | "off" | "0" | "" => false,
            _ => true,
        },
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_expression_only_for_whole_strings() {
        assert_eq!(single_expression("{{ x }}"), Some(" x "));
        assert_eq!(single_expression("  {{- x -}}\n"), Some(" x "));
        assert_eq!(single_expression("{{ -1 }}"), Some(" -1 "));
        assert_eq!(single_expression("a {{ x }}"), None);
        assert_eq!(single_expression("{{ a }}{{ b }}"), None);
        assert_eq!(single_expression("{{ a }} {% if b %}{% endif %}"), None);
        assert_eq!(single_expression("{{ }}"), None);
    }

    #[test]
    fn a_template_giving_true_before_a_newline_was_text_where_ansible_gives_the_boolean() {
        assert_eq!(
            concat_rendered("{{ a | default(1) }}\n", "True\n".into()),
            json!(true)
        );
        assert_eq!(
            concat_rendered("{{ a }}{{ b }}\n", "[1]\n".into()),
            json!([1])
        );
        assert_eq!(
            concat_rendered("{{ a }}-x\n", "1-x\n".into()),
            json!("1-x\n")
        );
        // A value ending with a newline is not given a second one; a
        // source ending with two keeps both.
        assert_eq!(
            concat_rendered("{{ a | upper }}\n", "A\n\n".into()),
            json!("A\n")
        );
        assert_eq!(
            concat_rendered("{{ a }}!\n\n", "x!\n\n".into()),
            json!("x!\n\n")
        );
        assert_eq!(concat_rendered("{{ a }}!", "True".into()), json!(true));
    }

    #[test]
    fn truthiness_follows_ansible() {
        for yes in [
            json!("yes"),
            json!("True"),
            json!("on"),
            json!("1"),
            json!(2),
            json!([0]),
            json!("x"),
        ] {
            assert!(truthy(&yes), "{yes}");
        }
        for no in [
            json!("no"),
            json!("FALSE"),
            json!("off"),
            json!("0"),
            json!(""),
            json!(0),
            json!(null),
            json!({}),
            json!([]),
        ] {
            assert!(!truthy(&no), "{no}");
        }
    }
}
