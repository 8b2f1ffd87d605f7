//! `-e`/`--extra-vars`: how Ansible reads them, and how they are hidden.
//!
//! Extra vars are where operators pass secrets (`-e db_password=…`), so
//! their values never leave the process: the command line recorded in the
//! `run_start` event (screen and journal) keeps each key and replaces its
//! value with [`HIDDEN`], and error messages about them quote no value.

use std::path::Path;

use crate::error::Error;
use crate::vars::{Value, VarMap};

/// What a value given with `-e` is replaced with wherever it would be shown.
pub const HIDDEN: &str = "<hidden>";

/// `-e` as Ansible reads it: `@file`, a JSON mapping, or `k=v k2=v2`.
pub fn parse_extra_vars(args: &[String]) -> Result<VarMap, Error> {
    let mut vars = VarMap::new();
    for arg in args {
        let bad = |reason: String| Error::ExtraVars {
            arg: hide_values(arg),
            reason,
        };
        if let Some(file) = arg.strip_prefix('@') {
            let map = crate::vars_file::load(Path::new(file)).map_err(file_error)?;
            crate::vars::merge(&mut vars, &map);
        } else if arg.trim_start().starts_with('{') {
            // serde_json's messages name a position, never the text.
            let map: VarMap = serde_json::from_str(arg).map_err(|e| bad(e.to_string()))?;
            crate::vars::merge(&mut vars, &map);
        } else {
            let words = shlex::split(arg).ok_or_else(|| bad("unbalanced quotes".into()))?;
            for word in words {
                let (k, v) = word.split_once('=').ok_or_else(|| {
                    bad("a word without `=` (expected key=value, @file or a JSON mapping)".into())
                })?;
                if k.is_empty() {
                    return Err(bad("empty variable name".into()));
                }
                // Ansible keeps key=value extra vars as strings.
                vars.insert(k.to_owned(), Value::String(v.to_owned()));
            }
        }
    }
    Ok(vars)
}

/// An error in an `-e @file`: located, but without the source excerpt or
/// any quoted text, which would show the file's secrets.
fn file_error(e: crate::vars_file::VarsFileError) -> Error {
    use crate::vars_file::VarsFileError;
    let quoted = regex::Regex::new(r#""[^"]*"|'[^']*'"#).expect("valid regex");
    let (what, location) = match &e {
        VarsFileError::Read { path, reason } => (reason.clone(), path.display().to_string()),
        VarsFileError::Yaml(y) => (
            quoted.replace_all(&y.message, HIDDEN).into_owned(),
            y.span
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| y.file.display().to_string()),
        ),
    };
    Error::Usage(format!(
        "bad extra vars file: {what}\n  --> {location} (its lines are not shown: extra vars may be secret)"
    ))
}

/// The command line with every `-e` value hidden (see the module doc).
/// Follows clap's syntax: `-e V`, `-eV`, `-e=V`, `-Ce V` (a cluster of
/// short flags ending in `e`), `--extra-vars V`, `--extra-vars=V`; nothing
/// after `--` is an option.
pub fn hide_in_argv(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_is_value = false;
    let mut options_ended = false;
    for arg in argv {
        if std::mem::take(&mut next_is_value) {
            out.push(hide_values(arg));
            continue;
        }
        if options_ended {
            out.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_ended = true;
            out.push(arg.clone());
        } else if arg == "--extra-vars" {
            next_is_value = true;
            out.push(arg.clone());
        } else if let Some(value) = arg.strip_prefix("--extra-vars=") {
            out.push(format!("--extra-vars={}", hide_values(value)));
        } else if arg.starts_with('-') && !arg.starts_with("--") {
            match short_cluster_value(arg) {
                ShortValue::None => out.push(arg.clone()),
                ShortValue::Next => {
                    next_is_value = true;
                    out.push(arg.clone());
                }
                ShortValue::Inline { at } => {
                    let (head, value) = arg.split_at(at);
                    out.push(format!("{head}{}", hide_values(value)));
                }
            }
        } else {
            out.push(arg.clone());
        }
    }
    out
}

/// Where a cluster of short flags (`-Cv`, `-ek=v`, `-Ce`) has an `-e` value.
enum ShortValue {
    None,
    /// `-e` ends the cluster: the value is the next argument.
    Next,
    /// The value starts at this byte offset (after `e` and an optional `=`).
    Inline {
        at: usize,
    },
}

/// The short flags that take a value (the cluster ends at the first one).
const SHORT_WITH_VALUE: &[char] = &['i', 'l', 'f', 't', 'e'];

fn short_cluster_value(arg: &str) -> ShortValue {
    for (at, c) in arg.char_indices().skip(1) {
        if !SHORT_WITH_VALUE.contains(&c) {
            continue;
        }
        if c != 'e' {
            return ShortValue::None;
        }
        let rest = at + 1;
        return match &arg[rest..] {
            "" => ShortValue::Next,
            r if r.starts_with('=') => ShortValue::Inline { at: rest + 1 },
            _ => ShortValue::Inline { at: rest },
        };
    }
    ShortValue::None
}

