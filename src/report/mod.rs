//! Reporting, kept apart from the work: the executor sends [`Event`]s over a
//! channel and one renderer (live progress, plain lines, or JSON) turns them
//! into output. Secrets are scrubbed before an event is sent, so no renderer
//! can leak them.

mod event;
mod journal;
mod json;
mod output_groups;
mod plain;
mod progress;
mod recap;

use std::io::IsTerminal;

pub use event::{Event, HostResult, Status};
pub use journal::{Journal, JournalSummary};
pub use output_groups::OutputGroups;
pub use recap::{HostStats, Recap, human_bytes};
use tokio::sync::mpsc;

/// How results are shown (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Live progress on a terminal, plain timestamped lines otherwise.
    Text,
    /// One JSON object per line.
    Json,
}

/// Something that turns events into output.
pub trait Renderer: Send {
    fn event(&mut self, event: &Event);
    fn finish(&mut self) {}
}

/// The sending half given to the executor.
#[derive(Clone)]
pub struct Reporter {
    tx: mpsc::UnboundedSender<Event>,
}

impl Reporter {
    pub fn send(&self, event: Event) {
        // The renderer only stops after the executor is done, so a failed send is unreachable in practice.
        let _ = self.tx.send(event.redacted());
    }
}

/// Starts the renderer chosen by the format and the terminal, and `extra`
/// after it (`convoy exec`'s grouped answers, printed after the recap);
/// `finish` waits for them.
pub fn start(
    format: OutputFormat,
    verbose: u8,
    journal: Option<std::fs::File>,
    extra: Option<Box<dyn Renderer>>,
) -> (Reporter, RendererHandle) {
    let screen: Box<dyn Renderer> = match format {
        OutputFormat::Json => Box::new(json::JsonRenderer::stdout()),
        OutputFormat::Text if std::io::stdout().is_terminal() => {
            Box::new(progress::ProgressRenderer::new(verbose))
        }
        OutputFormat::Text => Box::new(plain::PlainRenderer::new(verbose)),
    };
    let mut renderers = vec![screen];
    renderers.extend(extra);
    if let Some(file) = journal {
        renderers.push(Box::new(json::JsonRenderer::to(Box::new(file))));
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            for r in renderers.iter_mut() {
                r.event(&event);
            }
        }
        for r in renderers.iter_mut() {
            r.finish();
        }
    });
    (Reporter { tx }, RendererHandle(handle))
}

/// A reporter whose events are read by the caller rather than shown: work
/// that runs tasks inside something else (a job's task list per target)
/// and reports it its own way.
pub fn collecting() -> (Reporter, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Reporter { tx }, rx)
}

pub struct RendererHandle(tokio::task::JoinHandle<()>);

impl RendererHandle {
    /// Waits until every event sent before `reporter` was dropped is written.
    pub async fn finish(self, reporter: Reporter) {
        drop(reporter);
        let _ = self.0.await;
    }
}

/// A unified diff of a file's before and after, for `--diff`.
pub fn unified_diff(path: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("before: {path}"), &format!("after: {path}"))
        .to_string()
}
