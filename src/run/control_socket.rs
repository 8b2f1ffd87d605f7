//! The control socket of a running run, `.convoy/runs/<run-id>.sock` beside
//! its journal: `convoy ctl` connects, sends one command line and reads one
//! JSON answer line.
//!
//! Only the run's own user may use it: the socket is 0600 in a 0700
//! directory, and the server still checks the peer's uid (SO_PEERCRED)
//! against the socket's owner, so loosened permissions do not open it. The
//! socket exists while the run does: it is removed when the run ends, and
//! one left by a killed run refuses connections (`convoy runs` and `ctl`
//! then read the journal instead).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::control::{ControlAnswer, ControlCommand, RunControl};
use crate::report::{Event, Reporter};

/// A served control socket; [`close`](Self::close) stops it and removes the file.
pub struct ControlSocket {
    path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ControlSocket {
    /// Binds `path` (0600) and serves `control` in the background. Each
    /// command received is recorded as a `control` event.
    pub fn serve(
        path: PathBuf,
        control: RunControl,
        reporter: Reporter,
    ) -> std::io::Result<ControlSocket> {
        // A socket of an earlier process with this run id cannot be alive.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let owner = std::fs::metadata(&path)?.uid();
        let (tx, mut rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut clients = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let (control, reporter) = (control.clone(), reporter.clone());
                            clients.spawn(serve_client(stream, owner, control, reporter));
                        }
                    }
                }
            }
            // Answers already known (RunControl::end) are still written;
            // a client that stays silent is not waited for long.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while clients.join_next().await.is_some() {}
            })
            .await;
            clients.abort_all();
        });
        Ok(ControlSocket {
            path,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops serving (after the pending answers are written) and removes
    /// the socket; must come before the reporter is finished, since the
    /// server holds a sender of it.
    pub async fn close(mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One client: its uid is checked, then its one command is handed to the
/// run and the run's answer written back.
async fn serve_client(stream: UnixStream, owner: u32, control: RunControl, reporter: Reporter) {
    let uid = stream.peer_cred().map(|c| c.uid()).ok();
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
        // A probe (`convoy runs`): connecting was the question.
        return;
    }
    let word = line.trim();
    let answer = if uid != Some(owner) {
        ControlAnswer {
            done: false,
            message: format!(
                "refused: this run belongs to uid {owner}, and `convoy ctl` came from {}; only the user who started a run may control it",
                uid.map_or("an unknown uid".into(), |u| format!("uid {u}"))
            ),
        }
    } else {
        match ControlCommand::parse(word) {
            Some(command) => control.request(command).await,
            None => ControlAnswer {
                done: false,
                message: format!(
                    "unknown command `{}`: pause, continue, stop or rollback",
                    word.escape_debug()
                ),
            },
        }
    };
    reporter.send(Event::Control {
        command: word.chars().take(40).collect(),
        uid,
        done: answer.done,
        answer: answer.message.clone(),
    });
    let reply = json!({"done": answer.done, "answer": answer.message});
    let _ = write.write_all(format!("{reply}\n").as_bytes()).await;
    let _ = write.shutdown().await;
}
