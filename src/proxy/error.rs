//! Everything that can go wrong with a proxy tier, each message naming the
//! proxy host and file, and saying what state the proxy was left in.

use super::config::RenderedFile;
use crate::error::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE};
use crate::inventory::InventoryError;
use crate::source::SourceSpan;
use crate::template::TemplateError;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The section's `hosts` pattern is malformed or selects nothing.
    #[error("{source}\n{}", span.snippet())]
    Pattern {
        source: InventoryError,
        span: SourceSpan,
    },
    /// A proxy file (its template, `dest`, `loop`, `mode`) or command does
    /// not render for a proxy host.
    #[error("{error}\n  ({what} for proxy host {host})\n{}", span.snippet())]
    Template {
        error: TemplateError,
        /// `proxy file TEMPLATE (item NAME)` or `proxy validate command`.
        what: String,
        host: String,
        span: SourceSpan,
    },
    /// The section renders to something convoy cannot install: a relative
    /// `dest`, two files with one `dest`, a `loop` that is not a list...
    #[error("{message}\n  ({what} for proxy host {host})\n{}", span.snippet())]
    Invalid {
        message: String,
        what: String,
        host: String,
        span: SourceSpan,
    },
    /// The proxy host's `ansible_become*` variables ask for what convoy cannot do.
    #[error("proxy {0}")]
    Become(#[from] crate::run::BecomeError),
    #[error("proxy host {host} is unreachable: {source}")]
    Unreachable {
        host: String,
        source: TransportError,
    },
    /// Writing or swapping in the files failed; whatever was swapped in was put back.
    #[error("proxy host {host}: {message}; the previous proxy files are in place")]
    Install { host: String, message: String },
    /// `validate` rejected the config with the new files in place.
    #[error(
        "proxy host {host}: `{command}` rejected the new config; the previous files are back in place and nothing was reloaded:\n{}{}",
        indent(output),
        rejected.iter().map(RejectedFile::to_string).collect::<String>()
    )]
    Validate {
        host: String,
        command: String,
        output: String,
        /// The new files, as rendered (those the validator names, else all).
        rejected: Vec<RejectedFile>,
    },
    /// `reload` failed with the new files; they were replaced by the
    /// previous ones and `reload` ran again (`restored` is how that went).
    #[error(
        "proxy host {host}: `{command}` failed with the new files:\n{}{}",
        indent(output),
        match restored {
            Ok(()) => "  the previous files were restored and reloaded".to_owned(),
            Err(again) => format!(
                "  the previous files were restored, but reloading them failed too (check the proxy on {host} now):\n{}",
                indent(again)
            ),
        }
    )]
    Reload {
        host: String,
        command: String,
        output: String,
        restored: Result<(), String>,
    },
    /// Installed and reloaded, but the manifest could not be recorded.
    #[error(
        "proxy host {host}: the new files are installed and reloaded, but the manifest {path} cannot be written ({message}); until it can, files this play stops rendering are not pruned"
    )]
    Manifest {
        host: String,
        path: String,
        message: String,
    },
    /// `convoy lint`: the proxy's validator, run on this machine, rejects
    /// the files rendered for a proxy host.
    #[error(
        "`{validator}` on this machine rejects the proxy files rendered for proxy host {host}{}:\n{}{}{}",
        if *others > 0 { format!(" (and {others} other proxy host(s) with the same files)") } else { String::new() },
        indent(output),
        rejected.iter().map(RejectedFile::to_string).collect::<String>(),
        span.snippet()
    )]
    LocallyRejected {
        validator: String,
        host: String,
        others: usize,
        output: String,
        rejected: Vec<RejectedFile>,
        span: SourceSpan,
    },
    /// Several proxy hosts failed (each updated or left alone on its own).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Hosts(Vec<ProxyError>),
}

