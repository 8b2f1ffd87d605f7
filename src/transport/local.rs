//! `ansible_connection: local`: scripts run on the control machine itself.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::become_password::Challenge;
use super::{ByteCounter, ExecOutput, TransportError};

pub struct LocalConnection {
    pub(super) sent: ByteCounter,
    /// How long sudo may take to ask for a password or start the command
    /// (the connection timeout, as for ssh).
    become_within: Duration,
}

impl Default for LocalConnection {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl LocalConnection {
    /// `connect_timeout` bounds the wait for sudo, as it does over ssh.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            sent: ByteCounter::default(),
            become_within: connect_timeout + super::ssh::BECOME_GRACE,
        }
    }

    pub(super) async fn exec(
        &self,
        command_line: &str,
        stdin: Option<super::Payload>,
        challenge: Option<&Challenge>,
    ) -> Result<ExecOutput, TransportError> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(command_line).kill_on_drop(true);
        let spawn_error = |e: std::io::Error| TransportError::Spawn {
            program: "/bin/sh".into(),
            reason: e.to_string(),
        };
        match challenge {
            None => run(cmd, stdin).await.map_err(spawn_error),
            Some(challenge) => {
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(spawn_error)?;
                let (Some(pipe), Some(stdout), Some(stderr)) =
                    (child.stdin.take(), child.stdout.take(), child.stderr.take())
                else {
                    return Err(spawn_error(std::io::Error::other("no pipes")));
                };
                // On failure the child is killed when dropped.
                let (stdout, stderr) = challenge
                    .converse(stdout, stderr, pipe, stdin, self.become_within)
                    .await?;
                let status = child.wait().await.map_err(spawn_error)?;
                Ok(ExecOutput {
                    status: status.code().unwrap_or(-1),
                    stdout,
                    stderr,
                })
            }
        }
    }
}

impl LocalConnection {
    /// Runs `command_line` until its stdout ends or `stop` resolves (see
    /// `follow.rs`); answers its exit status and stderr.
    pub(super) async fn follow(
        &self,
        command_line: &str,
        challenge: Option<&Challenge>,
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
        let errors = match challenge {
            None => super::follow::pump(stdout, stderr, stdin, line, stop).await,
            Some(challenge) => {
                super::follow::pump_escalated(
                    challenge,
                    stdout,
                    stderr,
                    stdin,
                    line,
                    stop,
                    self.become_within,
                )
                .await?
            }
        };
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
