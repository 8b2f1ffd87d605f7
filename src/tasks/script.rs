//! `script`: a script of the control machine copied to the host and run
//! there, as Ansible's `script` action does: always "changed" when it runs,
//! failed on a non-zero exit ("non-zero return code"). `creates`/`removes`
//! skip it (skipped, not ok, as in ansible-core); in check mode it is
//! skipped unless `creates`/`removes` decide, then reported changed.
//!
//! The line is `path args...`: the path is looked up in the playbook's
//! `files/` and then beside the playbook; the arguments are handed to the
//! host's shell as written (Ansible runs the line through the shell too).
//! `executable` runs the script with that interpreter.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::{ShellScript, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "script",
    args: &[
        "_raw_params",
        "cmd",
        "chdir",
        "creates",
        "removes",
        "executable",
    ],
    free_form: true,
    any_name: false,
    build: |args| {
        let a: Args = parse_args(args)?;
        Ok(Box::new(ScriptRun::from_args(a)?))
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "_raw_params")]
    raw: Option<String>,
    cmd: Option<String>,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    executable: Option<String>,
}

struct ScriptRun {
    /// The script's local path, as written.
    path: String,
    /// What follows the path on the line: shell words, as the user wrote them.
    rest: String,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    executable: Option<String>,
}

impl ScriptRun {
    fn from_args(a: Args) -> Result<Self, String> {
        let line = match (a.raw, a.cmd) {
            (Some(_), Some(_)) => {
                return Err("give either a free-form line or `cmd`, not both".into());
            }
            (Some(l), None) | (None, Some(l)) => l,
            (None, None) => return Err("one of the following is required: _raw_params, cmd".into()),
        };
        let (first, rest) = split_first_word(line.trim());
        let path = shlex::split(first)
            .and_then(|w| w.into_iter().next())
            .filter(|w| !w.is_empty())
            .ok_or_else(|| format!("no script named in `{line}`"))?;
        if let Some(dir) = &a.chdir
            && !dir.starts_with('/')
        {
            return Err(format!(
                "chdir {dir} must be an absolute path for a Unix-aware remote node"
            ));
        }
        Ok(Self {
            path,
            rest: rest.to_owned(),
            chdir: a.chdir,
            creates: a.creates,
            removes: a.removes,
            executable: a.executable,
        })
    }

    /// Where the script is on this machine: `files/` first, then beside
    /// the playbook, as Ansible's search for a `files` needle goes.
    fn local_path(&self, base: &Path) -> Option<PathBuf> {
        let written = Path::new(&self.path);
        if written.is_absolute() {
            return written.is_file().then(|| written.to_path_buf());
        }
        [base.join("files").join(written), base.join(written)]
            .into_iter()
            .find(|p| p.is_file())
    }

