//! `convoy logs --since`: where the logs start, as a span back from now
//! (`10m`) or a UTC time (`2026-12-01T17:00:00Z`), checked on the control
//! machine and handed to the host as one value.

use std::time::{Duration, SystemTime};

/// The start of the logs asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogsSince {
    /// This long ago.
    Ago(Duration),
    /// This moment (UTC).
    At(SystemTime),
}

impl LogsSince {
    /// `10m`, `1h30m` (a span back from now) or an RFC 3339 time.
    pub fn parse(text: &str) -> Result<LogsSince, String> {
        if let Ok(span) = humantime::parse_duration(text) {
            return Ok(LogsSince::Ago(span));
        }
        humantime::parse_rfc3339_weak(text)
            .map(LogsSince::At)
            .map_err(|_| {
                format!("{text:?} is neither a span (10m, 1h30m) nor a time (2026-12-01T17:00:00Z)")
            })
    }

    /// The value for `journalctl --since` (systemd.time(7): `-600s` is
    /// that long ago; a time is given in UTC).
    pub fn journal_arg(&self) -> String {
        match self {
            LogsSince::Ago(span) => format!("-{}s", span.as_secs()),
            LogsSince::At(at) => {
                let text = humantime::format_rfc3339_seconds(*at).to_string();
                format!("{} UTC", text.trim_end_matches('Z').replace('T', " "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times_become_journalctl_values() {
        assert_eq!(LogsSince::parse("10m").unwrap().journal_arg(), "-600s");
        assert_eq!(
            LogsSince::parse("2026-12-01T17:00:00Z")
                .unwrap()
                .journal_arg(),
            "2026-12-01 17:00:00 UTC"
        );
        assert!(LogsSince::parse("yesterday; rm -rf /").is_err());
    }
}
