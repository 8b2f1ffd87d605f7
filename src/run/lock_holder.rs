//! What convoy can know about the run holding a deploy lock, and what it
//! tells the operator who was refused. A lock is taken over without asking
//! only when its run is known to have ended: its journal in this project
//! records `run_end`, or its process ran where this one runs (same boot,
//! same pid namespace) and is gone.
//! Anything else is refused with what to do.

use std::path::Path;
use std::time::Duration;

use crate::distribution::lock::{self, Holder};

/// The holder of a lock we met, as far as this machine can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderStatus {
    /// Its run is over (why, in words): the lock is a leftover.
    Ended(String),
    /// A process on this machine that is still running.
    AliveHere { pid: u32 },
    /// Not renewed for longer than the stale bound: its run stopped
    /// renewing it (ended elsewhere, killed, or cut off from the host).
    Stale,
    /// Renewed recently from another machine (or an unreadable holder
    /// line): convoy cannot tell from here whether it is alive.
    Unknown,
}

/// Judges the holder `line` of a lock last renewed `age` ago. `journals`
/// is this project's `.convoy/runs`.
pub fn assess(line: &str, age: Duration, stale_after: Duration, journals: &Path) -> HolderStatus {
    let Some(holder) = Holder::parse(line) else {
        return if age > stale_after {
            HolderStatus::Stale
        } else {
            HolderStatus::Unknown
        };
    };
    if let Some(outcome) = journal_end(journals, &holder.run_id) {
        return HolderStatus::Ended(format!("its journal records its end ({outcome})"));
    }
    let ours = match &holder.process_space {
        Some(space) => lock::process_space().as_ref() == Some(space),
        // Written by a convoy that did not record it: the machine name must do.
        None => holder.machine() == whoami::hostname().unwrap_or_default(),
    };
    if ours && holder.pid != 0 {
        // A pid reused by another process reads as alive: the safe side.
        return if Path::new(&format!("/proc/{}", holder.pid)).exists() {
            HolderStatus::AliveHere { pid: holder.pid }
        } else {
            HolderStatus::Ended(format!(
                "its process (pid {}) on this machine is gone",
                holder.pid
            ))
        };
    }
    if age > stale_after {
        HolderStatus::Stale
    } else {
        HolderStatus::Unknown
    }
}

/// The outcome recorded by run `run_id`'s `run_end`, if its journal is in
/// `journals` and ends with one.
fn journal_end(journals: &Path, run_id: &str) -> Option<String> {
    // The id comes from a file on the host: it must not name a path elsewhere.
    let plain = !run_id.is_empty()
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return None;
    }
    let text = std::fs::read_to_string(journals.join(format!("{run_id}.jsonl"))).ok()?;
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let event: serde_json::Value = serde_json::from_str(last).ok()?;
    (event["event"] == "run_end").then(|| event["outcome"].as_str().unwrap_or("ended").to_owned())
}

/// The refusal for one host: who holds the lock, whether it is alive, and
/// what to do about it.
pub fn refusal(
    host: &str,
    line: &str,
    age: Duration,
    status: &HolderStatus,
    stale_after: Duration,
) -> String {
    let who = if line.is_empty() {
        "an unreadable holder".to_owned()
    } else {
        line.to_owned()
    };
    let age = humantime::format_duration(Duration::from_secs(age.as_secs()));
    let stale = humantime::format_duration(stale_after);
    match status {
        HolderStatus::AliveHere { pid } => format!(
            "{host}: locked by {who} (renewed {age} ago): that run is alive on this machine (pid {pid}); wait for it to end, or stop it (`kill -INT {pid}`)"
        ),
        HolderStatus::Stale => format!(
            "{host}: locked by {who}, not renewed for {age}: its run stopped renewing it (ended, killed, or cut off from the host); run again with --force-unlock to take it over"
        ),
        HolderStatus::Unknown => format!(
            "{host}: locked by {who} (renewed {age} ago): convoy cannot tell from this machine whether that run is alive; wait for it to end, or, if you know it has ended, run `convoy unlock PLAYBOOK` (--force-unlock takes it once it has gone {stale} without renewal)"
        ),
        HolderStatus::Ended(why) => {
            format!("{host}: locked by {who}: {why}, but its lock could not be taken over")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn line(machine: &str, pid: u32, run: &str) -> String {
        format!("ops@{machine} pid={pid} run={run} since=2026-11-22T10:00:00Z")
    }

    #[test]
    fn a_live_process_here_is_alive_however_old_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let me = Holder::this_process("ops@elsewhere".into(), "r1".into()).line();
        let status = assess(&me, 60 * MINUTE, 5 * MINUTE, dir.path());
        let pid = std::process::id();
        assert_eq!(status, HolderStatus::AliveHere { pid });
        // Without a process space (an older convoy), the machine name decides.
        let here = whoami::hostname().unwrap();
        let status = assess(&line(&here, pid, "r1"), MINUTE, 5 * MINUTE, dir.path());
        assert_eq!(status, HolderStatus::AliveHere { pid });
    }

    #[test]
    fn a_process_gone_from_our_process_space_has_ended() {
        let dir = tempfile::tempdir().unwrap();
        let mut gone = Holder::this_process("ops@elsewhere".into(), "r1".into());
        gone.pid = u32::MAX - 1;
        let status = assess(&gone.line(), MINUTE, 5 * MINUTE, dir.path());
        assert!(matches!(status, HolderStatus::Ended(_)), "{status:?}");
        // The same machine name in another pid namespace (a container): cannot tell.
        gone.process_space = Some("other-boot.1".into());
        gone.by = format!("ops@{}", whoami::hostname().unwrap());
        let status = assess(&gone.line(), MINUTE, 5 * MINUTE, dir.path());
        assert_eq!(status, HolderStatus::Unknown);
    }

    #[test]
    fn a_journal_with_run_end_means_ended_even_from_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r1.jsonl"),
            "{\"event\":\"run_start\"}\n{\"event\":\"run_end\",\"outcome\":\"unreachable\",\"exit_code\":4}\n",
        )
        .unwrap();
        let status = assess(&line("elsewhere", 1, "r1"), MINUTE, 5 * MINUTE, dir.path());
        assert!(
            matches!(&status, HolderStatus::Ended(why) if why.contains("unreachable")),
            "{status:?}"
        );
        // A journal without its end says nothing.
        std::fs::write(dir.path().join("r2.jsonl"), "{\"event\":\"run_start\"}\n").unwrap();
        let status = assess(&line("elsewhere", 1, "r2"), MINUTE, 5 * MINUTE, dir.path());
        assert_eq!(status, HolderStatus::Unknown);
    }

    #[test]
    fn elsewhere_only_age_tells() {
        let dir = tempfile::tempdir().unwrap();
        let l = line("elsewhere", 1, "../../etc/passwd");
        assert_eq!(
            assess(&l, MINUTE, 5 * MINUTE, dir.path()),
            HolderStatus::Unknown
        );
        assert_eq!(
            assess(&l, 6 * MINUTE, 5 * MINUTE, dir.path()),
            HolderStatus::Stale
        );
        assert_eq!(
            assess("", 6 * MINUTE, 5 * MINUTE, dir.path()),
            HolderStatus::Stale
        );
    }
}
