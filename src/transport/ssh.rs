//! SSH through the system `ssh` client, multiplexed: one master connection
//! per host for the whole run, every command a new channel on it.
//!
//! Driving the system client (rather than an SSH library) is deliberate: the
//! operator's `~/.ssh/config` (ProxyJump, IdentityFile), agent and
//! known_hosts apply exactly as they do for `ssh` itself.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};

use super::{ByteCounter, ExecOutput, TransportError};

/// Where and how to connect, from the host's connection variables.
#[derive(Debug, Clone, Default)]
pub struct SshTarget {
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key_file: Option<PathBuf>,
    /// An ssh_config file used instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// Accept and record unknown host keys (never changed ones).
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
}

pub struct SshConnection {
    /// Replaced when the master has gone away (see `exec`).
    session: tokio::sync::RwLock<Session>,
    target: SshTarget,
    control_dir: std::path::PathBuf,
    pub(super) sent: ByteCounter,
}

impl SshConnection {
    /// Opens the master connection. `control_dir` must be short: the control
    /// socket lives in it and Unix socket paths are limited to ~100 bytes.
    pub async fn connect(target: &SshTarget, control_dir: &Path) -> Result<Self, TransportError> {
        Ok(Self {
            session: tokio::sync::RwLock::new(Self::open_master(target, control_dir).await?),
            target: target.clone(),
            control_dir: control_dir.to_owned(),
            sent: ByteCounter::default(),
        })
    }

    async fn open_master(
        target: &SshTarget,
        control_dir: &Path,
    ) -> Result<Session, TransportError> {
        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(if target.accept_new_host_keys {
                KnownHosts::Add
            } else {
                KnownHosts::Strict
            })
            .control_directory(control_dir)
            // Bounded: if convoy is killed hard, the master still goes away soon.
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::new(60).expect("non-zero"),
            ))
            .connect_timeout(target.connect_timeout)
            .server_alive_interval(Duration::from_secs(15));
        if let Some(port) = target.port {
            builder.port(port);
        }
        if let Some(user) = &target.user {
            builder.user(user.clone());
        }
        if let Some(key) = &target.key_file {
            builder.keyfile(key);
        }
        if let Some(config) = &target.config_file {
            builder.config_file(config);
        }
        builder
            .connect_mux(&target.address)
            .await
            .map_err(|e| TransportError::Connect {
                reason: ssh_reason(&e),
            })
    }

    pub(super) async fn exec(
        &self,
        command_line: &str,
        stdin: Option<super::Payload>,
    ) -> Result<ExecOutput, TransportError> {
        let lost = |e: openssh::Error| TransportError::Lost {
            reason: ssh_reason(&e),
        };
        // The master exits after ControlPersist's idle bound (so a convoy
        // killed hard leaves nothing for long); a long pause can outlast it.
        // A command that could not even start is safe to retry once on a
        // new master; one that started is never run twice.
        let mut session = self.session.read().await;
        let mut child = match Self::spawn(&session, command_line, Self::input(&stdin)?).await {
            Ok(child) => child,
            Err(_) => {
                drop(session);
                let fresh = Self::open_master(&self.target, &self.control_dir).await?;
                let old = std::mem::replace(&mut *self.session.write().await, fresh);
                let _ = old.close().await;
                session = self.session.read().await;
                Self::spawn(&session, command_line, Self::input(&stdin)?)
                    .await
                    .map_err(lost)?
            }
        };
        // A file went to the master as it is; only bytes are fed through a pipe.
        let stdin = stdin.filter(|p| matches!(p, super::Payload::Bytes(_)));
        let writer = match (stdin, child.stdin().take()) {
            (Some(payload), Some(pipe)) => Some(tokio::spawn(payload.feed(pipe))),
            _ => None,
        };
        let out = child.wait_with_output().await.map_err(lost)?;
        if let Some(writer) = writer {
            // A write error here means the remote side stopped reading: its
            // exit status already tells why, so it is not reported twice.
            let _ = writer.await;
        }
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs `command_line` until its stdout ends or `stop` resolves (see
    /// `follow.rs`); answers its exit status and stderr.
    pub(super) async fn follow(
        &self,
        command_line: &str,
        line: &mut (dyn FnMut(String) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(i32, String), TransportError> {
        let lost = |e: openssh::Error| TransportError::Lost {
            reason: ssh_reason(&e),
        };
        let session = self.session.read().await;
        let mut child = Self::spawn(&session, command_line, Stdio::piped())
            .await
            .map_err(lost)?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            child.stdin().take(),
            child.stdout().take(),
            child.stderr().take(),
        ) else {
            return Err(TransportError::Lost {
                reason: "ssh gave no pipes".into(),
            });
        };
        let errors = super::follow::pump(stdout, stderr, stdin, line, stop).await;
        let status = child.wait().await.map_err(lost)?;
        Ok((status.code().unwrap_or(-1), errors))
    }

    /// The command's stdin: none, a pipe that bytes are fed into, or a
    /// local file handed to the master as it is (an artifact): the master
    /// reads it straight from the disk cache, so its bytes pass through
    /// neither convoy nor a pipe.
    fn input(stdin: &Option<super::Payload>) -> Result<Stdio, TransportError> {
        Ok(match stdin {
            None => Stdio::null(),
            Some(super::Payload::Bytes(_)) => Stdio::piped(),
            Some(super::Payload::File(path)) => {
                Stdio::from(std::fs::File::open(path).map_err(|e| TransportError::Lost {
                    reason: format!("cannot read {}: {e}", path.display()),
                })?)
            }
        })
    }

    async fn spawn<'s>(
        session: &'s Session,
        command_line: &str,
        stdin: Stdio,
    ) -> Result<openssh::Child<&'s Session>, openssh::Error> {
        let mut cmd = session.raw_command(command_line);
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().await
    }

    pub(super) async fn close(self) {
        let _ = self.session.into_inner().close().await;
    }
}

/// ssh's own words for a failure ("Connection refused", "Host key
/// verification failed."), which openssh keeps as the error's source.
fn ssh_reason(e: &openssh::Error) -> String {
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    super::ssh_error::summarize(&reason)
}

impl SshTarget {
    /// A one-off `ssh` process that shares nothing with the multiplexed
    /// master (ControlPath=none): it proves the host can still be reached
    /// by a new connection, as an operator's would be.
    pub fn fresh_command(&self, remote: &super::ShellScript) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args([
            "-o",
            "ControlPath=none",
            "-o",
            "ControlMaster=no",
            "-o",
            "BatchMode=yes",
        ]);
        cmd.arg("-o").arg(format!(
            "ConnectTimeout={}",
            self.connect_timeout.as_secs().max(1)
        ));
        cmd.arg("-o").arg(if self.accept_new_host_keys {
            "StrictHostKeyChecking=accept-new"
        } else {
            "StrictHostKeyChecking=yes"
        });
        if let Some(config) = &self.config_file {
            cmd.arg("-F").arg(config);
        }
        if let Some(port) = self.port {
            cmd.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &self.user {
            cmd.arg("-l").arg(user);
        }
        if let Some(key) = &self.key_file {
            cmd.arg("-i").arg(key);
        }
        // The remote side hands the command to the user's login shell.
        cmd.arg("--").arg(&self.address).arg(remote.text());
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        cmd
    }
}
