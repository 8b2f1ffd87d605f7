//! Ansible's `key=value` free form (`copy: dest={{ d }}/x mode=0644`),
//! split as ansible-core's `split_args` splits it: on spaces outside quotes
//! and outside Jinja's `{{ }}`, `{% %}` and `{# #}`, so a template with
//! spaces inside stays one value.

/// The words of `text`, each with its value's surrounding quotes removed
/// (`k="a b"` is `k=a b`, as ansible-core's `parse_kv` unquotes).
pub(super) fn split(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if quote.is_none() && depth == 0 && c.is_whitespace() {
            if !word.is_empty() {
                words.push(unquote_value(&std::mem::take(&mut word)));
            }
            i += 1;
            continue;
        }
        match (c, next) {
            ('{', Some('{' | '%' | '#')) => {
                depth += 1;
                word.push(c);
                word.push(next.unwrap_or_default());
                i += 2;
                continue;
            }
            ('}' | '%' | '#', Some('}')) if depth > 0 => {
                depth -= 1;
                word.push(c);
                word.push('}');
                i += 2;
                continue;
            }
            ('\'' | '"', _) if depth == 0 => match quote {
                Some(q) if q == c => quote = None,
                None => quote = Some(c),
                _ => {}
            },
            _ => {}
        }
        word.push(c);
        i += 1;
    }
    if !word.is_empty() {
        words.push(unquote_value(&word));
    }
    words
}

/// `k="v"` -> `k=v`; a word without `=` is kept as written.
fn unquote_value(word: &str) -> String {
    let Some((key, value)) = word.split_once('=') else {
        return word.to_owned();
    };
    let bytes = value.as_bytes();
    let quoted = bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0];
    if quoted {
        format!("{key}={}", &value[1..value.len() - 1])
    } else {
        format!("{key}={value}")
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn a_template_with_spaces_is_one_value() {
        assert_eq!(
            split("path={{ d }}/{{ h }} state=directory  mode=0755"),
            ["path={{ d }}/{{ h }}", "state=directory", "mode=0755"]
        );
    }

    #[test]
    fn quoted_values_lose_their_quotes_and_keep_their_spaces() {
        assert_eq!(
            split(r#"content="a b" dest='/x y' n={% if x %}1{% endif %}"#),
            ["content=a b", "dest=/x y", "n={% if x %}1{% endif %}"]
        );
    }
}