/// One `-e` value with its values hidden and its keys kept: `@file` stays
/// (a path is no secret, and the file's content is not on the command
/// line), a JSON mapping keeps its top-level keys, `k=v` words keep `k`.
pub fn hide_values(value: &str) -> String {
    if value.starts_with('@') {
        return value.to_owned();
    }
    if value.trim_start().starts_with('{') {
        return match serde_json::from_str::<VarMap>(value) {
            Ok(map) => {
                let hidden: VarMap = map
                    .into_iter()
                    .map(|(k, _)| (k, Value::from(HIDDEN)))
                    .collect();
                Value::Object(hidden).to_string()
            }
            Err(_) => HIDDEN.to_owned(),
        };
    }
    match shlex::split(value) {
        Some(words) => words
            .iter()
            .map(|w| match w.split_once('=') {
                // A key that needs quoting is no variable name: hide it too.
                Some((k, _)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                    format!("{k}={HIDDEN}")
                }
                _ => HIDDEN.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => HIDDEN.to_owned(),
    }
}

/// Splits a recorded command line (see [`hide_in_argv`]) into the `-e`
/// values whose values were hidden and the rest, so that a resumed run can
/// be given them again. Flags clustered before such an `-e` (`-Ce…`) stay.
pub fn take_hidden(argv: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut rest, mut hidden) = (Vec::new(), Vec::new());
    let mut args = argv.iter().peekable();
    while let Some(arg) = args.next() {
        let next_hidden = args.peek().is_some_and(|v| v.contains(HIDDEN));
        if arg == "--" {
            rest.push(arg.clone());
            rest.extend(args.by_ref().cloned());
        } else if arg == "--extra-vars" && next_hidden {
            hidden.extend(args.next().cloned());
        } else if let Some(v) = arg
            .strip_prefix("--extra-vars=")
            .filter(|v| v.contains(HIDDEN))
        {
            hidden.push(v.to_owned());
        } else if arg.starts_with('-') && !arg.starts_with("--") {
            match short_cluster_value(arg) {
                ShortValue::Next if next_hidden => {
                    hidden.extend(args.next().cloned());
                    keep_flags(&mut rest, &arg[..arg.len() - 1]);
                }
                ShortValue::Inline { at } if arg[at..].contains(HIDDEN) => {
                    hidden.push(arg[at..].to_owned());
                    let flags = arg[..at].trim_end_matches('=');
                    keep_flags(&mut rest, &flags[..flags.len() - 1]);
                }
                _ => rest.push(arg.clone()),
            }
        } else {
            rest.push(arg.clone());
        }
    }
    (rest, hidden)
}

/// Keeps `-XY` (the flags of a cluster before its `e`), if any.
fn keep_flags(rest: &mut Vec<String>, flags: &str) {
    if flags.len() > 1 {
        rest.push(flags.to_owned());
    }
}

/// The keys whose values [`hide_values`] hid in one `-e` value.
pub fn hidden_keys(value: &str) -> Vec<String> {
    if value.trim_start().starts_with('{') {
        return serde_json::from_str::<VarMap>(value)
            .map(|m| {
                m.into_iter()
                    .filter(|(_, v)| v == HIDDEN)
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
    }
    shlex::split(value)
        .unwrap_or_default()
        .iter()
        .filter_map(|w| {
            w.split_once('=')
                .filter(|(_, v)| *v == HIDDEN)
                .map(|(k, _)| k.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn extra_vars_forms() {
        let vars = parse_extra_vars(&["a=1 b='x y'".into(), r#"{"c": [1]}"#.into()]).unwrap();
        assert_eq!(vars["a"], Value::from("1"));
        assert_eq!(vars["b"], Value::from("x y"));
        assert_eq!(vars["c"], serde_json::json!([1]));
        assert!(parse_extra_vars(&["nokey".into()]).is_err());
    }

    #[test]
    fn every_form_of_e_is_hidden() {
        let argv = strings(&[
            "run",
            "p.yml",
            "-e",
            "db_password=hunter2 user='a b'",
            "-ek1=s1",
            "-e=k2=s2",
            "-Cek3=s3",
            "-Ce",
            "k4=s4",
            "--extra-vars",
            r#"{"k5": "s5", "k6": {"x": "s6"}}"#,
            "--extra-vars=k7=s7",
            "-e",
            "@vars.yml",
            "-i",
            "inv.yml",
            "-l",
            "e=not-a-var",
            "--",
            "-e",
            "after",
        ]);
        let hidden = hide_in_argv(&argv);
        let line = hidden.join(" ");
        for secret in ["hunter2", "a b", "s1", "s2", "s3", "s4", "s5", "s6", "s7"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
        for key in [
            "db_password",
            "user",
            "k1",
            "k2",
            "k3",
            "k4",
            "k5",
            "k6",
            "k7",
        ] {
            assert!(line.contains(key), "{key} missing from {line}");
        }
        assert_eq!(hidden[3], "db_password=<hidden> user=<hidden>");
        assert_eq!(hidden[4], "-ek1=<hidden>");
        assert_eq!(hidden[5], "-e=k2=<hidden>");
        assert!(line.contains("-e @vars.yml -i inv.yml -l e=not-a-var -- -e after"));
        // What was hidden is found again, with its keys, for a resumed run.
        let (rest, taken) = take_hidden(&hidden);
        let keys: Vec<String> = taken.iter().flat_map(|v| hidden_keys(v)).collect();
        assert_eq!(
            keys,
            [
                "db_password",
                "user",
                "k1",
                "k2",
                "k3",
                "k4",
                "k5",
                "k6",
                "k7"
            ]
        );
        assert_eq!(
            rest,
            strings(&[
                "run",
                "p.yml",
                "-C",
                "-C",
                "-e",
                "@vars.yml",
                "-i",
                "inv.yml",
                "-l",
                "e=not-a-var",
                "--",
                "-e",
                "after"
            ])
        );
    }

    #[test]
    fn errors_quote_no_value() {
        for arg in [
            "hunter2",
            "a=1 hunter2",
            "pw='hunter2",
            r#"{"pw": "hunter2""#,
        ] {
            let message = parse_extra_vars(&[arg.into()]).unwrap_err().to_string();
            assert!(!message.contains("hunter2"), "{message}");
        }
    }
}
