//! `wait_for_connection`: wait until the host can be reached again (after
//! a reboot, an sshd restart, a network change), as ansible-core's action
//! does: after `delay`, each try opens a *new* connection (ansible-core
//! resets its connection first, so a master that outlived sshd proves
//! nothing) and then runs a command over the host's own connection, which
//! reopens its master if the old one died; tries are `sleep` seconds apart
//! until `timeout`. Nothing changes; in check mode the task is skipped, as
//! in ansible-core.
//!
//! The host must have been reached once before in the run: a host that
//! cannot be reached at its first task is unreachable, as for any task.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::file::lenient;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{Script, ShellScript, TransportError};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "wait_for_connection",
    args: &["connect_timeout", "delay", "sleep", "timeout"],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(WaitForConnection::new(parse_args(args)?))),
};

/// ansible-core's defaults (`plugins/action/wait_for_connection.py`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "five", deserialize_with = "lenient::number")]
    connect_timeout: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    delay: u64,
    #[serde(default = "one", deserialize_with = "lenient::number")]
    sleep: u64,
    #[serde(default = "six_hundred", deserialize_with = "lenient::number")]
    timeout: u64,
}

fn five() -> u64 {
    5
}
fn one() -> u64 {
    1
}
fn six_hundred() -> u64 {
    600
}

struct WaitForConnection {
    connect_timeout: Duration,
    delay: Duration,
    sleep: Duration,
    timeout: Duration,
}

impl WaitForConnection {
    fn new(a: Args) -> Self {
        Self {
            connect_timeout: Duration::from_secs(a.connect_timeout),
            delay: Duration::from_secs(a.delay),
            sleep: Duration::from_secs(a.sleep),
            timeout: Duration::from_secs(a.timeout),
        }
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        if ctx.check {
            return Ok(Outcome {
                skipped: true,
                ..Outcome::ok()
            });
        }
        let start = Instant::now();
        tokio::time::sleep(self.delay).await;
        // ansible-core's deadline starts after the delay.
        let deadline = Instant::now() + self.timeout;
        let mut error = String::from("no attempt made");
        while Instant::now() < deadline {
            match self.attempt(ctx).await {
                Ok(()) => return Ok(Outcome::ok().with("elapsed", start.elapsed().as_secs())),
                Err(e) => error = e,
            }
            tokio::time::sleep(self.sleep).await;
        }
        Ok(
            Outcome::failed(format!("timed out waiting for ping module test: {error}"))
                .with("elapsed", start.elapsed().as_secs()),
        )
    }

    /// One try: a new connection, then a command over the host's own. The
    /// command is bounded too: a master whose peer vanished would otherwise
    /// wait for ssh's keep-alives.
    async fn attempt(&self, ctx: &ActionContext<'_>) -> Result<(), String> {
        ctx.conn
            .reach_anew(self.connect_timeout)
            .await
            .map_err(|e| e.to_string())?;
        let ping = ShellScript::new().code("echo pong");
        let bound = self.connect_timeout.max(Duration::from_secs(1)) * 2;
        match tokio::time::timeout(bound, ctx.conn.exec(Script::new(&ping))).await {
            Err(_) => Err(format!("no answer within {}s", bound.as_secs())),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(out)) if out.stdout_str().trim() == "pong" => Ok(()),
            Ok(Ok(_)) => Err("ping test failed".into()),
        }
    }
}

super::action_by_async_run!(WaitForConnection);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| parse_args::<Args>(v).map(WaitForConnection::new);
        let w = build(serde_json::json!({})).unwrap();
        assert_eq!(
            (w.connect_timeout, w.delay, w.sleep, w.timeout),
            (
                Duration::from_secs(5),
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(600)
            )
        );
        let w = build(serde_json::json!({"timeout": "30", "delay": 2})).unwrap();
        assert_eq!(
            (w.timeout, w.delay),
            (Duration::from_secs(30), Duration::from_secs(2))
        );
        assert!(build(serde_json::json!({"port": 22})).is_err());
        assert!(build(serde_json::json!({"timeout": "soon"})).is_err());
    }
}
