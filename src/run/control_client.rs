//! The other end of the control socket: `convoy ctl` sends a command to a
//! running run, `convoy runs` asks whether a run is still there.
//!
//! Every way of not reaching a run becomes one [`ControlError`] that says
//! which run, why, and what to do (all of them exit 3).

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::control::{ControlAnswer, ControlCommand};

#[derive(Debug, Error)]
pub enum ControlError {
    #[error(
        "no run {run} in {}: give the run id printed in `NOTE journal:` (from the project directory) or the journal's path",
        runs.display()
    )]
    UnknownRun { run: String, runs: PathBuf },
    #[error("run {run} is not running (it ended: {ended}); nothing to {command}")]
    NotRunning {
        run: String,
        ended: String,
        command: &'static str,
    },
    #[error(
        "cannot reach run {run}: permission denied on {}; only the user who started a run may control it",
        path.display()
    )]
    NotYours { run: String, path: PathBuf },
    #[error("run {run}: {answer}")]
    Refused { run: String, answer: String },
    #[error("cannot talk to run {run} over {}: {source}", path.display())]
    Socket {
        run: String,
        path: PathBuf,
        source: io::Error,
    },
}

/// Where a run lives: its journal and its control socket.
#[derive(Debug, Clone)]
pub struct RunAddress {
    pub run_id: String,
    pub journal: PathBuf,
    pub socket: PathBuf,
}

impl RunAddress {
    /// A run id names `<runs>/<id>.jsonl`; something with a `/` or ending in
    /// `.jsonl` is the journal's path. Nothing is read yet.
    pub fn resolve(arg: &str, runs: &Path) -> RunAddress {
        let journal = if arg.contains('/') || arg.ends_with(".jsonl") {
            PathBuf::from(arg)
        } else {
            runs.join(format!("{arg}.jsonl"))
        };
        let run_id = journal
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| arg.to_owned());
        RunAddress {
            run_id,
            socket: journal.with_extension("sock"),
            journal,
        }
    }

    /// Sends `command` and waits for the run's answer (which comes once the
    /// batch in flight has settled).
    pub async fn send(
        &self,
        command: ControlCommand,
        runs: &Path,
    ) -> Result<ControlAnswer, ControlError> {
        let mut stream = self.connect(command.as_str(), runs).await?;
        let socket_error = |source| ControlError::Socket {
            run: self.run_id.clone(),
            path: self.socket.clone(),
            source,
        };
        stream
            .write_all(format!("{}\n", command.as_str()).as_bytes())
            .await
            .map_err(socket_error)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(socket_error)?;
        let reply: serde_json::Value = serde_json::from_str(&line).map_err(|_| {
            // The run closed the socket without answering: it ended first.
            self.not_running(command.as_str())
        })?;
        let answer = ControlAnswer {
            done: reply["done"].as_bool().unwrap_or(false),
            message: reply["answer"].as_str().unwrap_or_default().to_owned(),
        };
        if answer.done {
            Ok(answer)
        } else {
            Err(ControlError::Refused {
                run: self.run_id.clone(),
                answer: answer.message,
            })
        }
    }

    /// The run answers on its socket: it is running.
    pub async fn is_running(&self) -> bool {
        UnixStream::connect(&self.socket).await.is_ok()
    }

    async fn connect(
        &self,
        command: &'static str,
        runs: &Path,
    ) -> Result<UnixStream, ControlError> {
        match UnixStream::connect(&self.socket).await {
            Ok(stream) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(ControlError::NotYours {
                run: self.run_id.clone(),
                path: self.socket.clone(),
            }),
            // No socket, or one left by a killed run: the journal says the rest.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                match std::fs::metadata(&self.journal) {
                    Ok(_) => Err(self.not_running(command)),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        Err(ControlError::NotYours {
                            run: self.run_id.clone(),
                            path: self.journal.clone(),
                        })
                    }
                    Err(_) => Err(ControlError::UnknownRun {
                        run: self.run_id.clone(),
                        runs: runs.to_owned(),
                    }),
                }
            }
            Err(source) => Err(ControlError::Socket {
                run: self.run_id.clone(),
                path: self.socket.clone(),
                source,
            }),
        }
    }

    fn not_running(&self, command: &'static str) -> ControlError {
        let ended = crate::report::JournalSummary::read(&self.journal)
            .ok()
            .and_then(|s| s.end)
            .map_or_else(
                || "without a record of its end".to_owned(),
                |(outcome, _)| outcome,
            );
        ControlError::NotRunning {
            run: self.run_id.clone(),
            ended,
            command,
        }
    }
}
