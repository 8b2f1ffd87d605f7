//! `raw`: hand a line to the host's shell as it is, as Ansible's `raw`
//! does: always "changed", failed on a non-zero exit ("non-zero return
//! code"), skipped in check mode. `executable` names the shell that runs
//! the line (`executable -c line`).

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::{Script, ShellScript, TransportError};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "raw",
    args: &["_raw_params", "executable"],
    free_form: true,
    any_name: false,
    build: |args| {
        let a: Raw = parse_args(args)?;
        if a.line.trim().is_empty() {
            return Err("no command given".into());
        }
        Ok(Box::new(a))
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(rename = "_raw_params", default)]
    line: String,
    executable: Option<String>,
}

impl Raw {
    fn script(&self) -> ShellScript {
        match &self.executable {
            Some(shell) => ShellScript::new()
                .var("E", shell)
                .var("L", &self.line)
                .code(r#"exec "$E" -c "$L""#),
            None => ShellScript::new().user_code(&self.line),
        }
    }
}

impl Action for Raw {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            if ctx.check {
                return Ok(Outcome {
                    skipped: true,
                    ..Outcome::ok()
                });
            }
            let script = self.script();
            let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
            let stdout = out.stdout_str();
            let stderr = out.stderr_str();
            let mut outcome = Outcome::changed(true)
                .with("rc", out.status)
                .with("stdout_lines", stdout.lines().collect::<Vec<_>>())
                .with("stdout", stdout.clone())
                .with("stderr", stderr);
            if !out.success() {
                // Registered as a field too: `failed_when` may clear the failure, not the message.
                outcome = outcome.with("msg", "non-zero return code");
                outcome.failed = true;
                outcome.msg = Some("non-zero return code".into());
            }
            Ok(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| (SPEC.build)(v).map(|_| ());
        assert!(build(serde_json::json!({"_raw_params": "echo hi"})).is_ok());
        assert!(
            build(serde_json::json!({"_raw_params": "echo hi", "executable": "/bin/bash"})).is_ok()
        );
        assert!(build(serde_json::json!({"_raw_params": " "})).is_err());
        assert!(build(serde_json::json!({"_raw_params": "x", "chdir": "/"})).is_err());
    }
}
