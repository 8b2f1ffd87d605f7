//! Naming the undefined variable behind a strict-undefined failure.
//!
//! minijinja only says "undefined value" and gives the span of the failing expression
//! (`app.missing_attr`, but for `missing | upper` just `upper`). We pull the variable paths
//! out of that span, then out of the whole `{{ }}`/`{% %}` tag around it, and check each
//! against the variables: the first one that does not resolve is the culprit. Paths rooted
//! in loop variables or `set` targets cannot be checked against the variables; they are
//! reported as written when nothing better turns up.

use std::collections::HashSet;
use std::ops::Range;

use serde_json::Value;

/// Names that are never user variables: globals and the loop helper.
const BUILTIN_NAMES: &[&str] = &[
    "loop",
    "self",
    "range",
    "dict",
    "namespace",
    "debug",
    "lookup",
    "caller",
    "varargs",
    "kwargs",
];

/// Jinja keywords, which look like identifiers to the scanner below.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "elif",
    "endif",
    "for",
    "endfor",
    "set",
    "endset",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "recursive",
    "with",
    "endwith",
    "import",
    "from",
    "as",
    "include",
    "extends",
    "block",
    "endblock",
    "macro",
    "endmacro",
    "call",
    "endcall",
    "filter",
    "endfilter",
    "raw",
    "endraw",
    "autoescape",
    "endautoescape",
    "continue",
    "break",
    "do",
];

/// Finds the undefined variable behind an error in `source`, whose failing expression spans
/// `range` (none for expressions). `undeclared` holds the root names the source reads from
/// the context; any other root is declared inside it (loop variable, `set` target).
pub(crate) fn name_in(
    source: &str,
    range: Option<Range<usize>>,
    vars: &[&Value],
    undeclared: &HashSet<String>,
) -> Option<String> {
    let mut local_guess = None;
    let mut stages = Vec::with_capacity(3);
    if let Some(range) = range.filter(|r| source.get(r.clone()).is_some()) {
        stages.push(&source[range.clone()]);
        stages.push(enclosing_tag(source, range));
    }
    for text in stages {
        for path in paths(text) {
            match resolve(&path, vars, undeclared) {
                Resolution::Missing(name) => return Some(name),
                // A bare local (`item`) is defined by construction; only an attribute of one
                // can be the culprit.
                Resolution::Local if path.len() > 1 && local_guess.is_none() => {
                    local_guess = Some(path.join("."));
                }
                _ => {}
            }
        }
    }
    if local_guess.is_some() {
        // A local is what it was bound to: when the source reads a context
        // variable that is missing, that one is behind the local's missing
        // attribute (`{% for x in [r] %}{{ x.changed }}` with `r` undefined).
        let behind =
            paths(source)
                .into_iter()
                .find_map(|path| match resolve(&path, vars, undeclared) {
                    Resolution::Missing(name) => Some(name),
                    _ => None,
                });
        return behind.or(local_guess);
    }
    // No span (expressions), or nothing in it resolved: look through everything.
    paths(source)
        .into_iter()
        .find_map(|path| match resolve(&path, vars, undeclared) {
            Resolution::Missing(name) => Some(name),
            _ => None,
        })
}

/// The text of the `{{ ... }}` or `{% ... %}` tag that contains `range`, or the whole source
/// when there is none (expressions).
fn enclosing_tag(source: &str, range: Range<usize>) -> &str {
    let before = &source[..range.start];
    let start = match (before.rfind("{{"), before.rfind("{%")) {
        (Some(a), Some(b)) => a.max(b) + 2,
        (Some(a), None) | (None, Some(a)) => a + 2,
        (None, None) => 0,
    };
    let after = &source[range.end..];
    let end = match (after.find("}}"), after.find("%}")) {
        (Some(a), Some(b)) => range.end + a.min(b),
        (Some(a), None) | (None, Some(a)) => range.end + a,
        (None, None) => source.len(),
    };
    &source[start..end]
}

enum Resolution {
    /// The variables lack this path (the name is the path up to the missing part).
    Missing(String),
    /// The path resolves in the variables.
    Present,
    /// Rooted in a name declared inside the template: cannot be checked here.
    Local,
}

/// `vars` are layers: a root is looked up in the first that has it.
fn resolve(path: &[String], vars: &[&Value], undeclared: &HashSet<String>) -> Resolution {
    let root = &path[0];
    if BUILTIN_NAMES.contains(&root.as_str()) || !undeclared.contains(root) {
        return Resolution::Local;
    }
    let Some(mut current) = vars.iter().find_map(|layer| layer.get(root)) else {
        return Resolution::Missing(root.clone());
    };
    for (i, segment) in path.iter().enumerate().skip(1) {
        let next = match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|n| items.get(n)),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Resolution::Missing(path[..=i].join(".")),
        }
    }
    Resolution::Present
}

/// What came before an identifier, which decides whether it can be a variable.
#[derive(PartialEq)]
enum Prev {
    Other,
    /// `|`: the identifier is a filter name.
    Pipe,
    /// `is` / `is not`: a test name.
    Is,
    /// `.` after something that is not a path (`f().x`): an attribute, not a root.
    Dot,
}

