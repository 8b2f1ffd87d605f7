//! The `lookup` global: Ansible's `lookup('env', NAME)` and `lookup('file', PATH)`.
//!
//! Lookups run on the controller, like Ansible's, so `env` reads convoy's own environment
//! and `file` reads from the playbook's directory.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error};

use super::filters::invalid;

pub(crate) fn register(env: &mut Environment<'static>, base_dir: PathBuf) {
    env.add_function(
        "lookup",
        move |plugin: String, terms: Rest<String>, kwargs: Kwargs| {
            lookup(&base_dir, &plugin, &terms, &kwargs)
        },
    );
}

/// Several terms give their results joined by commas, as Ansible's `lookup` does.
fn lookup(
    base_dir: &Path,
    plugin: &str,
    terms: &[String],
    kwargs: &Kwargs,
) -> Result<String, Error> {
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
                let mut contents = read_file(base_dir, term)?;
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
                "lookup plugin `{other}` is not supported (supported: env, file)"
            )));
        }
    };
    Ok(results.join(","))
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
