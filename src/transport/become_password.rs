//! Becoming another user with a password, as ansible-core's sudo plugin and
//! ssh connection do it: sudo reads the password on stdin (`sudo -S`),
//! never from a command line, which the host's `ps` would show.
//!
//! Stdin is also the script's own input (a file's content, an artifact),
//! and a sudo that does not ask (NOPASSWD, a cached timestamp) must not
//! hand the password on to the script. So, per command, a random key names
//! both sudo's prompt (`-p`) and a marker the escalated shell prints before
//! anything else: convoy reads sudo's stderr and the command's stdout until
//! it sees the prompt (then writes the password and a newline) or the
//! marker (then the script runs, and only then is its stdin fed). A second
//! prompt is a wrong password; no prompt nor marker within the connection
//! timeout ends the command rather than hang.
//!
//! Without a password, escalation stays `sudo -n` (no extra round trip);
//! a sudo that then wants one says so, and that is "Missing sudo password".

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ExecOutput, Payload, quote};

/// The password sudo is given. It shows as stars (`Debug`) and is only
/// ever written to a command's stdin.
#[derive(Clone, PartialEq, Eq)]
pub struct BecomePassword(Arc<str>);

impl BecomePassword {
    /// A password; an empty one is none (ansible-core then runs `sudo -n`).
    /// From here on, output shows it as `********` wherever it would appear
    /// (a task printing its variable, a script echoing it).
    pub fn new(text: &str) -> Option<BecomePassword> {
        if text.is_empty() {
            return None;
        }
        crate::vault::conceal(text);
        Some(BecomePassword(Arc::from(text)))
    }
}

impl fmt::Debug for BecomePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BecomePassword(********)")
    }
}

/// Why escalation failed, in ansible-core's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BecomeFailure {
    /// sudo asked again after the password was written.
    #[error("Incorrect sudo password")]
    Incorrect,
    /// sudo needs a password and none was given (`-K`, `--become-password-file`,
    /// `ansible_become_password`). ansible-core's words exactly: a task
    /// registering the failure sees the same `msg`.
    #[error("Missing sudo password")]
    Missing,
    /// Neither sudo's prompt nor the command's start came in time.
    #[error("Timeout ({}s) waiting for privilege escalation prompt", .0.as_secs())]
    Timeout(Duration),
}

/// One command's escalation with a password: its prompt and marker.
pub(crate) struct Challenge {
    key: String,
    password: BecomePassword,
}

impl Challenge {
    /// A fresh key (32 lowercase letters, as ansible-core's): a script's
    /// own output cannot guess it.
    pub(crate) fn new(password: &BecomePassword) -> Challenge {
        let key = (0..32)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        Challenge {
            key,
            password: password.clone(),
        }
    }

    /// Letters only: sudo expands `%` escapes in a prompt, and none is here.
    fn prompt(&self) -> String {
        format!("[sudo via convoy, key={}] password:", self.key)
    }

    fn marker(&self) -> String {
        format!("BECOME-SUCCESS-{}\n", self.key)
    }

    /// SCRIPT run through sudo as `user` by the shell `shell` makes (its
    /// variables in front), the marker printed first.
    pub(crate) fn command_line(
        &self,
        user: &str,
        script: &str,
        shell: &dyn Fn(&str) -> String,
    ) -> String {
        let marked = format!("echo {}\n{script}", self.marker().trim_end());
        format!(
            "sudo -H -S -p {} -u {} -- {}",
            quote(&self.prompt()),
            quote(user),
            shell(&marked)
        )
    }

    /// Answers sudo on `stdin`, then (once the command started) feeds it
    /// `payload`; answers all that the command printed, sudo's prompt and
    /// the marker taken out. `within` bounds the wait for sudo.
    pub(crate) async fn converse<O, E, W>(
        &self,
        mut stdout: O,
        mut stderr: E,
        mut stdin: W,
        payload: Option<Payload>,
        within: Duration,
    ) -> Result<(Vec<u8>, Vec<u8>), BecomeFailure>
    where
        O: AsyncRead + Unpin,
        E: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let opened = self
            .start(&mut stdout, &mut stderr, &mut stdin, within)
            .await?;
        let Opened {
            mut out,
            mut err,
            started,
        } = opened;
        let feed = async move {
            match payload.filter(|_| started) {
                Some(payload) => drop(payload.feed(stdin).await),
                // EOF: a script reads no stdin, as with `Stdio::null()`.
                None => drop(stdin),
            }
        };
        let (_, _, _) = tokio::join!(
            feed,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        Ok((out, err))
    }

