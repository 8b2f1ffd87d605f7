//! The `lookup` and `query` globals: Ansible's `env`, `file` and `vars` lookups.
//!
//! Lookups run on the controller, like Ansible's, so `env` reads convoy's own environment,
//! `file` reads from the playbook's directory and `vars` reads the template's variables
//! (a name computed in the template, as `lookup('vars', 'app_' ~ name)`).

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, State, Value};

use super::filters::invalid;

pub(crate) fn register(env: &mut Environment<'static>, base_dir: PathBuf) {
    let dir = base_dir.clone();
    env.add_function(
        "lookup",
        move |state: &State, plugin: String, terms: Rest<Value>, kwargs: Kwargs| {
            let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
            let results = lookup(state, &dir, &plugin, &terms, &kwargs)?;
            Ok(if wantlist {
                Value::from(results)
            } else {
                joined(results)
            })
        },
    );
    for name in ["query", "q"] {
        let dir = base_dir.clone();
        env.add_function(
            name,
            move |state: &State, plugin: String, terms: Rest<Value>, kwargs: Kwargs| {
                lookup(state, &dir, &plugin, &terms, &kwargs).map(Value::from)
            },
        );
    }
}

/// What `lookup` returns, as Ansible's: strings joined by commas; one
/// value that is not a string as itself; several as a list.
fn joined(results: Vec<Value>) -> Value {
    if results.iter().all(|v| v.as_str().is_some()) {
        let strings: Vec<&str> = results.iter().filter_map(Value::as_str).collect();
        return Value::from(strings.join(","));
    }
    if results.len() == 1 {
        return results.into_iter().next().unwrap_or_default();
    }
    Value::from(results)
}

/// Each term's results (query's list; lookup joins them).
fn lookup(
    state: &State,
    base_dir: &Path,
    plugin: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let strings = || -> Result<Vec<String>, Error> {
        terms
            .iter()
            .map(|t| {
                t.as_str().map(str::to_owned).ok_or_else(|| {
                    invalid(format!("lookup('{plugin}'): the term {t} is not a string"))
                })
            })
            .collect()
    };
    if plugin == "vars" {
        let default = kwargs.get::<Option<Value>>("default")?;
        kwargs.assert_all_used()?;
        let mut out = Vec::new();
        for name in strings()? {
            match state.lookup(&name).filter(|v| !v.is_undefined()) {
                Some(value) => out.push(value),
                None => match &default {
                    Some(d) => out.push(d.clone()),
                    None => {
                        return Err(Error::new(
                            minijinja::ErrorKind::UndefinedError,
                            format!("lookup('vars'): no variable named `{name}`"),
                        ));
                    }
                },
            }
        }
        return Ok(out);
    }
    let terms = strings()?;
    let results = match plugin {
        "env" => {
            let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
            kwargs.assert_all_used()?;
            terms
                .iter()
                .map(|name| match std::env::var_os(name) {
                    Some(value) => value.to_string_lossy().into_owned(),
                    None => default.clone(),
                })
                .collect::<Vec<_>>()
        }
        "file" => {
            let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
            let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
            kwargs.assert_all_used()?;
            let mut out = Vec::with_capacity(terms.len());
            for term in terms {
                let mut contents = read_file(base_dir, &term)?;
                if rstrip {
                    contents.truncate(contents.trim_end().len());
                }
                if lstrip {
                    contents = contents.trim_start().to_string();
                }
                out.push(contents);
            }
            out
        }
        other => {
            return Err(invalid(format!(
                "lookup plugin `{other}` is not supported (supported: env, file, vars)"
            )));
        }
    };
    Ok(results.into_iter().map(Value::from).collect())
}

/// Reads `path` relative to the playbook directory, falling back to its `files/` folder
/// (where Ansible looks first; convoy prefers the path exactly as written).
fn read_file(base_dir: &Path, path: &str) -> Result<String, Error> {
    let direct = base_dir.join(path);
    let under_files = base_dir.join("files").join(path);
    let found = [direct, under_files].into_iter().find(|p| p.is_file());
    let Some(found) = found else {
        return Err(invalid(format!("lookup('file'): file not found: {path}")));
    };
    std::fs::read_to_string(&found)
        .map_err(|e| invalid(format!("lookup('file'): cannot read {path}: {e}")))
}
