//! `git`: a checkout of a repository at a branch, a tag or a commit, kept
//! there as ansible-core's `git` module keeps it. The host's own `git`
//! does the work, driven by one script (`git.sh`) that takes
//! ansible-core's steps in its order with its commands: a clone when
//! `dest` holds no repository, otherwise a fetch and a checkout, refused
//! over local modifications unless `force` (then `reset --hard`). The task
//! is changed only when the checked-out commit changes, a clone happens,
//! local modifications were discarded, a submodule was brought up to
//! date or the remote's URL was changed.
//! Check mode asks the remote for its head (`ls-remote`) and changes
//! nothing. The registered result has ansible-core's keys: `before`,
//! `after`, `remote_url_changed`, `submodules_changed`, `warnings`, `msg`.
//!
//! The task's `environment:` reaches git, as it reaches `command`.
//!
//! Not supported (refused by name at load time): `refspec`, `reference`,
//! `verify_commit`, `gpg_allowlist`, `archive`, `archive_prefix`,
//! `separate_git_dir`, `track_submodules` (submodules are brought to the
//! commits the superproject names, as `recursive` does by default).
//! `--diff` shows nothing for it.

use serde::Deserialize;

use super::file::lenient;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{ShellScript, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "git",
    args: &[
        "repo",
        "name",
        "dest",
        "version",
        "remote",
        "force",
        "depth",
        "clone",
        "update",
        "bare",
        "single_branch",
        "recursive",
        "accept_hostkey",
        "accept_newhostkey",
        "key_file",
        "ssh_opts",
        "umask",
        "executable",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Git::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, alias = "name", deserialize_with = "lenient::opt_string")]
    repo: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    dest: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    version: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    remote: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    force: bool,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    depth: Option<u64>,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    clone: bool,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    update: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    bare: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    single_branch: bool,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    recursive: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    accept_hostkey: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    accept_newhostkey: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    key_file: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    ssh_opts: Option<String>,
    #[serde(default)]
    umask: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    executable: Option<String>,
}

struct Git {
    repo: String,
    /// Absolute or `~/`-relative, normalised as `os.path.abspath` does.
    dest: Option<String>,
    version: String,
    remote: String,
    force: bool,
    depth: Option<u64>,
    clone: bool,
    update: bool,
    bare: bool,
    single_branch: bool,
    recursive: bool,
    accept_hostkey: bool,
    accept_newhostkey: bool,
    key_file: Option<String>,
    ssh_opts: Option<String>,
    /// In octal digits, as `umask` takes it.
    umask: Option<String>,
    executable: Option<String>,
}

impl Git {
    fn new(a: Args) -> Result<Self, String> {
        let Some(repo) = a.repo else {
            return Err("missing required arguments: repo".into());
        };
        if a.accept_hostkey && a.accept_newhostkey {
            return Err(
                "parameters are mutually exclusive: accept_hostkey|accept_newhostkey".into(),
            );
        }
        // git would read such a value as one of its options
        // (`--upload-pack=...`): it is refused rather than passed on.
        for (key, value) in [
            ("repo", Some(&repo)),
            ("version", a.version.as_ref()),
            ("remote", a.remote.as_ref()),
        ] {
            if value.is_some_and(|v| v.starts_with('-')) {
                return Err(format!(
                    "`{key}` may not begin with `-` (git would take it for an option)"
                ));
            }
        }
        let umask = match a.umask {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(octal(&s).ok_or("umask must be an octal integer")?),
            Some(_) => return Err("umask must be defined as a quoted octal integer".into()),
        };
        Ok(Git {
            repo,
            dest: a.dest.filter(|d| !d.is_empty()).map(|d| normalize(&d)),
            version: a.version.unwrap_or_else(|| "HEAD".into()),
            remote: a.remote.unwrap_or_else(|| "origin".into()),
            force: a.force,
            // `if depth:` in ansible-core: 0 is no depth.
            depth: a.depth.filter(|d| *d > 0),
            clone: a.clone,
            update: a.update,
            bare: a.bare,
            single_branch: a.single_branch,
            recursive: a.recursive,
            accept_hostkey: a.accept_hostkey,
            accept_newhostkey: a.accept_newhostkey,
            key_file: a.key_file.filter(|k| !k.is_empty()),
            ssh_opts: a.ssh_opts,
            umask,
            executable: a.executable.filter(|e| !e.is_empty()),
        })
    }

