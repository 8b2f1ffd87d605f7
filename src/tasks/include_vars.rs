//! `include_vars`: variables from a YAML or JSON file of the control
//! machine (or every such file of a directory), set on the host for the
//! rest of the run, as Ansible's `include_vars` action: never "changed",
//! in check mode too; `name` puts them under one variable.
//!
//! A file is looked up in the playbook's `vars/` and then beside the
//! playbook; a `dir` is beside the playbook, walked in sorted order to
//! `depth` (0: all the way), its `.yml`/`.yaml`/`.json` files (or those of
//! `extensions`) loaded one over the other. A file of another extension in
//! the directory fails the task unless `ignore_unknown_extensions`, as in
//! ansible-core.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::file::lenient;
use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::vars::{Value, VarMap};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "include_vars",
    args: &[
        "_raw_params",
        "file",
        "name",
        "dir",
        "depth",
        "extensions",
        "ignore_unknown_extensions",
    ],
    free_form: true,
    any_name: false,
    build: |args| Ok(Box::new(IncludeVars::from_args(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "_raw_params")]
    raw: Option<String>,
    file: Option<String>,
    name: Option<String>,
    dir: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    depth: Option<u64>,
    extensions: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    ignore_unknown_extensions: bool,
}

enum Source {
    File(String),
    Dir {
        dir: String,
        depth: u64,
        extensions: Vec<String>,
        ignore_unknown: bool,
    },
}

struct IncludeVars {
    source: Source,
    name: Option<String>,
}

impl IncludeVars {
    fn from_args(a: Args) -> Result<Self, String> {
        let file = match (a.raw, a.file) {
            (Some(_), Some(_)) => {
                return Err("give either a free-form file or `file`, not both".into());
            }
            (f, None) | (None, f) => f,
        };
        let dir_args = a.depth.is_some() || a.extensions.is_some() || a.ignore_unknown_extensions;
        let source = match (file, a.dir) {
            (Some(_), Some(_)) => {
                return Err(
                    "You are mixing file only and dir only arguments, these are incompatible"
                        .into(),
                );
            }
            (Some(_), None) if dir_args => {
                return Err(
                    "You are mixing file only and dir only arguments, these are incompatible"
                        .into(),
                );
            }
            (Some(f), None) => Source::File(f),
            (None, Some(dir)) => Source::Dir {
                dir,
                depth: a.depth.unwrap_or(0),
                extensions: a
                    .extensions
                    .unwrap_or_else(|| vec!["yaml".into(), "yml".into(), "json".into()]),
                ignore_unknown: a.ignore_unknown_extensions,
            },
            (None, None) => return Err("give a file (free form or `file`) or `dir`".into()),
        };
        if let Some(name) = &a.name
            && !valid_name(name)
        {
            return Err(format!("`name` must be a variable name, not `{name}`"));
        }
        Ok(Self {
            source,
            name: a.name,
        })
    }

    /// The variables, or why they cannot be had (the task fails).
    fn load(&self, base: &Path) -> Result<VarMap, String> {
        match &self.source {
            Source::File(f) => {
                let written = Path::new(f);
                let path = if written.is_absolute() {
                    written.to_path_buf()
                } else {
                    [base.join("vars").join(written), base.join(written)]
                        .into_iter()
                        .find(|p| p.is_file())
                        .ok_or_else(|| format!("Could not find or access '{f}'"))?
                };
                load_file(&path)
            }
            Source::Dir {
                dir,
                depth,
                extensions,
                ignore_unknown,
            } => {
                let root = base.join(dir);
                if !root.exists() {
                    return Err(format!("{dir} directory does not exist"));
                }
                if !root.is_dir() {
                    return Err(format!("{dir} is not a directory"));
                }
                let mut vars = VarMap::new();
                for path in walk_sorted(&root, *depth) {
                    let known = path
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| extensions.iter().any(|x| x == e));
                    if !known {
                        if *ignore_unknown {
                            continue;
                        }
                        return Err(format!(
                            "{} does not have a valid extension: {}",
                            path.display(),
                            extensions.join(", ")
                        ));
                    }
                    vars.extend(load_file(&path)?);
                }
                Ok(vars)
            }
        }
    }
}

