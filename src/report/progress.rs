//! Live progress on a terminal: a bar for the running task (hosts done of
//! total, hosts in flight), result lines printed above it, then the recap.

use indexmap::IndexSet;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Event, Renderer, Status, unified_diff};

pub struct ProgressRenderer {
    verbose: u8,
    bar: Option<ProgressBar>,
    in_flight: IndexSet<String>,
}

impl ProgressRenderer {
    pub fn new(verbose: u8) -> Self {
        Self {
            verbose,
            bar: None,
            in_flight: IndexSet::new(),
        }
    }

    fn print(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    fn show_flight(&self) {
        if let Some(bar) = &self.bar {
            let hosts: Vec<&str> = self.in_flight.iter().take(5).map(String::as_str).collect();
            let more = self.in_flight.len().saturating_sub(hosts.len());
            let mut text = hosts.join(", ");
            if more > 0 {
                text.push_str(&format!(" +{more}"));
            }
            bar.set_message(text);
        }
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.in_flight.clear();
    }
}

impl Renderer for ProgressRenderer {
    fn event(&mut self, event: &Event) {
        match event {
            Event::PlayStart { play, hosts } => {
                self.finish_bar();
                self.print(&format!("\nPLAY [{play}] ({} hosts)", hosts.len()));
            }
            Event::TaskStart {
                task,
                hosts,
                handler,
            } => {
                self.finish_bar();
                self.print(&format!(
                    "{} [{task}]",
                    if *handler { "RUNNING HANDLER" } else { "TASK" }
                ));
                let bar = ProgressBar::new(*hosts as u64);
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {pos}/{len} hosts {wide_msg}")
                        .expect("valid template"),
                );
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                self.bar = Some(bar);
            }
            Event::BatchStart {
                index,
                total,
                hosts,
                canary,
            } => {
                self.finish_bar();
                let canary = if *canary { " (canary)" } else { "" };
                self.print(&format!(
                    "BATCH {index}/{total}{canary} [{}]",
                    hosts.join(", ")
                ));
            }
            Event::RunStart { .. }
            | Event::RolloutPlanned { .. }
            | Event::BatchEnd { .. }
            | Event::Rollback { .. }
            | Event::RunEnd { .. } => {}
            Event::Note { message } => self.print(&format!("NOTE {message}")),
            Event::Control {
                command, answer, ..
            } => self.print(&format!("NOTE convoy ctl {command}: {answer}")),
            Event::HostStart { host } => {
                self.in_flight.insert(host.clone());
                self.show_flight();
            }
            Event::HostResult(r) => {
                if r.item.is_none() {
                    self.in_flight.shift_remove(&r.host);
                    if let Some(bar) = &self.bar {
                        bar.inc(1);
                    }
                    self.show_flight();
                }
                if r.status != Status::Ok || self.verbose > 0 {
                    let mut text = r.line();
                    if let (Some(output), true) =
                        (&r.output, self.verbose > 0 || r.status == Status::Failed)
                    {
                        text.push('\n');
                        text.push_str(output);
                    }
                    self.print(&text);
                }
                for d in &r.diffs {
                    self.print(&unified_diff(&d.path, &d.before, &d.after));
                }
            }
            Event::Recap(recap) => {
                self.finish_bar();
                println!();
                for l in recap.lines() {
                    println!("{l}");
                }
            }
        }
    }

    fn finish(&mut self) {
        self.finish_bar();
    }
}
