//! One host's answer to "what does your supervisor run?", parsed from the
//! lines the status script prints (see `script.rs`).

use serde::Serialize;

/// Which supervisor a host has; detected on the host, per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Supervisor {
    Supervisord,
    Systemd,
}

impl std::fmt::Display for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Supervisor::Supervisord => "supervisord",
            Supervisor::Systemd => "systemd",
        })
    }
}

/// A program (supervisord) or unit (systemd) on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramStatus {
    pub name: String,
    /// The supervisor's own word: `RUNNING`, `STOPPED`, `EXITED`, `FATAL`
    /// (supervisord); `active/running`, `failed/failed` (systemd).
    pub state: String,
    pub running: bool,
    pub pid: Option<u32>,
    /// Seconds since the process started.
    pub uptime_secs: Option<u64>,
    /// The release the process runs from: its working directory matched
    /// against `…/releases/<version>`, so a process started through the
    /// `current` symlink names the release it actually runs, even after
    /// `current` has moved on.
    pub release: Option<String>,
    /// The process's working directory, when it has one.
    pub cwd: Option<String>,
}

/// Everything one host's supervisor runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPrograms {
    pub supervisor: Supervisor,
    pub programs: Vec<ProgramStatus>,
}

impl HostPrograms {
    /// Parses the status script's output: a `supervisor KIND` line, then
    /// one `program` line per program with tab-separated fields
    /// (name, state, pid, elapsed seconds, cwd; empty when unknown).
    pub fn parse(stdout: &str) -> Result<HostPrograms, String> {
        let mut lines = stdout.lines();
        let supervisor = match lines.next().map(str::trim) {
            Some("supervisor supervisord") => Supervisor::Supervisord,
            Some("supervisor systemd") => Supervisor::Systemd,
            other => return Err(format!("unexpected answer from the host: {other:?}")),
        };
        let mut programs = Vec::new();
        for line in lines {
            let Some(fields) = line.strip_prefix("program\t") else {
                continue;
            };
            let mut f = fields.split('\t');
            let mut next = || f.next().map(str::trim).filter(|s| !s.is_empty());
            let Some(name) = next() else { continue };
            let state = next().unwrap_or("UNKNOWN").to_owned();
            let pid = next().and_then(|p| p.parse().ok()).filter(|p| *p > 0);
            let uptime_secs = next().and_then(|s| s.parse().ok());
            let cwd = next().map(str::to_owned);
            let running = match supervisor {
                Supervisor::Supervisord => state == "RUNNING",
                Supervisor::Systemd => state.starts_with("active/"),
            };
            programs.push(ProgramStatus {
                name: name.to_owned(),
                release: cwd.as_deref().and_then(release_of),
                // A stopped process has no pid, so no uptime or cwd worth showing.
                uptime_secs: pid.and(uptime_secs),
                cwd: pid.and(cwd),
                state,
                running,
                pid,
            });
        }
        Ok(HostPrograms {
            supervisor,
            programs,
        })
    }

    pub fn program(&self, name: &str) -> Option<&ProgramStatus> {
        self.programs.iter().find(|p| p.name == name)
    }
}

/// `/srv/shop/releases/2.4.1/bin` -> `2.4.1`: the directory after the last
/// `releases` component.
fn release_of(cwd: &str) -> Option<String> {
    let parts: Vec<&str> = cwd.split('/').collect();
    let at = parts.iter().rposition(|p| *p == "releases")?;
    parts
        .get(at + 1)
        .filter(|v| !v.is_empty())
        .map(|v| (*v).to_owned())
}

/// `75` -> `1m15s`; whole units only, two at most, as `ps` users read them.
pub fn human_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_running_and_stopped_programs() {
        let out = "supervisor supervisord\nprogram\tweb\tRUNNING\t42\t75\t/srv/app/releases/1.2.0\nprogram\tsleeper\tEXITED\t\t\t\n";
        let host = HostPrograms::parse(out).unwrap();
        assert_eq!(host.supervisor, Supervisor::Supervisord);
        let web = host.program("web").unwrap();
        assert_eq!(
            (
                web.running,
                web.pid,
                web.uptime_secs,
                web.release.as_deref()
            ),
            (true, Some(42), Some(75), Some("1.2.0"))
        );
        let sleeper = host.program("sleeper").unwrap();
        assert_eq!(
            (sleeper.running, sleeper.pid, sleeper.release.as_deref()),
            (false, None, None)
        );
        assert_eq!(sleeper.state, "EXITED");
    }

    #[test]
    fn a_release_is_the_directory_under_releases() {
        assert_eq!(
            release_of("/srv/a/releases/2.0/bin").as_deref(),
            Some("2.0")
        );
        assert_eq!(release_of("/srv/a/current"), None);
        assert_eq!(release_of("/srv/releases/"), None);
    }

    #[test]
    fn an_unexpected_answer_is_an_error() {
        assert!(HostPrograms::parse("hello\n").is_err());
    }

    #[test]
    fn uptimes_read_like_ps() {
        assert_eq!(human_uptime(5), "5s");
        assert_eq!(human_uptime(75), "1m15s");
        assert_eq!(human_uptime(3 * 3600 + 120), "3h02m");
        assert_eq!(human_uptime(2 * 86400 + 3600), "2d01h");
    }
}
