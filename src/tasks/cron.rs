//! `cron`: a job (or a variable, `env`) in a user's crontab or in a file
//! under /etc/cron.d, as ansible-core's `cron` module keeps it: each job
//! under its `#Ansible: NAME` line (see [`super::crontab`]), so that
//! crontabs written by either tool are managed by the other. One round
//! trip reads the crontab (`crontab [-u USER] -l`, or the file); the edit
//! is made here; a second one writes it back (`crontab [-u USER] FILE`,
//! or the file itself, removed when its last job goes) only when it
//! changed. Check mode reads only; `--diff` shows the crontab before and
//! after under ansible-core's headers (`crontab for user "convoy"`). The
//! registered result has ansible-core's keys (`jobs`, `envs`,
//! `cron_file`, `backup_file`).
//!
//! ansible-core's warnings (a cron file's name with dots, a job with
//! line breaks) are not given. Platforms other than Linux's cron (Solaris, AIX, HP-UX) are not handled.

use regex::Regex;
use serde::Deserialize;

use super::crontab::{Crontab, Found};
use super::file::lenient;
use super::{ActionContext, FileDiff, ModuleSpec, Outcome, parse_args};
use crate::transport::{ExecOutput, ShellScript, TransportError};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "cron",
    args: &[
        "name",
        "user",
        "job",
        "value",
        "cron_file",
        "state",
        "backup",
        "minute",
        "hour",
        "day",
        "dom",
        "month",
        "weekday",
        "dow",
        "special_time",
        "disabled",
        "env",
        "insertafter",
        "insertbefore",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Cron::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    user: Option<String>,
    #[serde(default, alias = "value", deserialize_with = "lenient::opt_string")]
    job: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    cron_file: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    backup: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    minute: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    hour: Option<String>,
    #[serde(default, alias = "dom", deserialize_with = "lenient::opt_string")]
    day: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    month: Option<String>,
    #[serde(default, alias = "dow", deserialize_with = "lenient::opt_string")]
    weekday: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    special_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    disabled: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    env: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    insertafter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    insertbefore: Option<String>,
}

const SPECIAL_TIMES: [&str; 7] = [
    "reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly",
];

/// What the task keeps in the crontab.
enum Entry {
    /// A job line (already formatted) under its marker.
    Job(Option<String>),
    /// A variable: its `NAME=` pattern and `NAME="value"` line; where a new
    /// one goes (`insertafter`/`insertbefore` another variable).
    Env {
        pattern: Regex,
        decl: Option<String>,
        after: Option<String>,
        before: Option<String>,
    },
}

struct Cron {
    name: String,
    user: Option<String>,
    /// As given (the result's `cron_file`), and as a path.
    cron_file: Option<(String, String)>,
    present: bool,
    backup: bool,
    entry: Entry,
}