    /// Answers sudo on `stdin` until the command starts (or sudo ends),
    /// within `within`; what the command printed first is in [`Opened`].
    pub(crate) async fn start<O, E, W>(
        &self,
        stdout: &mut O,
        stderr: &mut E,
        stdin: &mut W,
        within: Duration,
    ) -> Result<Opened, BecomeFailure>
    where
        O: AsyncRead + Unpin,
        E: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        tokio::time::timeout(within, self.answer(stdout, stderr, stdin))
            .await
            .map_err(|_| BecomeFailure::Timeout(within))?
    }

    /// Reads until the marker (the command started), or both streams end
    /// (sudo refused: its own message is in stderr, its status tells).
    async fn answer<O, E, W>(
        &self,
        stdout: &mut O,
        stderr: &mut E,
        stdin: &mut W,
    ) -> Result<Opened, BecomeFailure>
    where
        O: AsyncRead + Unpin,
        E: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (prompt, marker) = (self.prompt().into_bytes(), self.marker().into_bytes());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut out_open, mut err_open, mut answered) = (true, true, false);
        // Where the search for the prompt goes on in `err`.
        let mut scanned = 0;
        let (mut out_buf, mut err_buf) = ([0u8; 4096], [0u8; 4096]);
        loop {
            // Bytes before the marker are the login shell's, not the command's.
            if let Some(at) = find(&out, &marker) {
                out.drain(..at + marker.len());
                return Ok(Opened {
                    out,
                    err,
                    started: true,
                });
            }
            if !out_open && !err_open {
                return Ok(Opened {
                    out,
                    err,
                    started: false,
                });
            }
            tokio::select! {
                n = stdout.read(&mut out_buf), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => out.extend_from_slice(&out_buf[..n]),
                },
                n = stderr.read(&mut err_buf), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => err.extend_from_slice(&err_buf[..n]),
                },
            }
            while let Some(at) = find(&err[scanned..], &prompt).map(|at| at + scanned) {
                if answered {
                    return Err(BecomeFailure::Incorrect);
                }
                err.drain(at..at + prompt.len());
                scanned = at;
                answered = true;
                let mut line = self.password.0.as_bytes().to_vec();
                line.push(b'\n');
                // A sudo gone meanwhile has said why on stderr.
                let _ = stdin.write_all(&line).await;
                let _ = stdin.flush().await;
            }
            if answered && find(&err, b"Sorry, try again.").is_some() {
                return Err(BecomeFailure::Incorrect);
            }
            // A prompt may arrive in pieces: look again from where one could start.
            scanned = scanned.max(err.len().saturating_sub(prompt.len()));
        }
    }
}

