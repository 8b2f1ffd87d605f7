//! `convoy runs`: the recent and running runs of the project in the current
//! directory, newest first, from `.convoy/runs/`: a run is running when its
//! control socket answers, else its journal's `run_end` says how it ended.

use std::path::Path;

use clap::Args;
use serde_json::json;

use crate::error::Error;
use crate::report::{JournalSummary, OutputFormat};
use crate::run::control_client::RunAddress;

#[derive(Args)]
pub struct Opts {
    /// Show at most this many runs.
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    pub last: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// One line of the listing.
struct RunRow {
    run_id: String,
    playbook: String,
    started: String,
    state: String,
    exit_code: Option<i64>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let runs = Path::new(".convoy/runs");
    let mut journals: Vec<String> = match std::fs::read_dir(runs) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".jsonl").map(str::to_owned)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Usage(format!("cannot read {}: {e}", runs.display())));
        }
    };
    // Run ids start with their start time: newest first is a reverse sort.
    journals.sort_unstable_by(|a, b| b.cmp(a));
    let mut rows = Vec::new();
    for id in journals.into_iter().take(opts.last) {
        let address = RunAddress::resolve(&id, runs);
        let summary = JournalSummary::read(&address.journal).unwrap_or_default();
        let running = address.is_running().await;
        let (state, exit_code) = match (&summary.end, running) {
            (_, true) => ("running".to_owned(), None),
            (Some((outcome, code)), false) => (outcome.clone(), Some(*code)),
            (None, false) => ("ended without a record".to_owned(), None),
        };
        rows.push(RunRow {
            started: started(&id),
            playbook: summary.playbook.unwrap_or_else(|| "?".into()),
            run_id: id,
            state,
            exit_code,
        });
    }
    match opts.output {
        OutputFormat::Json => {
            let runs: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({"run_id": r.run_id, "playbook": r.playbook, "started": r.started,
                           "state": r.state, "exit_code": r.exit_code})
                })
                .collect();
            println!("{}", json!({ "runs": runs }));
        }
        OutputFormat::Text if rows.is_empty() => {
            println!("no runs in {}", runs.display());
        }
        OutputFormat::Text => print!("{}", table(&rows)),
    }
    Ok(crate::error::EXIT_OK)
}

/// The start time a run id begins with (`20261201T170412Z-ab12` ->
/// `2026-12-01T17:04:12Z`); the id itself when it has none.
fn started(run_id: &str) -> String {
    let stamp = run_id.split('-').next().unwrap_or(run_id);
    let b = stamp.as_bytes();
    if b.len() == 16 && b[8] == b'T' && b[15] == b'Z' {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )
    } else {
        "?".into()
    }
}

fn table(rows: &[RunRow]) -> String {
    let header = ["RUN", "PLAYBOOK", "STARTED", "STATE", "EXIT"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                r.playbook.clone(),
                r.started.clone(),
                r.state.clone(),
                r.exit_code.map_or("-".into(), |c| c.to_string()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_comes_from_the_run_id() {
        assert_eq!(started("20261201T170412Z-ab12"), "2026-12-01T17:04:12Z");
        assert_eq!(started("something-else"), "?");
    }
}