impl Cron {
    fn new(a: Args) -> Result<Self, String> {
        let Some(name) = a.name else {
            return Err("missing required arguments: name".into());
        };
        let present = match a.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            other => {
                return Err(format!(
                    "value of state must be one of: present, absent, got: {other}"
                ));
            }
        };
        if let Some(s) = &a.special_time
            && !SPECIAL_TIMES.contains(&s.as_str())
        {
            return Err(format!(
                "value of special_time must be one of: {}, got: {s}",
                SPECIAL_TIMES.join(", ")
            ));
        }
        if a.insertafter.is_some() && a.insertbefore.is_some() {
            return Err("parameters are mutually exclusive: insertafter|insertbefore".into());
        }
        let cron_file = match a.cron_file {
            None => None,
            Some(f) if f == "/etc/crontab" => {
                return Err(
                    "Will not manage /etc/crontab via cron_file, see documentation.".into(),
                );
            }
            Some(f) => {
                let path = if f.starts_with('/') {
                    f.clone()
                } else {
                    format!("/etc/cron.d/{f}")
                };
                Some((f, path))
            }
        };
        let star = |v: Option<String>| v.unwrap_or_else(|| "*".into());
        let times = [
            star(a.minute),
            star(a.hour),
            star(a.day),
            star(a.month),
            star(a.weekday),
        ];
        if a.special_time.is_some() && times.iter().any(|t| t != "*") {
            return Err("You must specify time and date fields or special time.".into());
        }
        if present {
            if cron_file.is_some() && a.user.is_none() {
                return Err(
                    "To use cron_file=... parameter you must specify user=... as well".into(),
                );
            }
            if a.job.is_none() {
                return Err("You must specify 'job' to install a new cron job or variable".into());
            }
            if (a.insertafter.is_some() || a.insertbefore.is_some()) && !a.env {
                return Err(
                    "Insertafter and insertbefore parameters are valid only with env=yes".into(),
                );
            }
        }
        let entry = if a.env {
            if name.contains(' ') {
                return Err("Invalid name for environment variable".into());
            }
            let pattern = Regex::new(&format!("^{name}="))
                .map_err(|e| format!("name {name:?} is not a valid regular expression: {e}"))?;
            Entry::Env {
                pattern,
                decl: present.then(|| format!("{name}=\"{}\"", a.job.unwrap_or_default())),
                after: a.insertafter,
                before: a.insertbefore,
            }
        } else {
            let line = a.job.filter(|_| present).map(|job| {
                let job = job.trim_matches(['\r', '\n']);
                let prefix = if a.disabled { "#" } else { "" };
                let user = match (&cron_file, &a.user) {
                    (Some(_), Some(u)) => format!("{u} "),
                    _ => String::new(),
                };
                match &a.special_time {
                    Some(s) => format!("{prefix}@{s} {user}{job}"),
                    None => format!("{prefix}{} {user}{job}", times.join(" ")),
                }
            });
            Entry::Job(line)
        };
        Ok(Self {
            name,
            user: a.user,
            cron_file,
            present,
            backup: a.backup,
            entry,
        })
    }

    /// The diff's header for this crontab.
    fn header(&self) -> String {
        match (&self.cron_file, &self.user) {
            (Some((_, path)), _) => path.clone(),
            (None, Some(u)) => format!("crontab for user \"{u}\""),
            (None, None) => "crontab".into(),
        }
    }

    /// Reads the crontab: its text on stdout; `convoy_rc=N` (crontab -l's
    /// status, `file`/`nofile` for a cron file) as stderr's last line.
    fn read_script(&self) -> ShellScript {
        let script = ShellScript::new()
            .var("U", self.user.clone().unwrap_or_default())
            .var(
                "CF",
                self.cron_file.as_ref().map(|f| f.1.as_str()).unwrap_or(""),
            );
        script.code(READ_SCRIPT)
    }

    async fn read(
        &self,
        ctx: &ActionContext<'_>,
    ) -> Result<Result<Crontab, Outcome>, TransportError> {
        let out = ctx.conn.exec(ctx.script(&self.read_script())).await?;
        let rc = last_status(&out);
        let text = out.stdout_str();
        Ok(match rc.as_deref() {
            Some("file") => Ok(Crontab::from_file(Some(&text))),
            Some("nofile") => Ok(Crontab::from_file(None)),
            Some("0" | "1") => Ok(Crontab::from_listing(&text)),
            Some("nocrontab") => Err(Outcome::failed(
                "Failed to find required executable \"crontab\" in paths: $PATH:/usr/sbin:/sbin",
            )),
            _ => Err(Outcome::failed("Unable to read crontab")),
        })
    }

    /// The edit, as ansible-core's `main` makes it; whether it changed.
    fn edit(&self, tab: &mut Crontab) -> Result<bool, String> {
        let mut changed = false;
        match &self.entry {
            Entry::Env {
                pattern,
                decl,
                after,
                before,
            } => match (tab.find_env(pattern), decl) {
                (None, Some(decl)) => {
                    match after.as_ref().or(before.as_ref()) {
                        None => tab.lines.insert(0, decl.clone()),
                        Some(other) => {
                            let other_re = Regex::new(&format!("^{other}="))
                                .map_err(|e| format!("{other:?}: {e}"))?;
                            let Some((at, _)) = tab.find_env(&other_re) else {
                                return Err(format!("Variable named '{other}' not found."));
                            };
                            let at = if after.is_some() { at + 1 } else { at };
                            tab.lines.insert(at, decl.clone());
                        }
                    }
                    changed = true;
                }
                (Some((_, old)), Some(decl)) if old != *decl => {
                    tab.update_env(pattern, Some(decl));
                    changed = true;
                }
                (Some(_), None) => {
                    tab.update_env(pattern, None);
                    changed = true;
                }
                _ => {}
            },
            Entry::Job(Some(job)) => match tab.find_job(&self.name, Some(job)) {
                Found::No => {
                    tab.add_job(&self.name, job);
                    changed = true;
                }
                Found::Marked(old) if old == *job => {}
                Found::Marked(_) | Found::Adopted => {
                    tab.update_job(&self.name, Some(job));
                    changed = true;
                }
            },
            Entry::Job(None) => {
                if tab.find_job(&self.name, None) != Found::No {
                    tab.update_job(&self.name, None);
                    changed = true;
                }
            }
        }
        Ok(changed || tab.lacks_final_newline())
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let mut tab = match self.read(ctx).await? {
            Ok(tab) => tab,
            Err(failed) => return Ok(failed),
        };
        let before = tab.existing.clone();
        let original = tab.render();
        let changed = match self.edit(&mut tab) {
            Ok(changed) => changed,
            Err(msg) => return Ok(Outcome::failed(msg)),
        };
        let diff = |after: String, path: String| FileDiff {
            path,
            before: before.clone(),
            after,
        };
        // A cron file whose last job went is removed, and the task ends
        // there, as ansible-core's does (no jobs, envs nor backup).
        if let (Some((given, path)), false, Entry::Job(None)) =
            (&self.cron_file, self.present, &self.entry)
            && changed
            && tab.is_empty()
        {
            let mut outcome = Outcome::changed(true)
                .with("cron_file", given.clone())
                .with("state", "absent");
            // ansible-core registers its `diff` here, empty without --diff.
            let mut registered = serde_json::Map::new();
            if ctx.diff {
                registered.insert("before".into(), before.clone().into());
                registered.insert("before_header".into(), self.header().into());
                registered.insert("after".into(), "".into());
                registered.insert("after_header".into(), "/dev/null".into());
                outcome.diffs.push(diff(String::new(), "/dev/null".into()));
            }
            outcome = outcome.with("diff", serde_json::Value::Object(registered));
            if !ctx.check {
                let script = ShellScript::new().var("CF", path).code("rm -- \"$CF\"");
                let out = ctx.conn.exec(ctx.script(&script)).await?;
                outcome.changed = out.success();
            }
            return Ok(outcome);
        }
        let mut outcome = Outcome::changed(changed)
            .with("jobs", tab.job_names())
            .with("envs", tab.env_names());
        if changed && ctx.diff {
            outcome.diffs.push(diff(tab.render(), self.header()));
        }
        if changed && !ctx.check {
            let written = self.write(ctx, &tab.render(), &original).await?;
            match written {
                Ok(backup) => {
                    if let Some(backup) = backup {
                        outcome = outcome.with("backup_file", backup);
                    }
                }
                Err(msg) => return Ok(Outcome::failed(msg)),
            }
        }
        if let Some((given, _)) = &self.cron_file {
            outcome = outcome.with("cron_file", given.clone());
        }
        Ok(outcome)
    }

    /// Writes `text` (and, with `backup`, `original` to a new file in
    /// /tmp first): the backup's path, or crontab(1)'s complaint.
    async fn write(
        &self,
        ctx: &ActionContext<'_>,
        text: &str,
        original: &str,
    ) -> Result<Result<Option<String>, String>, TransportError> {
        let mut input = Vec::new();
        if self.backup {
            input.extend_from_slice(original.as_bytes());
        }
        input.extend_from_slice(text.as_bytes());
        let script = ShellScript::new()
            .var("U", self.user.clone().unwrap_or_default())
            .var(
                "CF",
                self.cron_file.as_ref().map(|f| f.1.as_str()).unwrap_or(""),
            )
            .var(
                "BACKUP",
                if self.backup {
                    original.len().to_string()
                } else {
                    String::new()
                },
            )
            .code(WRITE_SCRIPT);
        let out = ctx.conn.exec(ctx.script(&script).stdin(&input)).await?;
        if last_status(&out).as_deref() != Some("0") {
            let err = out.stderr_str();
            let err: Vec<&str> = err
                .lines()
                .filter(|l| !l.starts_with("convoy_rc="))
                .collect();
            return Ok(Err(err.join("\n")));
        }
        Ok(Ok(out.field("backup")))
    }
}

