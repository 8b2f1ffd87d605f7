//! SSH through the system `ssh` client, multiplexed: one master connection
//! per host, every command a new channel on it. How many masters stay
//! alive at once is the run's [`MasterPool`]'s business.
//!
//! Driving the system client (rather than an SSH library) is deliberate: the
//! operator's `~/.ssh/config` (ProxyJump, IdentityFile), agent and
//! known_hosts apply exactly as they do for `ssh` itself.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::{Session, Stdio};

use super::become_password::Challenge;
use super::master_pool::{self, Claim, Lease, Live, MasterPool, Member};
use super::{ByteCounter, ExecOutput, TransportError};

/// Beyond the connection timeout, how long sudo may take to ask or to
/// start the command (ansible-core's ssh connection allows the same 2 s).
pub(super) const BECOME_GRACE: Duration = Duration::from_secs(2);

/// How long a command whose escalation failed may take to end once its
/// stdin is closed (sudo then gives up by itself).
const BECOME_SETTLE: Duration = Duration::from_secs(5);

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
    /// This host's place among the run's masters: a master is kept only
    /// while the pool lets it, and opened again when needed.
    member: Arc<Member>,
    target: SshTarget,
    control_dir: std::path::PathBuf,
    pub(super) sent: ByteCounter,
}

impl SshConnection {
    /// Opens the master connection (a host that cannot be reached is told
    /// now, not at its first command); the pool may close it while it is
    /// idle. `control_dir` must be short: the control sockets live in it
    /// and Unix socket paths are limited to ~100 bytes.
    pub async fn connect(
        target: &SshTarget,
        control_dir: &Path,
        pool: &Arc<MasterPool>,
    ) -> Result<Self, TransportError> {
        let conn = Self {
            member: pool.member(),
            target: target.clone(),
            control_dir: control_dir.to_owned(),
            sent: ByteCounter::default(),
        };
        drop(conn.master().await?);
        Ok(conn)
    }

    /// This host's master, for one command: the live one, or a new one
    /// (which may first close another host's idle master). Opening runs as
    /// a task of its own, finished even if the command waiting for it is
    /// cancelled: the master it starts is then counted and closed like any
    /// other, never left running outside the bound.
    async fn master(&self) -> Result<(Lease, Live), TransportError> {
        match self.member.claim().await {
            Claim::Live(lease, live) => Ok((lease, live)),
            Claim::Open(place, evicted) => {
                let (target, dir) = (self.target.clone(), self.control_dir.clone());
                tokio::spawn(async move {
                    if let Some(evicted) = evicted {
                        master_pool::close(evicted).await;
                    }
                    let session = Self::open_master(&target, &dir).await?;
                    let pid = master_pool::master_pid(session.control_socket()).await;
                    Ok(place.install(session, pid))
                })
                .await
                .map_err(|e| TransportError::Lost {
                    reason: format!("opening the connection failed: {e}"),
                })?
            }
        }
    }

    async fn open_master(
        target: &SshTarget,
        control_dir: &Path,
    ) -> Result<Session, TransportError> {
        super::master_launch::open(target, control_dir).await
    }

