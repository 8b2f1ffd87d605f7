//! Reporting a job, apart from the work: the runner sends [`JobEvent`]s
//! over a channel; one renderer shows them: a bar on a terminal (done,
//! failed, total, rate, ETA; redrawn at least once a second), plain
//! timestamped lines in cron and CI, or one JSON object per line. Text
//! output ends with a summary table.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use super::state::TargetState;
use crate::report::OutputFormat;

/// A target's end, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct TargetEnd {
    pub host: String,
    pub target: String,
    pub state: TargetState,
    pub exit_code: Option<i32>,
    pub attempts: u32,
    pub seconds: u64,
    /// Settled before this run (a record found): not run again.
    pub already: bool,
    pub output: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    JobStart {
        run: String,
        job: String,
        hosts: usize,
        targets: usize,
        to_run: usize,
    },
    Group {
        index: usize,
        groups: usize,
        targets: usize,
    },
    TargetStart {
        host: String,
        target: String,
    },
    TargetEnd(TargetEnd),
    Note {
        message: String,
    },
    JobEnd {
        totals: Totals,
        exit_code: i32,
    },
}

/// Targets by state.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub total: usize,
    pub pending: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
    pub lost: usize,
}

impl Totals {
    pub fn add(&mut self, s: TargetState) {
        self.total += 1;
        *match s {
            TargetState::Pending => &mut self.pending,
            TargetState::Running => &mut self.running,
            TargetState::Done => &mut self.done,
            TargetState::Failed => &mut self.failed,
            TargetState::Skipped => &mut self.skipped,
            TargetState::Lost => &mut self.lost,
        } += 1;
    }

    pub fn line(&self) -> String {
        format!(
            "{} targets: done={} failed={} skipped={} lost={} running={} pending={}",
            self.total, self.done, self.failed, self.skipped, self.lost, self.running, self.pending
        )
    }
}

trait Show: Send {
    fn event(&mut self, e: &JobEvent);
    fn finish(&mut self, _ends: &[TargetEnd], _verbose: bool) {}
}

/// The sending half, given to the runner.
#[derive(Clone)]
pub struct JobReporter(mpsc::UnboundedSender<JobEvent>);

impl JobReporter {
    pub fn send(&self, e: JobEvent) {
        let _ = self.0.send(e);
    }
    pub fn note(&self, message: impl Into<String>) {
        self.send(JobEvent::Note {
            message: message.into(),
        });
    }
}

/// Starts the renderer chosen by `--output` and the terminal.
pub fn start(format: OutputFormat, verbose: bool) -> (JobReporter, tokio::task::JoinHandle<()>) {
    let mut show: Box<dyn Show> = match format {
        OutputFormat::Json => Box::new(Json),
        OutputFormat::Text if std::io::stdout().is_terminal() => Box::new(Bar::default()),
        OutputFormat::Text => Box::new(Plain),
    };
    let text = format == OutputFormat::Text;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(async move {
        let mut ends = Vec::new();
        let mut totals = None;
        while let Some(e) = rx.recv().await {
            show.event(&e);
            match e {
                JobEvent::TargetEnd(end) => ends.push(end),
                JobEvent::JobEnd { totals: t, .. } => totals = Some(t),
                _ => {}
            }
        }
        show.finish(&ends, verbose);
        if text {
            print!("{}", summary_table(&ends, totals, verbose));
        }
    });
    (JobReporter(tx), handle)
}

struct Json;

impl Show for Json {
    fn event(&mut self, e: &JobEvent) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", serde_json::to_string(e).expect("serializable"));
    }
}

struct Plain;

impl Plain {
    fn line(text: &str) {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let mut out = std::io::stdout().lock();
        for l in text.lines() {
            let clean: String = l
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            let _ = writeln!(out, "{now} {clean}");
        }
    }
}