/// The value of the last `convoy_rc=` line of stderr.
fn last_status(out: &ExecOutput) -> Option<String> {
    out.stderr_str()
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("convoy_rc="))
        .map(str::to_owned)
}

/// See [`Cron::read_script`]. crontab(1) is asked about another user only
/// when that user is not the one running it, as ansible-core does.
const READ_SCRIPT: &str = r#"PATH=$PATH:/usr/sbin:/sbin
if [ -n "$CF" ]; then
  if [ -f "$CF" ] && cat -- "$CF"; then echo "convoy_rc=file" >&2; else echo "convoy_rc=nofile" >&2; fi
  exit 0
fi
command -v crontab >/dev/null 2>&1 || { echo "convoy_rc=nocrontab" >&2; exit 0; }
set -- -l
if [ -n "$U" ] && [ "$U" != "$(id -un)" ]; then set -- -u "$U" -l; fi
crontab "$@" 2>/dev/null
echo "convoy_rc=$?" >&2
"#;

/// See [`Cron::write`]: stdin holds the backup's bytes (`$BACKUP` of
/// them) and then the new crontab. A cron file is written in place (its
/// mode kept; a new one 0644); a user's crontab goes through a temporary
/// file and crontab(1), which checks it.
const WRITE_SCRIPT: &str = r#"PATH=$PATH:/usr/sbin:/sbin
umask 022
if [ -n "$BACKUP" ]; then
  b=$(mktemp /tmp/crontabXXXXXXXX) || { echo "convoy_rc=1" >&2; exit 0; }
  head -c "$BACKUP" > "$b"
  echo "backup=$b"
