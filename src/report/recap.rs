use std::time::Duration;

use indexmap::IndexMap;
use serde::Serialize;

use super::Status;

/// Totals per host for the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub unreachable: u32,
    pub ignored: u32,
    pub rescued: u32,
    /// Bytes handed to this host's transport (scripts and payloads).
    pub bytes_sent: u64,
    /// Artifact payload sent to this host (0 when it already had the artifact).
    pub artifact_bytes: u64,
    /// Remote commands run on this host (each one round trip).
    pub round_trips: u64,
}

impl HostStats {
    pub fn count(&mut self, status: Status, ignored: bool) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Changed => {
                self.ok += 1;
                self.changed += 1
            }
            // ansible-core counts an ignored failure `ok` too.
            Status::Failed if ignored => {
                self.ok += 1;
                self.ignored += 1
            }
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
            Status::Unreachable => self.unreachable += 1,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Recap {
    pub hosts: IndexMap<String, HostStats>,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    pub interrupted: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Recap {
    /// Ansible-style recap lines, aligned.
    pub fn lines(&self) -> Vec<String> {
        let width = self.hosts.keys().map(String::len).max().unwrap_or(0);
        let mut lines = vec!["PLAY RECAP".to_owned()];
        for (host, s) in &self.hosts {
            lines.push(format!(
                "{host:<width$} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4} artifact={:<8} sent={}",
                s.ok, s.changed, s.unreachable, s.failed, s.skipped, s.rescued, s.ignored, human_bytes(s.artifact_bytes), human_bytes(s.bytes_sent)
            ));
        }
        lines.push(format!(
            "{} host(s) in {:.1}s{}",
            self.hosts.len(),
            self.elapsed.as_secs_f64(),
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        ));
        lines
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