impl ProxyError {
    /// The proxy hosts this error is about, each with its one-line reason
    /// (none for errors about the playbook itself).
    pub fn hosts(&self) -> Vec<(&str, String)> {
        let first_line =
            |e: &ProxyError| e.to_string().lines().next().unwrap_or_default().to_owned();
        match self {
            ProxyError::Unreachable { host, .. }
            | ProxyError::Install { host, .. }
            | ProxyError::Validate { host, .. }
            | ProxyError::Reload { host, .. }
            | ProxyError::Manifest { host, .. } => vec![(host.as_str(), first_line(self))],
            ProxyError::Hosts(errors) => errors.iter().flat_map(ProxyError::hosts).collect(),
            ProxyError::Pattern { .. }
            | ProxyError::Template { .. }
            | ProxyError::Invalid { .. }
            | ProxyError::Become(_)
            | ProxyError::LocallyRejected { .. } => vec![],
        }
    }

    /// The exit code, as README documents them: 3 for what is wrong in the
    /// input (nothing was contacted), 2 for a proxy that refused the change,
    /// 4 for an unreachable proxy host; a failure wins over unreachable.
    pub fn exit_code(&self) -> i32 {
        match self {
            ProxyError::Pattern { .. }
            | ProxyError::Template { .. }
            | ProxyError::Invalid { .. }
            | ProxyError::Become(_)
            | ProxyError::LocallyRejected { .. } => EXIT_BAD_INPUT,
            ProxyError::Unreachable { .. } => EXIT_UNREACHABLE,
            ProxyError::Install { .. }
            | ProxyError::Validate { .. }
            | ProxyError::Reload { .. }
            | ProxyError::Manifest { .. } => EXIT_FAILED,
            ProxyError::Hosts(errors) => {
                let codes: Vec<i32> = errors.iter().map(ProxyError::exit_code).collect();
                [EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE]
                    .into_iter()
                    .find(|code| codes.contains(code))
                    .unwrap_or(EXIT_FAILED)
            }
        }
    }
}

/// A new file the validator rejected, shown as rendered: it is no longer
/// on the host (the previous one is back), so the message is the only place
/// to see it.
#[derive(Debug, Clone)]
pub struct RejectedFile {
    pub dest: String,
    pub template: String,
    /// Numbered lines: around the line the validator named, else the start.
    pub excerpt: String,
}

/// Lines shown of a rejected file.
const EXCERPT_LINES: usize = 12;

impl RejectedFile {
    /// `output` is the validator's: nginx and haproxy name the file and
    /// line (`in /etc/nginx/conf.d/x.conf:3`, `[/etc/haproxy/x.cfg:3]`).
    pub fn new(dest: &str, template: &str, content: &str, output: &str) -> RejectedFile {
        let line = named_line(output, dest);
        let lines: Vec<&str> = content.lines().collect();
        let start = line.map_or(0, |l| l.saturating_sub(EXCERPT_LINES / 2 + 1));
        let end = (start + EXCERPT_LINES).min(lines.len());
        let width = end.to_string().len();
        let mut excerpt = String::new();
        for (n, text) in lines.iter().enumerate().take(end).skip(start) {
            let mark = if Some(n + 1) == line { '>' } else { ' ' };
            excerpt.push_str(&format!("  {mark}{:>width$} | {text}\n", n + 1));
        }
        if end < lines.len() {
            excerpt.push_str(&format!("   {:>width$} | ...\n", ""));
        }
        RejectedFile {
            dest: dest.to_owned(),
            template: template.to_owned(),
            excerpt,
        }
    }

    /// The files of `candidates` the validator's `output` names, else all
    /// of them, each shown around the line named.
    pub fn shown(candidates: &[&RenderedFile], output: &str) -> Vec<RejectedFile> {
        let named: Vec<&&RenderedFile> = candidates
            .iter()
            .filter(|f| RejectedFile::is_named_in(&f.dest, output))
            .collect();
        let shown: Vec<&&RenderedFile> = if named.is_empty() {
            candidates.iter().collect()
        } else {
            named
        };
        shown
            .into_iter()
            .map(|f| RejectedFile::new(&f.dest, &f.template, &f.content, output))
            .collect()
    }

    /// Whether the validator's output names this file.
    pub fn is_named_in(dest: &str, output: &str) -> bool {
        output.match_indices(dest).any(|(i, _)| {
            !output[i + dest.len()..]
                .starts_with(|c: char| c.is_alphanumeric() || c == '.' || c == '-' || c == '_')
        })
    }
}

