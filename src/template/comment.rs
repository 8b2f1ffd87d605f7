//! Ansible's `comment` filter: text turned into a comment block in one of
//! five styles, with every part (beginning, prefix, decoration, postfix,
//! end, their counts, the newline) overridable, exactly as ansible-core's
//! `filter/core.py` composes it — templates usually write
//! `{{ ansible_managed | comment }}` at the top of a config file, and a
//! byte of difference there makes every host's file "changed".

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, Value};

use super::filters::{invalid, text};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("comment", comment);
}

/// What one style sets; the rest is the filter's defaults.
struct Style {
    beginning: &'static str,
    decoration: &'static str,
    end: &'static str,
}

const STYLES: [(&str, Style); 5] = [
    (
        "plain",
        Style {
            beginning: "",
            decoration: "# ",
            end: "",
        },
    ),
    (
        "erlang",
        Style {
            beginning: "",
            decoration: "% ",
            end: "",
        },
    ),
    (
        "c",
        Style {
            beginning: "",
            decoration: "// ",
            end: "",
        },
    ),
    (
        "cblock",
        Style {
            beginning: "/*",
            decoration: " * ",
            end: " */",
        },
    ),
    (
        "xml",
        Style {
            beginning: "<!--",
            decoration: " - ",
            end: "-->",
        },
    ),
];

fn comment(value: &Value, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let body = text(value)?;
    let style_name = style.unwrap_or_else(|| "plain".into());
    let Some((_, style)) = STYLES.iter().find(|(name, _)| *name == style_name) else {
        let names: Vec<&str> = STYLES.iter().map(|(n, _)| *n).collect();
        return Err(invalid(format!(
            "comment: invalid style {style_name:?} (available styles: {})",
            names.join(", ")
        )));
    };
    let given = |key: &str| kwargs.get::<Option<String>>(key);
    let count =
        |key: &str| -> Result<usize, Error> { Ok(kwargs.get::<Option<usize>>(key)?.unwrap_or(1)) };
    let decoration_arg = given("decoration")?;
    // The prefix and postfix default to the decoration without its trailing
    // spaces (`#` for plain), taken from the argument when one is given.
    let prepostfix = decoration_arg
        .clone()
        .unwrap_or_else(|| style.decoration.into());
    let newline = given("newline")?.unwrap_or_else(|| "\n".into());
    let beginning = given("beginning")?.unwrap_or_else(|| style.beginning.into());
    let prefix = given("prefix")?.unwrap_or_else(|| prepostfix.trim_end().into());
    let decoration = decoration_arg.unwrap_or_else(|| style.decoration.into());
    let postfix = given("postfix")?.unwrap_or_else(|| prepostfix.trim_end().into());
    let end = given("end")?.unwrap_or_else(|| style.end.into());
    let prefix_count = count("prefix_count")?;
    let postfix_count = count("postfix_count")?;
    kwargs.assert_all_used()?;

    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let line = if prefix == newline {
            newline.clone()
        } else {
            format!("{prefix}{newline}")
        };
        out.push_str(&line.repeat(prefix_count));
    }
    let decorated = format!(
        "{decoration}{}",
        body.replace(&newline, &format!("{newline}{decoration}"))
    );
    // A line holding only the decoration loses its trailing spaces.
    out.push_str(&decorated.replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    ));
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}