/// What sudo's handshake left: the command's first output, read with it.
pub(crate) struct Opened {
    pub(crate) out: Vec<u8>,
    pub(crate) err: Vec<u8>,
    /// The marker came: the command runs and reads its stdin.
    pub(crate) started: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `sudo -n` refused for want of a password (ansible-core's sudo plugin's
/// `missing` messages): sudo alone wrote, the command never started.
pub(crate) fn wanted_a_password(out: &ExecOutput) -> bool {
    out.status == 1
        && out.stdout.is_empty()
        && out.stderr_str().trim().lines().last().is_some_and(|l| {
            l == "sudo: a password is required" || l == "Sorry, a password is required to run sudo"
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(password: &str) -> Challenge {
        Challenge::new(&BecomePassword::new(password).unwrap())
    }

    #[test]
    fn the_password_is_never_on_the_command_line_nor_in_debug_output() {
        let c = challenge("s3cret-pw");
        let line = c.command_line("root", "id -u", &|t| format!("sh -c {}", quote(t)));
        assert!(!line.contains("s3cret-pw"), "{line}");
        assert!(
            line.starts_with("sudo -H -S -p '[sudo via convoy, key="),
            "{line}"
        );
        assert!(
            line.contains(&format!("echo BECOME-SUCCESS-{}", c.key)),
            "{line}"
        );
        assert_eq!(
            format!("{:?}", BecomePassword::new("s3cret-pw").unwrap()),
            "BecomePassword(********)"
        );
        assert_eq!(BecomePassword::new(""), None);
    }

    #[test]
    fn every_command_gets_its_own_key() {
        let pw = BecomePassword::new("x").unwrap();
        assert_ne!(Challenge::new(&pw).key, Challenge::new(&pw).key);
        assert!(
            Challenge::new(&pw)
                .key
                .bytes()
                .all(|b| b.is_ascii_lowercase())
        );
    }

    /// A sudo that asks: the password goes in, then the payload, and the
    /// outputs come back without the prompt and the marker.
    #[tokio::test]
    async fn the_password_answers_the_prompt_and_the_payload_follows_the_marker() {
        let c = challenge("pw1");
        let (stdin_w, mut stdin_r) = tokio::io::duplex(4096);
        let (mut out_w, out_r) = tokio::io::duplex(4096);
        let (mut err_w, err_r) = tokio::io::duplex(4096);
        let (prompt, marker) = (c.prompt(), c.marker());
        let host = async move {
            err_w.write_all(b"lecture\n").await.unwrap();
            err_w.write_all(prompt.as_bytes()).await.unwrap();
            let mut got = vec![0u8; 4];
            stdin_r.read_exact(&mut got).await.unwrap();
            assert_eq!(got, b"pw1\n");
            out_w.write_all(marker.as_bytes()).await.unwrap();
            out_w.write_all(b"out\n").await.unwrap();
            let mut rest = Vec::new();
            stdin_r.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"content");
        };
        let talk = c.converse(
            out_r,
            err_r,
            stdin_w,
            Some(Payload::Bytes(b"content".to_vec())),
            Duration::from_secs(5),
        );
        let ((), answer) = tokio::join!(host, talk);
        let (out, err) = answer.unwrap();
        assert_eq!(out, b"out\n");
        assert_eq!(err, b"lecture\n");
    }

    /// NOPASSWD: no prompt, the marker at once; the password is never written.
    #[tokio::test]
    async fn a_sudo_that_does_not_ask_never_reads_the_password() {
        let c = challenge("pw1");
        let (stdin_w, mut stdin_r) = tokio::io::duplex(4096);
        let (mut out_w, out_r) = tokio::io::duplex(4096);
        let (err_w, err_r) = tokio::io::duplex(4096);
        let marker = c.marker();
        let host = async move {
            out_w.write_all(marker.as_bytes()).await.unwrap();
            drop((out_w, err_w));
            let mut all = Vec::new();
            stdin_r.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, b"content");
        };
        let talk = c.converse(
            out_r,
            err_r,
            stdin_w,
            Some(Payload::Bytes(b"content".to_vec())),
            Duration::from_secs(5),
        );
        let ((), answer) = tokio::join!(host, talk);
        assert_eq!(answer.unwrap().0, b"");
    }

    #[tokio::test]
    async fn a_second_prompt_is_an_incorrect_password_and_silence_a_timeout() {
        let c = challenge("wrong");
        let (stdin_w, _stdin_r) = tokio::io::duplex(4096);
        let (_out_w, out_r) = tokio::io::duplex(4096);
        let (mut err_w, err_r) = tokio::io::duplex(4096);
        let prompt = c.prompt();
        err_w
            .write_all(format!("{prompt}Sorry, try again.\n{prompt}").as_bytes())
            .await
            .unwrap();
        let got = c
            .converse(out_r, err_r, stdin_w, None, Duration::from_secs(5))
            .await;
        assert_eq!(got.unwrap_err(), BecomeFailure::Incorrect);

        let c = challenge("pw");
        let (stdin_w, _stdin_r) = tokio::io::duplex(4096);
        let (_out_w, out_r) = tokio::io::duplex(4096);
        let (_err_w, err_r) = tokio::io::duplex(4096);
        let got = c
            .converse(out_r, err_r, stdin_w, None, Duration::from_millis(100))
            .await;
        assert_eq!(
            got.unwrap_err().to_string(),
            "Timeout (0s) waiting for privilege escalation prompt"
        );
    }

    #[test]
    fn sudo_n_wanting_a_password_is_told_apart_from_a_failing_script() {
        let out = |status, stdout: &str, stderr: &str| ExecOutput {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
        };
        assert!(wanted_a_password(&out(
            1,
            "",
            "sudo: a password is required\n"
        )));
        assert!(!wanted_a_password(&out(
            1,
            "x",
            "sudo: a password is required\n"
        )));
        assert!(!wanted_a_password(&out(2, "", "no such file\n")));
    }
}