    fn script(&self, check: bool) -> ShellScript {
        let flag = |on: bool| if on { "1" } else { "" };
        let tilde = self.repo == "~" || self.repo.starts_with("~/");
        ShellScript::new()
            .var("R", &self.repo)
            .path_var("RX", if tilde { &self.repo } else { "" })
            .var("TILDE", flag(tilde))
            .path_var("D", self.dest.as_deref().unwrap_or_default())
            .var("V", &self.version)
            .var("REMOTE", &self.remote)
            .var("FORCE", flag(self.force))
            .var(
                "DEPTH",
                self.depth.map(|d| d.to_string()).unwrap_or_default(),
            )
            .var("CLONE", flag(self.clone))
            .var("UPDATE", flag(self.update))
            .var("BARE", flag(self.bare))
            .var("SINGLE", flag(self.single_branch))
            .var("RECURSIVE", flag(self.recursive))
            .var("CHECK", flag(check))
            .var("UMASK", self.umask.as_deref().unwrap_or_default())
            .path_var("EXE", self.executable.as_deref().unwrap_or_default())
            .var("SSHOPTS", self.ssh_opts.as_deref().unwrap_or_default())
            .var("SSHOPTS_SET", flag(self.ssh_opts.is_some()))
            .var("ACCEPT_HOST", flag(self.accept_hostkey))
            .var("ACCEPT_NEW", flag(self.accept_newhostkey))
            .path_var("KEY", self.key_file.as_deref().unwrap_or_default())
            .code(GIT_SCRIPT)
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let script = self.script(ctx.check);
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        let answer = Answer::read(&out.stdout_str());
        if !out.success() && answer.failed.is_none() {
            return Ok(Outcome::failed(super::file::last_line(&out.stderr_str())));
        }
        Ok(answer.outcome())
    }
}

super::action_by_async_run!(Git);

/// What `git.sh` answered: its `key=value` records.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    before: Option<String>,
    after: Option<String>,
    changed: bool,
    /// `true`, `false`, or Python's falsy `None`/`''` (check mode).
    remote_url_changed: Option<String>,
    submodules_changed: bool,
    warnings: Vec<String>,
    msg: Option<String>,
    failed: Option<String>,
    /// A failure that keeps the result so far (ansible-core's
    /// `fail_json(msg, **result)`); other failures carry only `msg`.
    keep: bool,
}

impl Answer {
    fn read(text: &str) -> Answer {
        let mut a = Answer::default();
        for record in text.split('\0') {
            let Some((key, value)) = record.split_once('=') else {
                continue;
            };
            let value = value.to_owned();
            match key {
                "before" => a.before = Some(value),
                "after" => a.after = Some(value),
                "changed" => a.changed = true,
                "submodules_changed" => a.submodules_changed = true,
                "remote_url_changed" => a.remote_url_changed = Some(value),
                "warning" => a.warnings.push(value),
                "msg" => a.msg = Some(value),
                "failed" => a.failed = Some(value),
                "keep" => a.keep = true,
                _ => {}
            }
        }
        a
    }