impl Show for Plain {
    fn event(&mut self, e: &JobEvent) {
        match e {
            JobEvent::JobStart {
                run,
                job,
                hosts,
                targets,
                to_run,
            } => Self::line(&format!(
                "JOB [{job}] run {run}: {targets} targets on {hosts} hosts, {to_run} to run"
            )),
            JobEvent::Group {
                index,
                groups,
                targets,
            } => Self::line(&format!("GROUP {index}/{groups} ({targets} targets)")),
            JobEvent::TargetStart { .. } => {}
            JobEvent::TargetEnd(t) => Self::line(&target_line(t)),
            JobEvent::Note { message } => Self::line(&format!("NOTE {message}")),
            JobEvent::JobEnd { totals, exit_code } => {
                Self::line(&format!("JOB END {} (exit {exit_code})", totals.line()))
            }
        }
    }
}

fn target_line(t: &TargetEnd) -> String {
    let mut line = format!(
        "{} {} {}{}",
        t.state.name(),
        t.host,
        t.target,
        if t.already { " (recorded before)" } else { "" }
    );
    if let Some(rc) = t.exit_code {
        line.push_str(&format!(" rc={rc} attempts={} {}s", t.attempts, t.seconds));
    }
    if matches!(t.state, TargetState::Failed | TargetState::Lost) && !t.already {
        for l in &t.output {
            line.push_str(&format!("\n  | {l}"));
        }
    }
    line
}

#[derive(Default)]
struct Bar {
    bar: Option<ProgressBar>,
    done: u64,
    failed: u64,
}

impl Show for Bar {
    fn event(&mut self, e: &JobEvent) {
        match e {
            JobEvent::JobStart { job, to_run, .. } => {
                let bar = ProgressBar::new(*to_run as u64);
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(job.clone());
                // Redrawn even when no target ends for a while.
                bar.enable_steady_tick(Duration::from_millis(250));
                self.bar = Some(bar);
            }
            JobEvent::TargetEnd(t) if !t.already => {
                if let Some(bar) = &self.bar {
                    match t.state {
                        TargetState::Done | TargetState::Skipped => self.done += 1,
                        _ => {
                            self.failed += 1;
                            bar.println(target_line(t));
                        }
                    }
                    bar.inc(1);
                    let secs = bar.elapsed().as_secs_f64().max(0.001);
                    bar.set_message(format!(
                        "done={} failed={} {:.1}/s",
                        self.done,
                        self.failed,
                        bar.position() as f64 / secs
                    ));
                }
            }
            JobEvent::Note { message } => match &self.bar {
                Some(bar) => bar.println(format!("NOTE {message}")),
                None => println!("NOTE {message}"),
            },
            JobEvent::Group {
                index,
                groups,
                targets,
            } => {
                let text = format!("GROUP {index}/{groups} ({targets} targets)");
                match &self.bar {
                    Some(bar) => bar.println(text),
                    None => println!("{text}"),
                }
            }
            _ => {}
        }
    }
    fn finish(&mut self, _: &[TargetEnd], _: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// The table at the end: every target that did not end well (all of them
/// with `-v`), then the totals (the run's own, which count the targets
/// left pending too, when it got that far).
pub fn summary_table(ends: &[TargetEnd], final_totals: Option<Totals>, verbose: bool) -> String {
    let mut totals = Totals::default();
    let mut rows = vec![[
        "HOST".to_owned(),
        "TARGET".to_owned(),
        "STATE".to_owned(),
        "RC".to_owned(),
        "ATTEMPTS".to_owned(),
        "LAST OUTPUT".to_owned(),
    ]];
    for t in ends {
        totals.add(t.state);
        if verbose || !t.state.settled() {
            rows.push([
                t.host.clone(),
                t.target.clone(),
                t.state.name().to_owned(),
                t.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                t.attempts.to_string(),
                t.output.last().cloned().unwrap_or_default(),
            ]);
        }
    }
    let mut out = String::from("\nSUMMARY\n");
    if rows.len() > 1 {
        out.push_str(&table(&rows));
    }
    out.push_str(&final_totals.unwrap_or(totals).line());
    out.push('\n');
    out
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub fn table(rows: &[[String; 6]]) -> String {
    let mut width = [0usize; 6];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == 5 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
