//! `convoy resume RUN-ID`: continue an interrupted rollout from its next
//! batch, with the same command line and the same batches.

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::error::Error;
use crate::rollout::RolloutPlan;
use crate::run::{Resume, ResumedPlay};

#[derive(Args)]
pub struct Opts {
    /// The interrupted run's id (see `NOTE journal:`), or the path of its journal.
    pub run_id: String,
    /// Use this inventory instead of the interrupted run's (repeatable).
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<PathBuf>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let path = journal_path(&opts.run_id)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("cannot read the journal {}: {e}", path.display())))?;
    let mut argv: Option<Vec<String>> = None;
    let mut resume = Resume::default();
    for (n, line) in text.lines().enumerate() {
        let event: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Error::Usage(format!(
                "{}:{}: not a journal line: {e}",
                path.display(),
                n + 1
            ))
        })?;
        match event["event"].as_str() {
            Some("run_start") => {
                resume.run_id = event["run_id"].as_str().unwrap_or_default().to_owned();
                argv = serde_json::from_value(event["argv"].clone()).ok();
            }
            Some("rollout_plan") => {
                if let (Some(play), Ok(plan)) = (
                    event["play"].as_str(),
                    serde_json::from_value::<RolloutPlan>(event["plan"].clone()),
                ) {
                    resume.plays.insert(
                        play.to_owned(),
                        ResumedPlay {
                            plan,
                            batches_done: 0,
                        },
                    );
                }
            }
            Some("batch_end") => {
                let (Some(play), Some(index)) = (event["play"].as_str(), event["batch"].as_u64())
                else {
                    continue;
                };
                if let Some(p) = resume.plays.get_mut(play) {
                    p.batches_done = p.batches_done.max(index as usize);
                }
            }
            _ => {}
        }
    }
    let mut argv =
        argv.ok_or_else(|| Error::Usage(format!("{} has no run_start line", path.display())))?;
    if !opts.inventory.is_empty() {
        argv = replace_inventory(&argv, &opts.inventory);
    }
    let cli = super::Cli::try_parse_from(
        std::iter::once("convoy".to_owned()).chain(argv.iter().cloned()),
    )
    .map_err(|e| Error::Usage(format!("cannot replay `convoy {}`: {e}", argv.join(" "))))?;
    match cli.command {
        super::Command::Run(mut run) => {
            eprintln!(
                "convoy: resuming run {} (`convoy {}`)",
                resume.run_id,
                argv.join(" ")
            );
            run.resume = Some(resume);
            super::run::run(run).await
        }
        _ => Err(Error::Usage(format!(
            "run {} was not `convoy run`; nothing to resume",
            resume.run_id
        ))),
    }
}

/// A run id names `.convoy/runs/<id>.jsonl` in this directory (the project);
/// a path is taken as it is.
fn journal_path(arg: &str) -> Result<PathBuf, Error> {
    let as_path = PathBuf::from(arg);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let path = PathBuf::from(".convoy/runs").join(format!("{arg}.jsonl"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Usage(format!(
            "no journal for run {arg} in ./.convoy/runs/: run `convoy resume` from the project directory the run started in"
        )))
    }
}

/// The command line with its `-i`/`--inventory` arguments replaced.
fn replace_inventory(argv: &[String], inventory: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for arg in argv {
        if std::mem::take(&mut skip) {
            continue;
        }
        match arg.as_str() {
            "-i" | "--inventory" => skip = true,
            a if a.starts_with("--inventory=") || (a.starts_with("-i") && a.len() > 2) => {}
            _ => out.push(arg.clone()),
        }
    }
    for i in inventory {
        out.push("-i".into());
        out.push(i.display().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_is_replaced() {
        let argv: Vec<String> = [
            "run",
            "p.yml",
            "-i",
            "old.yml",
            "-e",
            "v=1",
            "--inventory=x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let replaced = replace_inventory(&argv, &[PathBuf::from("new.yml")]);
        assert_eq!(replaced, ["run", "p.yml", "-e", "v=1", "-i", "new.yml"]);
    }
}