    pub(super) async fn exec(
        &self,
        command_line: &str,
        stdin: Option<super::Payload>,
        challenge: Option<&Challenge>,
    ) -> Result<ExecOutput, TransportError> {
        let lost = |e: openssh::Error| TransportError::Lost {
            reason: ssh_reason(&e),
        };
        // Declared first, dropped last: the master goes idle only after
        // the command's last use of it.
        let (lease, mut live) = self.master().await?;
        // sudo reads the password on the same stdin: it is always a pipe then.
        let input = || match challenge {
            Some(_) => Ok(Stdio::piped()),
            None => Self::input(&stdin),
        };
        // The master exits after ControlPersist's idle bound (so a convoy
        // killed hard leaves nothing for long); a long pause can outlast it.
        // A command that could not even start is safe to retry once on a
        // new master; one that started is never run twice.
        let mut child = match Self::spawn(&live, command_line, input()?).await {
            Ok(child) => child,
            Err(_) => {
                drop(live);
                if let Some(old) = lease.take() {
                    master_pool::close(old).await;
                }
                let session = match Self::open_master(&self.target, &self.control_dir).await {
                    Ok(session) => session,
                    Err(e) => {
                        lease.give_up();
                        return Err(e);
                    }
                };
                let pid = master_pool::master_pid(session.control_socket()).await;
                live = Live::new(session, pid);
                lease.put(live.clone());
                Self::spawn(&live, command_line, input()?)
                    .await
                    .map_err(lost)?
            }
        };
        if let Some(challenge) = challenge {
            let within = self.target.connect_timeout + BECOME_GRACE;
            let out = escalated(child, challenge, stdin, within).await;
            drop(live);
            drop(lease);
            return out;
        }
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
        drop(live);
        drop(lease);
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs `command_line` until its stdout ends or `stop` resolves (see
    /// `follow.rs`); answers its exit status and stderr. It holds the
    /// host's master all along.
    pub(super) async fn follow(
        &self,
        command_line: &str,
        challenge: Option<&Challenge>,
        line: &mut (dyn FnMut(String) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(i32, String), TransportError> {
        let lost = |e: openssh::Error| TransportError::Lost {
            reason: ssh_reason(&e),
        };
        let (lease, live) = self.master().await?;
        let mut child = Self::spawn(&live, command_line, Stdio::piped())
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
        let errors = match challenge {
            None => super::follow::pump(stdout, stderr, stdin, line, stop).await,
            Some(challenge) => {
                let within = self.target.connect_timeout + BECOME_GRACE;
                super::follow::pump_escalated(challenge, stdout, stderr, stdin, line, stop, within)
                    .await?
            }
        };
        let status = child.wait().await.map_err(lost)?;
        drop(live);
        drop(lease);
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

    async fn spawn(
        live: &Live,
        command_line: &str,
        stdin: Stdio,
    ) -> Result<openssh::Child<Arc<Session>>, openssh::Error> {
        let mut cmd = Arc::clone(&live.session).arc_raw_command(command_line);
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().await
    }

    pub(super) async fn close(self) {
        Arc::clone(&self.member).close().await;
    }

    /// Reaches the host over a new connection, not through the master (as
    /// ansible-core's `wait_for_connection` resets its connection before
    /// each try): a master that outlived the host's sshd proves nothing.
    pub(super) async fn reach_anew(&self, connect_timeout: Duration) -> Result<(), TransportError> {
        let target = SshTarget {
            connect_timeout,
            ..self.target.clone()
        };
        let probe = super::ShellScript::new().code("true");
        let out = target
            .fresh_command(&probe)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .await
            .map_err(|e| TransportError::Spawn {
                program: "ssh".into(),
                reason: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(TransportError::Connect {
            reason: super::ssh_error::summarize(&String::from_utf8_lossy(&out.stderr)),
        })
    }
}

/// Runs a spawned command through sudo's password handshake
/// ([`Challenge::converse`]), then waits for it to end.
async fn escalated(
    mut child: openssh::Child<Arc<Session>>,
    challenge: &Challenge,
    payload: Option<super::Payload>,
    within: Duration,
) -> Result<ExecOutput, TransportError> {
    let (Some(stdin), Some(stdout), Some(stderr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return Err(TransportError::Lost {
            reason: "ssh gave no pipes".into(),
        });
    };
    match challenge
        .converse(stdout, stderr, stdin, payload, within)
        .await
    {
        Ok((stdout, stderr)) => {
            let status = child.wait().await.map_err(|e| TransportError::Lost {
                reason: ssh_reason(&e),
            })?;
            Ok(ExecOutput {
                status: status.code().unwrap_or(-1),
                stdout,
                stderr,
            })
        }
        Err(failure) => {
            // Its stdin is closed: sudo stops asking and exits.
            let _ = tokio::time::timeout(BECOME_SETTLE, child.wait()).await;
            Err(failure.into())
        }
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
