//! `command` and `shell`: run a program; always "changed" unless
//! `creates`/`removes` say there is nothing to do.
//!
//! `command` passes its words to the program without a shell (each word is
//! quoted), `shell` hands the line to `sh`, as in Ansible.

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::{ShellScript, TransportError};

const ARGS: &[&str] = &[
    "_raw_params",
    "cmd",
    "argv",
    "chdir",
    "creates",
    "removes",
    "stdin",
];

pub static COMMAND: ModuleSpec = ModuleSpec {
    name: "command",
    args: ARGS,
    free_form: true,
    any_name: false,
    build: |args| build(args, false),
};

pub static SHELL: ModuleSpec = ModuleSpec {
    name: "shell",
    args: ARGS,
    free_form: true,
    any_name: false,
    build: |args| build(args, true),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "_raw_params")]
    raw: Option<String>,
    cmd: Option<String>,
    argv: Option<Vec<String>>,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    stdin: Option<String>,
}

/// What runs: the user's own shell code (`shell:`), or words that are
/// data only (`command:`, `argv:`).
enum Line {
    Shell(String),
    Argv(Vec<String>),
}

struct Command {
    line: Line,
    /// What is shown to the operator and registered as `cmd`.
    display: String,
    chdir: Option<String>,
    creates: Option<String>,
    removes: Option<String>,
    stdin: Option<String>,
}

/// The shell line a `shell` (or, with `shell` false, `command`) task with
/// these rendered `args` runs, `chdir` included: for a host that must run
/// it on its own, without convoy (the magic rollback timer). `creates`,
/// `removes` and `stdin` need convoy's checks around the line: refused.
pub fn host_line(args: crate::vars::Value, shell: bool) -> Result<String, String> {
    host_command(args, shell).map(|c| c.line)
}

/// A command as a host runs it on its own ([`host_line`]), and how it is
/// shown and registered (`cmd`).
pub struct HostCommand {
    pub line: String,
    pub display: String,
}

/// [`host_line`], with the command as the task's result names it.
pub fn host_command(args: crate::vars::Value, shell: bool) -> Result<HostCommand, String> {
    let a: Args = parse_args(args.clone())?;
    if a.creates.is_some() || a.removes.is_some() || a.stdin.is_some() {
        return Err("`creates`, `removes` and `stdin` cannot be used here".into());
    }
    let command = parse(args, shell)?;
    Ok(HostCommand {
        line: command.script().text().to_owned(),
        display: command.display,
    })
}

/// The result of a command that ran: always changed, failed on a non-zero
/// status. Shared by the task and by the switch hooks that run in the
/// switch's own round trip, so both report the same.
pub fn ran(display: &str, rc: i32, stdout: &str, stderr: &str) -> Outcome {
    let stdout = stdout.trim_end_matches('\n').to_owned();
    let stderr = stderr.trim_end_matches('\n').to_owned();
    let mut outcome = Outcome::changed(true)
        .with("cmd", display.to_owned())
        .with("rc", rc)
        .with("stdout_lines", stdout.lines().collect::<Vec<_>>())
        .with("stderr_lines", stderr.lines().collect::<Vec<_>>())
        .with("stdout", stdout)
        .with("stderr", stderr.clone());
    if rc != 0 {
        // Registered as ansible-core's module returns it (a rescue reads
        // `ansible_failed_result.msg`); the line shown says more.
        outcome = outcome.with("msg", "non-zero return code");
        outcome.failed = true;
        outcome.msg = Some(if stderr.is_empty() {
            format!("non-zero return code {rc}")
        } else {
            format!("non-zero return code {rc}: {}", last_line(&stderr))
        });
    }
    outcome
}

impl Command {
    /// The script that runs the command: in `chdir`, the line as the user
    /// wrote it (`shell`) or its words quoted (`command`).
    fn script(&self) -> ShellScript {
        let mut line = ShellScript::new();
        if let Some(dir) = &self.chdir {
            line = line.var("D", dir).code("cd -- \"$D\" || exit");
        }
        match &self.line {
            Line::Shell(code) => line.user_code(code),
            Line::Argv(words) => line.args(words).code("\"$@\""),
        }
    }
}

fn build(args: crate::vars::Value, shell: bool) -> Result<Box<dyn Action>, String> {
    Ok(Box::new(parse(args, shell)?))
}

fn parse(args: crate::vars::Value, shell: bool) -> Result<Command, String> {
    let a: Args = parse_args(args)?;
    let (line, display) = match (a.raw.or(a.cmd), a.argv) {
        (Some(text), None) if shell => (Line::Shell(text.clone()), text),
        (Some(text), None) => {
            let words =
                shlex::split(&text).ok_or_else(|| format!("cannot split command `{text}`"))?;
            if words.is_empty() {
                return Err("no command given".into());
            }
            (Line::Argv(words), text)
        }
        (None, Some(argv)) if !argv.is_empty() => {
            let display = argv.join(" ");
            (Line::Argv(argv), display)
        }
        (Some(_), Some(_)) => return Err("give either a command line or `argv`, not both".into()),
        _ => return Err("no command given".into()),
    };
    Ok(Command {
        line,
        display,
        chdir: a.chdir,
        creates: a.creates,
        removes: a.removes,
        stdin: a.stdin,
    })
}

impl Action for Command {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            if let Some(reason) = self.nothing_to_do(ctx).await? {
                return Ok(Outcome::ok()
                    .with_msg(reason)
                    .with("rc", 0)
                    .with("cmd", self.display.clone()));
            }
            if ctx.check {
                // Ansible skips commands in check mode; convoy says plainly that it would run them.
                return Ok(Outcome::changed(true)
                    .with_msg(format!("would run: {}", self.display))
                    .with("cmd", self.display.clone()));
            }
            let line = self.script();
            let stdin = self.stdin.as_ref().map(|s| format!("{s}\n"));
            let mut script = ctx.script(&line);
            if let Some(data) = &stdin {
                script = script.stdin(data.as_bytes());
            }
            let out = ctx.conn.exec(script).await?;
            let outcome = ran(
                &self.display,
                out.status,
                &out.stdout_str(),
                &out.stderr_str(),
            );
            Ok(outcome)
        })
    }
}

impl Command {
    /// `creates`/`removes`: the reason the command is skipped, if it is.
    async fn nothing_to_do(
        &self,
        ctx: &ActionContext<'_>,
    ) -> Result<Option<String>, TransportError> {
        let test = match (&self.creates, &self.removes) {
            (None, None) => return Ok(None),
            (Some(c), None) => ShellScript::new().var("C", c).code("[ -e \"$C\" ]"),
            (None, Some(r)) => ShellScript::new().var("R", r).code("[ ! -e \"$R\" ]"),
            (Some(c), Some(r)) => ShellScript::new()
                .var("C", c)
                .var("R", r)
                .code("[ -e \"$C\" ] || [ ! -e \"$R\" ]"),
        };
        let out = ctx.conn.exec(ctx.script(&test)).await?;
        Ok(out.success().then(|| match &self.creates {
            Some(c) => format!("skipped, since {c} exists"),
            None => format!(
                "skipped, since {} does not exist",
                self.removes.as_deref().unwrap_or_default()
            ),
        }))
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
}
