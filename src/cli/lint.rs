//! `convoy lint`: every key checked, every template of every section
//! rendered for every targeted host, proxy files validated with the nginx
//! or haproxy installed here, all problems reported at once; no host is
//! contacted.

use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::ArtifactCache;
use crate::error::{EXIT_BAD_INPUT, EXIT_OK, Error};
use crate::playbook::Playbook;
use crate::report::OutputFormat;
use crate::run::preflight::{self, ProxyCheck};
use crate::run::{Mode, Phase, TagFilter};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// The playbook to check.
    pub playbook: PathBuf,
    /// Render proxy files, but do not validate them with the nginx or
    /// haproxy installed on this machine.
    #[arg(long)]
    pub no_proxy_validate: bool,
    #[command(flatten)]
    pub hosts: HostOpts,
}

pub fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load_for(&opts.playbook)?;
    let playbook = Playbook::load(&opts.playbook)?;
    // No host is contacted: no sudo password is asked or read.
    let mut flags = opts.hosts.clone();
    flags.become_pass = super::become_password::BecomePassOpts::unused();
    let mut options = flags.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        &opts.playbook,
    )?;
    // Lint never asks: a `pause: confirm` is not a problem of the playbook.
    options.yes = true;
    let templates = Templates::new(&playbook.base_dir);
    let artifacts = ArtifactCache::default();
    let proxy = if opts.no_proxy_validate {
        ProxyCheck::Render
    } else {
        ProxyCheck::ValidateHere
    };
    let findings = preflight::check_all(
        &inventory, &playbook, &templates, &artifacts, &options, proxy,
    );
    let mut problems = findings.problems;
    // A job's commands and state directory, rendered for every host as
    // `convoy job run` renders them before any connection.
    for play in playbook.plays.iter().filter(|p| p.job.is_some()) {
        if let Err(e) = crate::job::runner::Job::prepare(&inventory, &playbook, play, &options) {
            problems.push(e);
        }
    }
    if opts.hosts.output == OutputFormat::Json {
        // One document (README: Output); each problem as its text message.
        println!(
            "{}",
            serde_json::json!({
                "playbook": opts.playbook.display().to_string(),
                "ok": problems.is_empty(),
                "notes": findings.notes,
                "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        );
        return Ok(if problems.is_empty() {
            EXIT_OK
        } else {
            EXIT_BAD_INPUT
        });
    }
    for note in &findings.notes {
        println!("{note}");
    }
    for problem in &problems {
        eprintln!("error: {problem}\n");
    }
    if problems.is_empty() {
        let hosts: usize = playbook
            .plays
            .iter()
            .map(|p| super::shared::play_hosts(&inventory, p, &options).map_or(0, |h| h.len()))
            .sum();
        println!(
            "{}: ok ({} play(s), {hosts} host renderings checked)",
            opts.playbook.display(),
            playbook.plays.len()
        );
        Ok(EXIT_OK)
    } else {
        eprintln!("{}: {} problem(s)", opts.playbook.display(), problems.len());
        Ok(EXIT_BAD_INPUT)
    }
}