/// The variables an `include_vars` task with these (unrendered) arguments
/// defines, as far as can be known before the run: its `name`, or the
/// names its files define; none when the file is a template.
pub fn included_names(args: &Value, base: &Path) -> Vec<String> {
    let Ok(task) = parse_args::<Args>(args.clone()).and_then(IncludeVars::from_args) else {
        return vec![];
    };
    if let Some(name) = task.name {
        return vec![name];
    }
    task.load(base)
        .map(|vars| vars.keys().cloned().collect())
        .unwrap_or_default()
}

fn load_file(path: &Path) -> Result<VarMap, String> {
    crate::vars_file::load(path).map_err(|e| e.to_string())
}

/// The files under `root` as Python's sorted `os.walk` yields them: the
/// directories in sorted order of their paths, each one's files sorted;
/// `depth` 1 is `root` alone, 0 no limit.
fn walk_sorted(root: &Path, depth: u64) -> Vec<PathBuf> {
    let mut dirs = vec![(root.to_path_buf(), 1u64)];
    let mut i = 0;
    while i < dirs.len() {
        let (dir, level) = dirs[i].clone();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    dirs.push((e.path(), level + 1));
                }
            }
        }
        i += 1;
    }
    dirs.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    let mut files = Vec::new();
    for (dir, level) in dirs {
        if depth != 0 && level > depth {
            continue;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.is_dir())
            .collect();
        names.sort();
        files.extend(names);
    }
    files
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Action for IncludeVars {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let vars = match self.load(ctx.base_dir) {
                Ok(vars) => vars,
                Err(msg) => return Ok(Outcome::failed(msg)),
            };
            let facts = match &self.name {
                Some(name) => VarMap::from_iter([(name.clone(), Value::Object(vars))]),
                None => vars,
            };
            Ok(Outcome {
                facts: facts.clone(),
                ..Outcome::ok()
            }
            .with("ansible_facts", Value::Object(facts)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(v: serde_json::Value) -> Result<IncludeVars, String> {
        IncludeVars::from_args(parse_args(v)?)
    }

    #[test]
    fn arguments_are_checked() {
        assert!(build(serde_json::json!({"_raw_params": "a.yml"})).is_ok());
        assert!(build(serde_json::json!({"file": "a.yml", "name": "cfg"})).is_ok());
        assert!(build(serde_json::json!({"dir": "vars", "depth": "1"})).is_ok());
        assert!(build(serde_json::json!({})).is_err());
        assert!(build(serde_json::json!({"file": "a.yml", "dir": "vars"})).is_err());
        assert!(build(serde_json::json!({"file": "a.yml", "depth": 1})).is_err());
        assert!(build(serde_json::json!({"file": "a.yml", "name": "not a name"})).is_err());
        assert!(build(serde_json::json!({"file": "a.yml", "files_matching": "x"})).is_err());
    }

    #[test]
    fn a_directory_is_walked_in_sorted_order_to_its_depth() {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in [
            ("b.yml", "x: b\nb: 1\n"),
            ("a.yml", "x: a\na: 1\n"),
            ("sub/c.json", "{\"x\": \"c\"}"),
            ("sub/README", "not vars"),
        ] {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let load = |v| build(v).unwrap().load(dir.path());
        let all = load(serde_json::json!({"dir": ".", "ignore_unknown_extensions": true})).unwrap();
        assert_eq!(all["x"], "c");
        assert_eq!((all["a"].clone(), all["b"].clone()), (1.into(), 1.into()));
        let top = load(serde_json::json!({"dir": ".", "depth": 1})).unwrap();
        assert_eq!(top["x"], "b");
        let err = load(serde_json::json!({"dir": "."})).unwrap_err();
        assert!(
            err.contains("README does not have a valid extension"),
            "{err}"
        );
    }
}
