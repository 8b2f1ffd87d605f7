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
