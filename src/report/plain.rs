//! Plain lines for cron, CI and pipes: a timestamp each, no control characters.

use std::io::Write;

use super::{Event, Renderer, Status, unified_diff};

pub struct PlainRenderer {
    verbose: u8,
}

impl PlainRenderer {
    pub fn new(verbose: u8) -> Self {
        Self { verbose }
    }

    fn line(&self, text: &str) {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let mut out = std::io::stdout().lock();
        for l in text.lines() {
            let _ = writeln!(out, "{now} {}", strip_controls(l));
        }
    }
}

/// Drops escape and other control characters a remote command may print.
pub(super) fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect()
}

impl Renderer for PlainRenderer {
    fn event(&mut self, event: &Event) {
        match event {
            Event::PlayStart { play, hosts } => {
                self.line(&format!("PLAY [{play}] ({} hosts)", hosts.len()))
            }
            Event::TaskStart { task, handler, .. } => self.line(&format!(
                "{} [{task}]",
                if *handler { "RUNNING HANDLER" } else { "TASK" }
            )),
            Event::HostStart { .. } => {}
            Event::BatchStart {
                index,
                total,
                hosts,
                canary,
            } => self.line(&format!(
                "BATCH {index}/{total}{} [{}]",
                if *canary { " (canary)" } else { "" },
                hosts.join(", ")
            )),
            Event::RunStart { .. }
            | Event::RolloutPlanned { .. }
            | Event::BatchEnd { .. }
            | Event::Rollback { .. }
            | Event::RunEnd { .. } => {}
            Event::Note { message } => self.line(&format!("NOTE {message}")),
            Event::Control {
                command, answer, ..
            } => self.line(&format!("NOTE convoy ctl {command}: {answer}")),
            Event::HostResult(r) => {
                let mut text = format!("{} ({:.2}s)", r.line(), r.duration.as_secs_f64());
                if (self.verbose > 0 || r.status == Status::Failed)
                    && let Some(output) = &r.output
                {
                    text.push('\n');
                    text.push_str(output);
                }
                self.line(&text);
                for d in &r.diffs {
                    self.line(&unified_diff(&d.path, &d.before, &d.after));
                }
            }
            Event::Recap(recap) => {
                for l in recap.lines() {
                    self.line(&l);
                }
            }
        }
    }
}