    /// The host's side: the script arrives on stdin into a private
    /// temporary directory, runs (in `chdir`, under `executable`), and the
    /// directory goes whatever the script's exit.
    fn host_script(&self) -> ShellScript {
        let name = Path::new(&self.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let mut s = ShellScript::new()
            .var("N", name)
            .code(
                r#"T=$(mktemp -d) || { echo "cannot create a temporary directory" >&2; exit 1; }"#,
            )
            .code(r#"S="$T/$N""#)
            .code(r#"cat > "$S" && chmod 0700 "$S" || { rm -rf "$T"; exit 1; }"#);
        if let Some(dir) = &self.chdir {
            s = s
                .var("D", dir)
                .code(r#"cd -- "$D" || { rm -rf "$T"; exit 1; }"#);
        }
        s = match &self.executable {
            // Unquoted on purpose: `executable: bash -x` is an interpreter
            // and its flags, split into words as Ansible's line splits them.
            Some(exe) => s.var("E", exe).fragment(r#"$E "$S" "#),
            None => s.fragment(r#""$S" "#),
        };
        // The arguments are the user's own shell words, as in Ansible's line.
        s.user_code(&self.rest)
            .code(r#"rc=$?; rm -rf "$T"; exit $rc"#)
    }
}

/// Points a role task's script at the role's `files/` when it is there
/// (Ansible searches the role first): the line's first word becomes the
/// quoted path of the role's copy, the rest of the line is kept.
pub fn in_role(args: &mut Value, files: &Path) {
    let key = if args.get("_raw_params").is_some() {
        "_raw_params"
    } else {
        "cmd"
    };
    let Some(Value::String(line)) = args.get_mut(key) else {
        return;
    };
    let (first, rest) = split_first_word(line.trim());
    let Some(path) = shlex::split(first).and_then(|w| w.into_iter().next()) else {
        return;
    };
    let candidate = files.join(&path);
    if line.contains("{{") || Path::new(&path).is_absolute() || !candidate.is_file() {
        return;
    }
    let quoted = crate::transport::quote(&candidate.display().to_string());
    *line = if rest.is_empty() {
        quoted
    } else {
        format!("{quoted} {rest}")
    };
}

/// Splits a line into its first shell word (quotes and backslashes kept)
/// and the rest.
fn split_first_word(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

impl Action for ScriptRun {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            if let Some(reason) = self.nothing_to_do(ctx).await? {
                return Ok(Outcome {
                    skipped: true,
                    ..Outcome::ok()
                }
                .with_msg(reason));
            }
            let Some(local) = self.local_path(ctx.base_dir) else {
                return Ok(Outcome::failed(format!(
                    "Could not find or access '{}'",
                    self.path
                )));
            };
            if ctx.check {
                if self.creates.is_some() || self.removes.is_some() {
                    return Ok(Outcome::changed(true));
                }
                return Ok(Outcome {
                    skipped: true,
                    ..Outcome::ok()
                }
                .with_msg("Check mode is not supported for this task."));
            }
            let body = match std::fs::read(&local) {
                Ok(body) => body,
                Err(e) => {
                    return Ok(Outcome::failed(format!(
                        "cannot read {}: {e}",
                        local.display()
                    )));
                }
            };
            let script = self.host_script();
            let out = ctx.conn.exec(ctx.script(&script).stdin(&body)).await?;
            let stdout = out.stdout_str();
            let stderr = out.stderr_str();
            let mut outcome = Outcome::changed(true)
                .with("rc", out.status)
                .with("stdout_lines", stdout.lines().collect::<Vec<_>>())
                .with("stderr_lines", stderr.lines().collect::<Vec<_>>())
                .with("stdout", stdout.clone())
                .with("stderr", stderr);
            if !out.success() {
                outcome.failed = true;
                outcome.msg = Some("non-zero return code".into());
            }
            Ok(outcome)
        })
    }
}

impl ScriptRun {
    /// `creates`/`removes`: why the script is skipped, if it is (the
    /// messages are ansible-core's).
    async fn nothing_to_do(
        &self,
        ctx: &ActionContext<'_>,
    ) -> Result<Option<String>, TransportError> {
        if let Some(c) = &self.creates {
            let test = ShellScript::new().var("C", c).code(r#"[ -e "$C" ]"#);
            if ctx.conn.exec(ctx.script(&test)).await?.success() {
                return Ok(Some(format!("{c} exists, matching creates option")));
            }
        }
        if let Some(r) = &self.removes {
            let test = ShellScript::new().var("R", r).code(r#"[ -e "$R" ]"#);
            if !ctx.conn.exec(ctx.script(&test)).await?.success() {
                return Ok(Some(format!("{r} does not exist, matching removes option")));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(v: serde_json::Value) -> Result<ScriptRun, String> {
        ScriptRun::from_args(parse_args(v)?)
    }

    #[test]
    fn the_path_is_the_first_word_and_the_rest_is_kept_as_written() {
        let s =
            build(serde_json::json!({"_raw_params": "'my script.sh' a \"b c\" $HOME"})).unwrap();
        assert_eq!(s.path, "my script.sh");
        assert_eq!(s.rest, "a \"b c\" $HOME");
        let s = build(serde_json::json!({"cmd": "run.sh"})).unwrap();
        assert_eq!((s.path.as_str(), s.rest.as_str()), ("run.sh", ""));
    }

    #[test]
    fn arguments_are_checked() {
        assert!(build(serde_json::json!({})).is_err());
        assert!(build(serde_json::json!({"_raw_params": "a.sh", "cmd": "b.sh"})).is_err());
        assert!(build(serde_json::json!({"_raw_params": "a.sh", "chdir": "rel"})).is_err());
        assert!(build(serde_json::json!({"_raw_params": "a.sh", "stdin": "x"})).is_err());
    }

    /// A script in a temporary directory that records its arguments and
    /// where it ran into `out`, and exits with `$EXIT`.
    fn recorder() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("rec.sh");
        std::fs::write(
            &script,
            "out=$1; shift; { printf '%s|' \"$@\"; pwd; } > \"$out\"; echo hi; echo oops >&2; exit ${EXIT:-0}\n",
        )
        .unwrap();
        let out = dir.path().join("out").display().to_string();
        (dir, script.display().to_string(), out)
    }

    fn run(args: serde_json::Value, check: bool) -> Outcome {
        super::super::file::testing::run_local(&SPEC, args, check)
    }

    #[test]
    fn runs_with_its_arguments_in_chdir_and_registers_what_it_printed() {
        let (dir, script, out) = recorder();
        let line = format!("{script} {out} a 'b c'");
        let o = run(
            serde_json::json!({"_raw_params": line, "chdir": "/tmp"}),
            false,
        );
        assert!(o.changed && !o.failed && !o.skipped, "{o:?}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a|b c|/tmp\n");
        assert_eq!(o.result["rc"], 0);
        assert_eq!(o.result["stdout"], "hi\n");
        assert_eq!(o.result["stderr"], "oops\n");
        drop(dir);
    }

    #[test]
    fn a_non_zero_exit_fails_with_its_code() {
        let (_dir, script, out) = recorder();
        let line = format!("{script} {out}; EXIT=3 sh {script} {out}");
        let o = run(serde_json::json!({"_raw_params": line}), false);
        assert!(o.failed, "{o:?}");
        assert_eq!(o.msg.as_deref(), Some("non-zero return code"));
        assert_eq!(o.result["rc"], 3);
    }

    #[test]
    fn creates_and_removes_skip_and_check_mode_runs_nothing() {
        let (_dir, script, out) = recorder();
        let line = format!("{script} {out}");
        let o = run(
            serde_json::json!({"_raw_params": line, "creates": script}),
            false,
        );
        assert!(o.skipped && !o.changed, "{o:?}");
        assert!(o.msg.unwrap().ends_with("exists, matching creates option"));
        let o = run(
            serde_json::json!({"_raw_params": line, "removes": out}),
            false,
        );
        assert!(o.skipped && !o.changed, "{o:?}");
        // Check mode: skipped without creates/removes, changed when they
        // say it would run; neither runs it.
        let o = run(serde_json::json!({"_raw_params": line}), true);
        assert!(o.skipped && !o.changed, "{o:?}");
        let o = run(
            serde_json::json!({"_raw_params": line, "creates": out}),
            true,
        );
        assert!(o.changed && !o.skipped, "{o:?}");
        assert!(!Path::new(&out).exists(), "check mode ran the script");
    }

    #[test]
    fn a_missing_script_fails_naming_it() {
        let o = run(
            serde_json::json!({"_raw_params": "/no/such/script.sh arg"}),
            false,
        );
        assert!(o.failed, "{o:?}");
        assert_eq!(
            o.msg.as_deref(),
            Some("Could not find or access '/no/such/script.sh'")
        );
    }

    #[test]
    fn the_copy_on_the_host_is_removed_after_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("where.sh");
        std::fs::write(&script, "dirname \"$0\"; exit 4\n").unwrap();
        let o = run(
            serde_json::json!({"_raw_params": script.display().to_string()}),
            false,
        );
        let copy_dir = o.result["stdout"].as_str().unwrap().trim().to_owned();
        assert!(copy_dir.starts_with('/') && copy_dir != dir.path().display().to_string());
        assert!(!Path::new(&copy_dir).exists(), "{copy_dir} is still there");
    }
}