fi
if [ -n "$CF" ]; then
  cat > "$CF"
  echo "convoy_rc=$?" >&2
  exit 0
fi
t=$(mktemp /tmp/crontabXXXXXXXX) || { echo "convoy_rc=1" >&2; exit 0; }
cat > "$t"
chmod 0644 "$t"
set -- "$t"
if [ -n "$U" ] && [ "$U" != "$(id -un)" ]; then set -- -u "$U" "$t"; fi
crontab "$@"
rc=$?
rm -f -- "$t"
echo "convoy_rc=$rc" >&2
"#;

super::action_by_async_run!(Cron);

#[cfg(test)]
mod tests {
    use super::*;

    fn build(v: serde_json::Value) -> Result<Cron, String> {
        Cron::new(parse_args(v)?)
    }

    fn edited(v: serde_json::Value, text: &str) -> (String, bool) {
        let mut tab = Crontab::from_listing(text);
        let changed = build(v).unwrap().edit(&mut tab).unwrap();
        (tab.render(), changed)
    }

    #[test]
    fn job_lines_as_ansible_core_writes_them() {
        let (t, changed) = edited(
            serde_json::json!({"name": "a", "minute": 5, "hour": "2", "job": "ls\n"}),
            "",
        );
        assert_eq!((t.as_str(), changed), ("#Ansible: a\n5 2 * * * ls\n", true));
        assert_eq!(
            edited(
                serde_json::json!({"name": "a", "minute": 5, "hour": "2", "job": "ls"}),
                &t
            ),
            (t.clone(), false)
        );
        let (t, _) = edited(
            serde_json::json!({"name": "b", "special_time": "daily", "job": "x", "disabled": true,
                "user": "u", "cron_file": "f"}),
            "",
        );
        assert_eq!(t, "#Ansible: b\n#@daily u x\n");
        let (t, _) = edited(
            serde_json::json!({"name": "P", "env": true, "job": "/bin"}),
            "#Ansible: a\nx\n",
        );
        assert_eq!(t, "P=\"/bin\"\n#Ansible: a\nx\n");
        let (t, _) = edited(
            serde_json::json!({"name": "Q", "env": true, "job": "1", "insertafter": "P"}),
            "P=\"/bin\"\n#Ansible: a\nx\n",
        );
        assert_eq!(t, "P=\"/bin\"\nQ=\"1\"\n#Ansible: a\nx\n");
        assert_eq!(
            edited(
                serde_json::json!({"name": "a", "state": "absent"}),
                "#Ansible: a\nx"
            ),
            (String::new(), true)
        );
        // No change but a missing final newline: rewritten.
        assert_eq!(
            edited(serde_json::json!({"name": "z", "state": "absent"}), "x"),
            ("x\n".into(), true)
        );
    }

    #[test]
    fn arguments() {
        assert!(build(serde_json::json!({"name": "a", "job": "x"})).is_ok());
        for (args, msg) in [
            (
                serde_json::json!({"job": "x"}),
                "missing required arguments: name",
            ),
            (
                serde_json::json!({"name": "a", "job": "x", "special_time": "daily", "hour": "1"}),
                "You must specify time and date fields or special time.",
            ),
            (
                serde_json::json!({"name": "a", "job": "x", "cron_file": "f"}),
                "To use cron_file=... parameter you must specify user=... as well",
            ),
            (
                serde_json::json!({"name": "a"}),
                "You must specify 'job' to install a new cron job or variable",
            ),
            (
                serde_json::json!({"name": "a", "job": "x", "insertafter": "B"}),
                "Insertafter and insertbefore parameters are valid only with env=yes",
            ),
            (
                serde_json::json!({"name": "a b", "job": "x", "env": true}),
                "Invalid name for environment variable",
            ),
            (
                serde_json::json!({"name": "a", "job": "x", "cron_file": "/etc/crontab", "user": "r"}),
                "Will not manage /etc/crontab via cron_file, see documentation.",
            ),
        ] {
            assert_eq!(build(args).err().as_deref(), Some(msg));
        }
        assert!(
            build(serde_json::json!({"name": "a", "job": "x", "special_time": "often"})).is_err()
        );
        assert!(build(serde_json::json!({"name": "a", "job": "x", "minutes": "1"})).is_err());
    }
}
