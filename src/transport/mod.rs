//! How convoy reaches a host: one primitive, `exec` (a shell script with
//! optional stdin), over SSH or on the control machine itself.
//!
//! Everything higher (writing a file, hashing it, checking a path) is built
//! on `exec` in [`remote_fs`], so a transport only has to get bytes to and
//! from `sh` reliably. The set of transports is closed (ssh, local), so a
//! plain enum dispatches them without boxing.

mod become_password;
mod cipher_preference;
mod error;
mod follow;
#[cfg(test)]
pub mod hostile;
mod local;
mod master_launch;
mod master_pool;
pub mod remote_fs;
pub mod shell;
mod ssh;
mod ssh_error;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use become_password::{BecomeFailure, BecomePassword};
pub use error::TransportError;
pub use local::LocalConnection;
pub use master_pool::MasterPool;
pub use shell::ShellScript;
pub use ssh::{SshConnection, SshTarget};

/// What a remote script printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The value of the first `KEY=value` line of stdout: how scripts that
    /// report several facts (`had=1`, `rc=0`) hand them back.
    pub fn field(&self, key: &str) -> Option<String> {
        self.stdout_str()
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    }
}

/// Privilege escalation for one script (Ansible's `become`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    pub user: String,
    /// sudo's password, when one is known: it goes to sudo on stdin
    /// (see [`become_password`]); without one, sudo must not ask.
    pub password: Option<BecomePassword>,
}

#[cfg(test)]
impl Become {
    /// Becoming `user` with no password (`sudo -n`).
    pub fn user(user: impl Into<String>) -> Become {
        Become {
            user: user.into(),
            password: None,
        }
    }
}

/// A script to run on a host. Its text can only come from a
/// [`ShellScript`], so every value in it went through quoting.
#[derive(Debug, Clone, Copy)]
pub struct Script<'a> {
    script: &'a ShellScript,
    stdin: Option<Input<'a>>,
    sudo: Option<&'a Become>,
    env: &'a [(String, String)],
}

impl<'a> Script<'a> {
    pub fn new(script: &'a ShellScript) -> Self {
        Self {
            script,
            stdin: None,
            sudo: None,
            env: &[],
        }
    }

    pub fn text(&self) -> &str {
        self.script.text()
    }
    pub fn stdin(mut self, data: &'a [u8]) -> Self {
        self.stdin = Some(Input::Bytes(data));
        self
    }
    /// Streams a local file as stdin (an artifact is never held in memory whole).
    pub fn stdin_file(mut self, path: &'a std::path::Path, size: u64) -> Self {
        self.stdin = Some(Input::File(path, size));
        self
    }
    pub fn sudo(mut self, sudo: Option<&'a Become>) -> Self {
        self.sudo = sudo;
        self
    }
    /// Variables the shell starts with (a task's `environment:`), set by
    /// `env` in front of it, under sudo, as ansible-core puts them in front
    /// of the module's interpreter: the shell sees them from its start
    /// (so a `PATH` or an `IFS` is what a fresh shell makes of it), and
    /// every program the script runs inherits them. Each name must be one
    /// a shell can hold ([`ShellScript::is_variable_name`]).
    pub fn env(mut self, vars: &'a [(String, String)]) -> Self {
        for (name, _) in vars {
            assert!(
                ShellScript::is_variable_name(name),
                "not a shell variable name: {name:?}"
            );
        }
        self.env = vars;
        self
    }

    /// The bytes this script hands the transport besides its stdin.
    fn len(&self) -> usize {
        self.text().len()
            + self
                .env
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2)
                .sum::<usize>()
    }

    /// The shell that runs `text`, its variables in front.
    fn shell(&self, text: &str) -> String {
        if self.env.is_empty() {
            return format!("sh -c {}", quote(text));
        }
        // /bin/sh by its path: `env` looks `sh` up in the new PATH.
        let mut line = String::from("env");
        for (name, value) in self.env {
            line.push(' ');
            line.push_str(&quote(&format!("{name}={value}")));
        }
        line.push_str(" /bin/sh -c ");
        line.push_str(&quote(text));
        line
    }

    /// The command line that runs this script, with its variables and sudo
    /// in front when asked, and the password handshake sudo then expects.
    fn command_line(&self) -> (String, Option<become_password::Challenge>) {
        match self.sudo {
            Some(Become {
                user,
                password: Some(password),
            }) => {
                let challenge = become_password::Challenge::new(password);
                let line = challenge.command_line(user, self.text(), &|t| self.shell(t));
                (line, Some(challenge))
            }
            // -n: never prompt (a prompt would hang a fleet run); -H: the target user's HOME.
            Some(b) => (
                format!(
                    "sudo -n -H -u {} -- {}",
                    quote(&b.user),
                    self.shell(self.text())
                ),
                None,
            ),
            None => (self.shell(self.text()), None),
        }
    }
}

