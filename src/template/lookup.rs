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
    if plugin == "first_found" {
        return first_found(base_dir, terms, kwargs);
    }
    let terms = strings()?;
    let results = match plugin {
        "pipe" => {
            kwargs.assert_all_used()?;
            terms
                .iter()
                .map(|cmd| pipe(base_dir, cmd))
                .collect::<Result<Vec<_>, _>>()?
        }
        "fileglob" => {
            kwargs.assert_all_used()?;
            let mut out = Vec::new();
            for term in &terms {
                out.extend(fileglob(base_dir, term));
            }
            out
        }
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
                "lookup plugin `{other}` is not supported (supported: env, file, vars, pipe, fileglob, first_found)"
            )));
        }
    };
    Ok(results.into_iter().map(Value::from).collect())
}

/// `lookup('pipe', CMD)`: CMD's output through `sh -c`, run on the control
/// machine in the playbook's directory, trailing whitespace stripped; a
/// failing command is an error, as in Ansible.
fn pipe(base_dir: &Path, cmd: &str) -> Result<String, Error> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(base_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| invalid(format!("lookup('pipe'): cannot run sh: {e}")))?;
    if !out.status.success() {
        return Err(invalid(format!(
            "lookup('pipe'): the command exited with {} ({})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

/// Where a file lookup finds a relative name, in Ansible's order for a
/// playbook: its `files/` directory, then beside it.
fn search(base_dir: &Path, name: &str) -> Vec<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        return vec![path.to_owned()];
    }
    vec![base_dir.join("files").join(name), base_dir.join(name)]
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// `lookup('fileglob', 'dir/*.txt')`: the files (not directories) whose
/// names match, as absolute paths, in name order.
fn fileglob(base_dir: &Path, pattern: &str) -> Vec<String> {
    let (dir, glob) = match pattern.rsplit_once('/') {
        Some((dir, glob)) => (dir, glob),
        None => ("", pattern),
    };
    let mut regex = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            c => regex.push_str(&regex::escape(&c.to_string())),
        }
    }
    regex.push('$');
    let Ok(matcher) = regex::Regex::new(&regex) else {
        return Vec::new();
    };
    for candidate in search(base_dir, if dir.is_empty() { "." } else { dir }) {
        let Ok(entries) = std::fs::read_dir(&candidate) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| matcher.is_match(n))
            })
            .collect();
        if !found.is_empty() {
            found.sort();
            return found.iter().map(|p| absolute(p)).collect();
        }
    }
    Vec::new()
}

/// `lookup('first_found', ['a.conf', 'b.conf'])` (or `{files: [...],
/// paths: [...], skip: true}`): the first that exists, as an absolute path.
fn first_found(base_dir: &Path, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let mut skip = kwargs.get::<Option<bool>>("skip")?.unwrap_or(false);
    let kw_files = kwargs.get::<Option<Value>>("files")?;
    let kw_paths = kwargs.get::<Option<Value>>("paths")?;
    kwargs.assert_all_used()?;
    let mut names: Vec<String> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    fn strings_of(value: &Value, out: &mut Vec<String>) {
        if let Some(s) = value.as_str() {
            out.push(s.to_owned());
        } else if let Ok(items) = value.try_iter() {
            for item in items {
                strings_of(&item, out);
            }
        }
    }
    for term in terms.iter().chain(kw_files.iter()) {
        if term.kind() == minijinja::value::ValueKind::Map {
            if let Ok(files) = term.get_attr("files") {
                strings_of(&files, &mut names);
            }
            if let Ok(p) = term.get_attr("paths") {
                strings_of(&p, &mut paths);
            }
            if term.get_attr("skip").is_ok_and(|s| s.is_true()) {
                skip = true;
            }
        } else {
            strings_of(term, &mut names);
        }
    }
    if let Some(p) = &kw_paths {
        strings_of(p, &mut paths);
    }
    for name in &names {
        let candidates: Vec<PathBuf> = if paths.is_empty() {
            search(base_dir, name)
        } else {
            paths
                .iter()
                .flat_map(|p| search(base_dir, &format!("{p}/{name}")))
                .collect()
        };
        if let Some(found) = candidates.iter().find(|p| p.exists()) {
            return Ok(vec![Value::from(absolute(found))]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(invalid(format!(
        "lookup('first_found'): none of {} exists",
        names.join(", ")
    )))
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
