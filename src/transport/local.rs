//! `ansible_connection: local`: scripts run on the control machine itself.

use std::process::Stdio;

use tokio::process::Command;

use super::{ByteCounter, ExecOutput, TransportError};

#[derive(Default)]
pub struct LocalConnection {
    pub(super) sent: ByteCounter,
}

impl LocalConnection {
    pub(super) async fn exec(
        &self,
        command_line: &str,
        stdin: Option<super::Payload>,
    ) -> Result<ExecOutput, TransportError> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(command_line).kill_on_drop(true);
        run(cmd, stdin).await.map_err(|e| TransportError::Spawn {
            program: "/bin/sh".into(),
            reason: e.to_string(),
        })
    }
}

impl LocalConnection {
    /// Runs `command_line` until its stdout ends or `stop` resolves (see
    /// `follow.rs`); answers its exit status and stderr.
    pub(super) async fn follow(
        &self,
        command_line: &str,
        line: &mut (dyn FnMut(String) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(i32, String), TransportError> {
        let spawn_error = |e: std::io::Error| TransportError::Spawn {
            program: "/bin/sh".into(),
            reason: e.to_string(),
        };
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command_line)
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(spawn_error(std::io::Error::other("no pipes")));
        };
        let errors = super::follow::pump(stdout, stderr, stdin, line, stop).await;
        let status = child.wait().await.map_err(spawn_error)?;
        Ok((status.code().unwrap_or(-1), errors))
    }
}

async fn run(mut cmd: Command, stdin: Option<super::Payload>) -> std::io::Result<ExecOutput> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(payload), Some(pipe)) = (stdin, child.stdin.take()) {
        tokio::spawn(payload.feed(pipe));
    }
    let out = child.wait_with_output().await?;
    Ok(ExecOutput {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}