pub use shell::quote;

/// An open connection to one host.
pub enum Connection {
    /// Boxed: an ssh connection carries its target and master; a local one nothing.
    Ssh(Box<SshConnection>),
    Local(LocalConnection),
}

impl Connection {
    /// Runs a script; a non-zero exit status is an `Ok` result, only failing
    /// to reach the host is an error.
    pub async fn exec(&self, script: Script<'_>) -> Result<ExecOutput, TransportError> {
        self.counter()
            .add(script.stdin.as_ref().map_or(0, Input::len) as usize + script.len());
        let (line, challenge) = script.command_line();
        let (stdin, challenge) = (script.stdin.map(Input::owned), challenge.as_ref());
        let out = match self {
            Connection::Ssh(c) => c.exec(&line, stdin, challenge).await?,
            Connection::Local(c) => c.exec(&line, stdin, challenge).await?,
        };
        if script.sudo.is_some() && challenge.is_none() && become_password::wanted_a_password(&out)
        {
            return Err(TransportError::Become(BecomeFailure::Missing));
        }
        Ok(out)
    }

    /// Runs a script that goes on until told to stop (`convoy logs -f`):
    /// each stdout line goes to `line` as it arrives; when `stop` resolves
    /// the script's stdin is closed, which it must take as its cue to end.
    /// Answers the exit status and stderr.
    pub async fn follow(
        &self,
        script: Script<'_>,
        line: &mut (dyn FnMut(String) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(i32, String), TransportError> {
        self.counter().add(script.len());
        let (command, challenge) = script.command_line();
        let challenge = challenge.as_ref();
        match self {
            Connection::Ssh(c) => c.follow(&command, challenge, line, stop).await,
            Connection::Local(c) => c.follow(&command, challenge, line, stop).await,
        }
    }

    /// Reaches the host over a new connection within `connect_timeout`
    /// (`wait_for_connection`); the control machine is always reached.
    pub async fn reach_anew(&self, connect_timeout: Duration) -> Result<(), TransportError> {
        match self {
            Connection::Ssh(c) => c.reach_anew(connect_timeout).await,
            Connection::Local(_) => Ok(()),
        }
    }

    /// Bytes handed to the transport so far (scripts and stdin payloads).
    pub fn bytes_sent(&self) -> u64 {
        self.counter().get()
    }

    fn counter(&self) -> &ByteCounter {
        match self {
            Connection::Ssh(c) => &c.sent,
            Connection::Local(c) => &c.sent,
        }
    }

    /// The scripts run over this connection so far (each one round trip).
    pub fn round_trips(&self) -> u64 {
        self.counter().1.load(Ordering::Relaxed)
    }

    /// Closes the connection: for ssh, the master process and its control socket go away.
    pub async fn close(self) {
        if let Connection::Ssh(c) = self {
            c.close().await;
        }
    }
}

/// Counts bytes sent to a host, for the recap and the JSON events, and the
/// scripts run there (each one round trip), so `convoy status` can show it
/// kept to one.
#[derive(Debug, Default, Clone)]
pub struct ByteCounter(Arc<AtomicU64>, Arc<AtomicU64>);

impl ByteCounter {
    /// One script sent: `n` bytes, one round trip.
    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        self.1.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a script reads on stdin.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Bytes(&'a [u8]),
    /// A local file and its size, streamed.
    File(&'a std::path::Path, u64),
}

impl Input<'_> {
    fn len(&self) -> u64 {
        match self {
            Input::Bytes(b) => b.len() as u64,
            Input::File(_, size) => *size,
        }
    }

    fn owned(self) -> Payload {
        match self {
            Input::Bytes(b) => Payload::Bytes(b.to_vec()),
            Input::File(p, _) => Payload::File(p.to_owned()),
        }
    }
}

/// Stdin handed to the task that feeds it (it outlives the borrow).
pub(crate) enum Payload {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

impl Payload {
    /// Writes the payload into `pipe` and closes it. Runs beside the reading
    /// of the output, so neither side blocks on a full pipe.
    pub(crate) async fn feed<W: tokio::io::AsyncWrite + Unpin>(
        self,
        mut pipe: W,
    ) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let result = match self {
            Payload::Bytes(data) => pipe.write_all(&data).await,
            Payload::File(path) => match tokio::fs::File::open(&path).await {
                Ok(mut file) => tokio::io::copy(&mut file, &mut pipe).await.map(drop),
                Err(e) => Err(e),
            },
        };
        let _ = pipe.shutdown().await;
        result
    }
}