    fn outcome(self) -> Outcome {
        let mut o = match self.failed {
            Some(msg) if !self.keep => return Outcome::failed(msg),
            Some(msg) => Outcome::failed(msg),
            None => Outcome::changed(self.changed),
        };
        if let Some(msg) = self.msg.filter(|_| !o.failed) {
            o = o.with_msg(msg);
        }
        o = o.with("before", self.before.map_or(Value::Null, Value::String));
        if let Some(after) = self.after {
            o = o.with("after", after);
        }
        if let Some(ruc) = self.remote_url_changed {
            let v = match ruc.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "empty" => Value::String(String::new()),
                _ => Value::Null,
            };
            o = o.with("remote_url_changed", v);
        }
        if self.submodules_changed {
            o = o.with("submodules_changed", true);
        }
        if !self.warnings.is_empty() {
            let list = self.warnings.into_iter().map(Value::String).collect();
            o = o.with("warnings", Value::Array(list));
        }
        o
    }
}

/// Python's `int(text, 8)`, written back in octal digits.
fn octal(text: &str) -> Option<String> {
    let t = text.trim().replace('_', "");
    let digits = t
        .strip_prefix("0o")
        .or_else(|| t.strip_prefix("0O"))
        .unwrap_or(&t);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|_| !digits.starts_with(['+', '-']))
        .map(|n| format!("{n:o}"))
}

/// `os.path.abspath`'s normalisation of a path (`//`, `.`, `..`, a
/// trailing `/`); a relative path stays relative (the host makes it
/// absolute), a leading `~/` stays for the host to expand.
fn normalize(path: &str) -> String {
    let (prefix, rest) = if path == "~" {
        return path.to_owned();
    } else if let Some(rest) = path.strip_prefix("~/") {
        ("~/", rest)
    } else if let Some(rest) = path.strip_prefix('/') {
        ("/", rest)
    } else {
        ("", path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if prefix == "/" => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (prefix, joined.is_empty()) {
        ("~/", true) => "~".into(),
        ("", true) => ".".into(),
        _ => format!("{prefix}{joined}"),
    }
}

const GIT_SCRIPT: &str = include_str!("git.sh");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| Git::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"dest": "/d"})).is_err());
        assert!(build(serde_json::json!({"repo": "/r", "dest": "/d", "refspec": "x"})).is_err());
        assert_eq!(
            build(serde_json::json!({"repo": "/r", "umask": 18})).unwrap_err(),
            "umask must be defined as a quoted octal integer"
        );
        assert_eq!(
            build(serde_json::json!({"repo": "/r", "umask": "089"})).unwrap_err(),
            "umask must be an octal integer"
        );
        assert_eq!(
            build(serde_json::json!({"repo": "/r", "version": "--upload-pack=x"})).unwrap_err(),
            "`version` may not begin with `-` (git would take it for an option)"
        );
        assert!(
            build(
                serde_json::json!({"repo": "/r", "accept_hostkey": true, "accept_newhostkey": true})
            )
            .is_err()
        );
        let g = Git::new(parse_args(serde_json::json!({"name": "/r", "umask": "0o027"})).unwrap())
            .unwrap();
        assert_eq!((g.repo.as_str(), g.umask.as_deref()), ("/r", Some("27")));
    }

    #[test]
    fn dest_is_normalised_as_abspath_does() {
        assert_eq!(normalize("/srv//app/./x/../y/"), "/srv/app/y");
        assert_eq!(normalize("/../a"), "/a");
        assert_eq!(normalize("~/src/"), "~/src");
        assert_eq!(normalize("a/../../b"), "../b");
    }

    #[test]
    fn answer_records() {
        let a = Answer::read("before=abc\0warning=w1\0after=def\0changed=1\0");
        let o = a.outcome();
        assert!(o.changed && !o.failed);
        assert_eq!(o.result["before"], "abc");
        assert_eq!(o.result["warnings"], serde_json::json!(["w1"]));
        let o = Answer::read("before=abc\0keep=1\0failed=Local modifications\0").outcome();
        assert!(o.failed);
        assert_eq!(o.result["before"], "abc");
        let o = Answer::read("before=abc\0failed=Failed to checkout x\0").outcome();
        assert!(o.failed && o.result.is_empty());
    }
}
