//! Scripts that run until convoy tells them to stop (`convoy logs -f`):
//! their stdout is handed on line by line as it arrives, and stopping is
//! closing their stdin. The script is written to end on that EOF (it
//! waits on `cat >/dev/null`, then cleans up), so nothing is left running
//! on the host after convoy ends, whichever transport carried it.

use std::future::Future;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};

/// How long a stopped script may take to end before convoy stops waiting.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Pumps `stdout` into `line` until it ends or `stop` resolves; then closes
/// `stdin` and reads what is left (at most [`SETTLE`]). Answers stderr.
pub(super) async fn pump<R, E, W>(
    stdout: R,
    stderr: E,
    stdin: W,
    line: &mut (dyn FnMut(String) + Send),
    stop: impl Future<Output = ()>,
) -> String
where
    R: AsyncRead + Unpin,
    E: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut stdin = Some(stdin);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            next = lines.next_line() => match next {
                Ok(Some(l)) => line(l),
                _ => break,
            },
            () = &mut stop, if stdin.is_some() => {
                // Dropping the pipe is the EOF the script waits for.
                stdin = None;
                let rest = async {
                    while let Ok(Some(l)) = lines.next_line().await {
                        line(l);
                    }
                };
                let _ = tokio::time::timeout(SETTLE, rest).await;
                break;
            }
        }
    }
    drop(stdin);
    tokio::time::timeout(SETTLE, errors)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// [`pump`] for a script run through sudo with a password: sudo's
/// handshake first (`become_password`), then the script's lines,
/// starting with those read during the handshake.
pub(super) async fn pump_escalated<R, E, W>(
    challenge: &super::become_password::Challenge,
    mut stdout: R,
    mut stderr: E,
    mut stdin: W,
    line: &mut (dyn FnMut(String) + Send),
    stop: impl Future<Output = ()>,
    within: std::time::Duration,
) -> Result<String, super::TransportError>
where
    R: AsyncRead + Unpin,
    E: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let opened = challenge
        .start(&mut stdout, &mut stderr, &mut stdin, within)
        .await?;
    let stdout = std::io::Cursor::new(opened.out).chain(stdout);
    let stderr = std::io::Cursor::new(opened.err).chain(stderr);
    Ok(pump(stdout, stderr, stdin, line, stop).await)
}