impl std::fmt::Display for RejectedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  rendered {} (from {}):\n{}",
            self.dest, self.template, self.excerpt
        )
    }
}

/// The line of `dest` that `output` points at (`dest:N` or `dest" line N`).
fn named_line(output: &str, dest: &str) -> Option<usize> {
    output.match_indices(dest).find_map(|(i, _)| {
        let rest = &output[i + dest.len()..];
        let digits = rest
            .strip_prefix(':')
            .or_else(|| rest.strip_prefix("\" line "))
            .or_else(|| rest.strip_prefix(" line "))?;
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

/// A validator's output without what is only noise in a message: haproxy's
/// notices (its version, its path), and the timestamp and pid that nginx
/// puts before each message once it logs to stderr.
pub fn validator_output(output: &str) -> String {
    output
        .lines()
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|line| {
            let dated = line.len() > 20
                && line.as_bytes()[4] == b'/'
                && line[..4].bytes().all(|b| b.is_ascii_digit());
            match line.find("] ") {
                Some(level_end) if dated => {
                    let level = line[..=level_end].rsplit(' ').next().unwrap_or_default();
                    let message = &line[level_end + 2..];
                    // `16823#16823: ` is the worker's pid and thread.
                    let message = message
                        .split_once(": ")
                        .filter(|(pid, _)| pid.bytes().all(|b| b.is_ascii_digit() || b == b'#'))
                        .map_or(message, |(_, m)| m);
                    format!("nginx: {level} {message}")
                }
                _ => line.to_owned(),
            }
        })
        .map(|l| l + "\n")
        .collect()
}

fn indent(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("  {l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = "nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/conf.d/b.conf:3\nnginx: configuration file /etc/nginx/nginx.conf test failed\n";

    #[test]
    fn a_rejected_file_is_shown_around_the_line_the_validator_names() {
        let content = "server {\n    listen 80;\n    bogus on;\n}\n";
        let file = RejectedFile::new("/etc/nginx/conf.d/b.conf", "t.j2", content, NGINX);
        assert_eq!(
            file.to_string(),
            "  rendered /etc/nginx/conf.d/b.conf (from t.j2):\n   1 | server {\n   2 |     listen 80;\n  >3 |     bogus on;\n   4 | }\n"
        );
    }

    #[test]
    fn noise_is_left_out_of_the_output() {
        let nginx = "2026/11/22 21:45:45 [emerg] 16823#16823: unknown directive \"x\" in /a.conf:13\nnginx: configuration file <lint>/nginx.conf test failed\n";
        assert_eq!(
            validator_output(nginx),
            "nginx: [emerg] unknown directive \"x\" in /a.conf:13\nnginx: configuration file <lint>/nginx.conf test failed\n"
        );
        let haproxy = "[NOTICE]   (1) : haproxy version is 2.6\n[ALERT]    (1) : config : parsing [/a.cfg:2] : bad\n";
        assert_eq!(
            validator_output(haproxy),
            "[ALERT]    (1) : config : parsing [/a.cfg:2] : bad\n"
        );
    }

    #[test]
    fn a_file_is_named_only_by_its_whole_path() {
        assert!(RejectedFile::is_named_in("/etc/nginx/conf.d/b.conf", NGINX));
        assert!(!RejectedFile::is_named_in("/etc/nginx/conf.d/b.co", NGINX));
        assert!(!RejectedFile::is_named_in(
            "/etc/nginx/conf.d/a.conf",
            NGINX
        ));
    }

    #[test]
    fn failures_win_over_unreachable_hosts() {
        let unreachable = ProxyError::Unreachable {
            host: "a".into(),
            source: TransportError::Connect {
                reason: "Connection refused".into(),
            },
        };
        let failed = ProxyError::Install {
            host: "b".into(),
            message: "cannot write".into(),
        };
        assert_eq!(unreachable.exit_code(), EXIT_UNREACHABLE);
        assert_eq!(
            ProxyError::Hosts(vec![unreachable, failed]).exit_code(),
            EXIT_FAILED
        );
    }
}
