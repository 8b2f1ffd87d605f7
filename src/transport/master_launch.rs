//! Starting one host's SSH master (`ssh -M -f -N`) and attaching to it.
//!
//! The `openssh` crate's `SessionBuilder` starts the master with a fixed
//! set of options and takes no others; convoy starts it itself, with the
//! same options the builder gives (so the behaviour it documents holds:
//! BatchMode, host key checking, a bounded ControlPersist, the control
//! socket in a private directory) and the cipher preference of
//! `cipher_preference`, then hands the directory to `Session::new_native_mux`,
//! which owns and removes it as it would its own.

use std::path::Path;
use std::process::Stdio;

use openssh::Session;

use super::TransportError;
use super::cipher_preference;
use super::ssh::SshTarget;

/// Idle seconds after which a master exits by itself (ControlPersist): if
/// convoy is killed hard, the master still goes away soon.
const PERSIST_SECS: u64 = 60;
const SERVER_ALIVE_SECS: u64 = 15;

/// Opens `target`'s master with its control socket in a new directory
/// under `control_dir`.
pub async fn open(target: &SshTarget, control_dir: &Path) -> Result<Session, TransportError> {
    let ciphers = cipher_preference::option_for(target.config_file.as_deref());
    match launch(target, control_dir, ciphers).await {
        Err(Failed(log)) if ciphers.is_some() && cipher_preference::refused(&log) => {
            launch(target, control_dir, None).await
        }
        other => other,
    }
    .map_err(|Failed(log)| TransportError::Connect {
        reason: reason(&log),
    })
}

/// What ssh said when the master could not start.
struct Failed(String);

async fn launch(
    target: &SshTarget,
    control_dir: &Path,
    ciphers: Option<&str>,
) -> Result<Session, Failed> {
    let dir = tempfile::Builder::new()
        .prefix(".ssh-connection")
        .tempdir_in(control_dir)
        .map_err(|e| Failed(format!("cannot create a control directory: {e}")))?;
    let log = dir.path().join("log");
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(dir.path().join("master"))
        .args(["-M", "-f", "-N"])
        .arg("-o")
        .arg(format!("ControlPersist={PERSIST_SECS}s"))
        .args(["-o", "BatchMode=yes", "-o"])
        .arg(if target.accept_new_host_keys {
            "StrictHostKeyChecking=accept-new"
        } else {
            "StrictHostKeyChecking=yes"
        })
        .arg("-o")
        .arg(format!(
            "ConnectTimeout={}",
            target.connect_timeout.as_secs()
        ))
        .arg("-o")
        .arg(format!("ServerAliveInterval={SERVER_ALIVE_SECS}"));
    if let Some(ciphers) = ciphers {
        cmd.arg("-o").arg(ciphers);
    }
    if let Some(port) = target.port {
        cmd.arg("-p").arg(port.to_string());
    }
    if let Some(user) = &target.user {
        cmd.arg("-l").arg(user);
    }
    if let Some(key) = &target.key_file {
        // Only that key, as ssh -i alone would not ensure.
        cmd.args(["-o", "IdentitiesOnly=yes", "-i"]).arg(key);
    }
    if let Some(config) = &target.config_file {
        cmd.arg("-F").arg(config);
    }
    // The address was checked not to start with `-` (see run/connect.rs).
    cmd.arg(&target.address);
    // ssh forks into the background once connected; it is waited for until then.
    let status = cmd
        .status()
        .await
        .map_err(|e| Failed(format!("cannot run ssh: {e}")))?;
    if !status.success() {
        return Err(Failed(std::fs::read_to_string(&log).unwrap_or_default()));
    }
    Ok(Session::new_native_mux(dir))
}

/// One line from ssh's log: without its `ssh: ` prefix and the note that a
/// host key was added (which accompanies a failure after accept-new).
fn reason(log: &str) -> String {
    let mut text = log.trim();
    text = text.strip_prefix("ssh: ").unwrap_or(text);
    if text.starts_with("Warning: Permanently added ") {
        text = text.split_once('\n').map_or("", |(_, rest)| rest.trim());
    }
    if text.is_empty() {
        return "ssh exited without saying why".into();
    }
    super::ssh_error::summarize(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_ssh_s_last_line_without_the_added_key_note() {
        assert_eq!(
            reason("ssh: connect to host 10.0.0.1 port 22: Connection refused\r\n"),
            "ssh: connect to host 10.0.0.1 port 22: Connection refused"
                .strip_prefix("ssh: ")
                .unwrap()
        );
        assert_eq!(
            reason(
                "Warning: Permanently added '10.0.0.1' (ED25519) to the list of known hosts.\nroot@10.0.0.1: Permission denied (publickey)."
            ),
            "root@10.0.0.1: Permission denied (publickey)"
        );
        assert_eq!(reason(""), "ssh exited without saying why");
    }
}