/// The variable paths (`["app", "port"]`) referenced in a piece of Jinja source, in order.
/// Filter and test names, keywords, keyword-argument names, function calls and string
/// literals are skipped; a method call (`app.items()`) yields the object's path.
fn paths(text: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut prev = Prev::Other;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'\'' | b'"' => {
                i = skip_string(bytes, i);
                prev = Prev::Other;
            }
            b'|' => {
                i += 1;
                prev = Prev::Pipe;
            }
            b'.' => {
                i += 1;
                prev = Prev::Dot;
            }
            b'0'..=b'9' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                prev = Prev::Other;
            }
            c if is_ident_start(c) => {
                let (ident, end) = ident_at(text, i);
                i = end;
                if ident == "is" {
                    prev = Prev::Is;
                    continue;
                }
                if ident == "not" && prev == Prev::Is {
                    continue;
                }
                if prev != Prev::Other || KEYWORDS.contains(&ident) {
                    prev = Prev::Other;
                    continue;
                }
                let mut path = vec![ident.to_string()];
                i = read_segments(text, i, &mut path);
                let rest = text[i..].trim_start();
                if rest.starts_with('(') {
                    // A call: functions are not variables, methods belong to their object.
                    path.pop();
                } else if rest.starts_with('=') && !rest.starts_with("==") {
                    // A keyword argument's name (or a `set` target's, declared anyway).
                    path.clear();
                }
                if !path.is_empty() {
                    out.push(path);
                }
                prev = Prev::Other;
            }
            _ => {
                i += 1;
                prev = Prev::Other;
            }
        }
    }
    out
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_at(text: &str, start: usize) -> (&str, usize) {
    let bytes = text.as_bytes();
    let mut end = start;
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
    }
    (&text[start..end], end)
}

/// Reads `.attr`, `.0`, `['key']` and `[0]` segments after a root name.
fn read_segments(text: &str, mut i: usize, path: &mut Vec<String>) -> usize {
    let bytes = text.as_bytes();
    loop {
        match bytes.get(i) {
            Some(b'.')
                if bytes
                    .get(i + 1)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_') =>
            {
                let (segment, end) = ident_at(text, i + 1);
                path.push(segment.to_string());
                i = end;
            }
            Some(b'[') => {
                let inner_start = i + 1;
                let Some(close) = text[inner_start..].find(']') else {
                    return i;
                };
                let inner = text[inner_start..inner_start + close].trim();
                let key = if inner.len() >= 2
                    && (inner.starts_with('\'') && inner.ends_with('\'')
                        || inner.starts_with('"') && inner.ends_with('"'))
                {
                    &inner[1..inner.len() - 1]
                } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                    inner
                } else {
                    // A computed subscript (`d[key]`): the path we can check ends here.
                    return i;
                };
                path.push(key.to_string());
                i = inner_start + close + 1;
            }
            _ => return i,
        }
    }
}

/// Index just past the string literal starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_skip_filters_tests_strings_and_calls() {
        let found = paths("a.b | default(c['d'], true) is not defined and 'x.y' ~ e.f() ~ g[0].h");
        assert_eq!(
            found,
            vec![
                vec!["a".to_string(), "b".to_string()],
                vec!["c".to_string(), "d".to_string()],
                vec!["e".to_string()],
                vec!["g".to_string(), "0".to_string(), "h".to_string()],
            ]
        );
        assert!(paths("lookup('env', 'HOME') | upper").is_empty());
        assert_eq!(
            paths("combine(x, recursive=true)"),
            vec![vec!["x".to_string()]]
        );
    }

    #[test]
    fn names_the_first_missing_path() {
        let vars = json!({"app": {"port": 1}, "list": [1]});
        let undeclared = set(&["app", "missing", "list"]);
        let name = |src: &str| name_in(src, None, &[&vars], &undeclared);
        assert_eq!(name("app.port + missing").as_deref(), Some("missing"));
        assert_eq!(name("app.port ~ app.host").as_deref(), Some("app.host"));
        assert_eq!(name("list[3]").as_deref(), Some("list.3"));
        assert_eq!(name("app.port"), None);
    }

    #[test]
    fn widens_from_span_to_tag() {
        let vars = json!({});
        let src = "x {{ missing | upper }} y";
        let range = src.find("upper").map(|s| s..s + 5);
        assert_eq!(
            name_in(src, range, &[&vars], &set(&["missing"])).as_deref(),
            Some("missing")
        );
    }

    #[test]
    fn reports_loop_variable_attributes_as_written() {
        let vars = json!({"items": [{"a": 1}]});
        let src = "{% for i in items %}{{ i.b }}{% endfor %}";
        let range = src.find("i.b").map(|s| s..s + 3);
        assert_eq!(
            name_in(src, range, &[&vars], &set(&["items"])).as_deref(),
            Some("i.b")
        );
    }

    #[test]
    fn a_loop_over_a_missing_variable_names_it_not_the_loop_variable() {
        // The pre-flight check defers a registered result's name; it
        // refused `{% for x in [r] %}{{ x.changed }}` naming `x.changed`.
        let vars = json!({});
        let src = "{% for x in [r] %}{{ x.changed }}{% endfor %}";
        let range = src.find("x.changed").map(|s| s..s + 9);
        assert_eq!(
            name_in(src, range, &[&vars], &set(&["r"])).as_deref(),
            Some("r")
        );
    }
}
