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
    /// The run's extra vars given as `key=value` or JSON, again: the journal
    /// keeps their keys, never their values (`@file` ones are re-read by themselves).
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let path = journal_path(&opts.run_id)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("cannot read the journal {}: {e}", path.display())))?;
    let mut argv: Option<Vec<String>> = None;
    let mut ended: Option<String> = None;
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
            Some("run_end") => {
                ended = event["outcome"].as_str().map(str::to_owned);
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
    if let Some(outcome) = ended.filter(|o| FINISHED.contains(&o.as_str())) {
        // Replaying the command line would deploy everything again.
        println!(
            "convoy: run {} ended: {outcome}; nothing to resume",
            resume.run_id
        );
        return Ok(crate::error::EXIT_OK);
    }
    if !opts.inventory.is_empty() {
        argv = replace_inventory(&argv, &opts.inventory);
    }
    argv = restore_extra_vars(&argv, &opts.extra_vars, &resume.run_id)?;
    // What is shown of the command line, extra vars hidden again.
    let shown = super::extra_vars::hide_in_argv(&argv).join(" ");
    let cli = super::Cli::try_parse_from(
        std::iter::once("convoy".to_owned()).chain(argv.iter().cloned()),
    )
    .map_err(|e| Error::Usage(format!("cannot replay `convoy {shown}`: {e}")))?;
    match cli.command {
        super::Command::Run(mut run) => {
            eprintln!("convoy: resuming run {} (`convoy {shown}`)", resume.run_id);
            run.resume = Some(resume);
            super::run::run(run).await
        }
        _ => Err(Error::Usage(format!(
            "run {} was not `convoy run`; nothing to resume",
            resume.run_id
        ))),
    }
}

/// `run_end` outcomes of runs that did all they were asked: nothing is left
/// to resume.
const FINISHED: &[&str] = &["completed", "prepared"];

/// The command line with the `-e` arguments whose values the journal hid
/// replaced by `given` (the operator's `convoy resume -e ...`), placed last
/// so that they win; an error naming the keys that are not given again.
fn restore_extra_vars(
    argv: &[String],
    given: &[String],
    run_id: &str,
) -> Result<Vec<String>, Error> {
    let (rest, hidden) = super::extra_vars::take_hidden(argv);
    let given_keys = super::extra_vars::parse_extra_vars(given)?;
    let missing: Vec<String> = hidden
        .iter()
        .flat_map(|v| super::extra_vars::hidden_keys(v))
        .filter(|k| !given_keys.contains_key(k))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "run {run_id} was given extra vars whose values its journal does not keep: \
             give them again: convoy resume {run_id} {}",
            missing
                .iter()
                .map(|k| format!("-e {k}=..."))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    // Before `--` (exec's command), after the rest: the given ones win.
    let at = rest.iter().position(|a| a == "--").unwrap_or(rest.len());
    let mut with = rest[..at].to_vec();
    for e in given {
        with.push("-e".into());
        with.push(e.clone());
    }
    with.extend_from_slice(&rest[at..]);
    Ok(with)
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

    #[test]
    fn hidden_extra_vars_are_given_again() {
        let argv: Vec<String> = [
            "run",
            "p.yml",
            "-e",
            "pw=<hidden>",
            "-e",
            "@v.yml",
            "-ek=<hidden>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let message = restore_extra_vars(&argv, &[], "r1")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("convoy resume r1 -e pw=... -e k=..."),
            "{message}"
        );
        let message = restore_extra_vars(&argv, &["pw=x".into()], "r1")
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with("r1 -e k=...") && !message.contains("pw"),
            "{message}"
        );
        let restored = restore_extra_vars(&argv, &["pw=x k=y".into()], "r1").unwrap();
        assert_eq!(restored, ["run", "p.yml", "-e", "@v.yml", "-e", "pw=x k=y"]);
    }
}
