//! `convoy logs PATTERN PROGRAM [-n N]`: the program's last output lines
//! from every host, each line prefixed with its host, one round trip per
//! host.

use std::path::Path;

use clap::Args;

use super::shared::{HostOpts, pattern_hosts};
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::run::{Mode, Phase, TagFilter};
use crate::supervision::Supervised;

#[derive(Args)]
pub struct Opts {
    /// Host pattern (group, host, glob, a:b, a:&b, a:!b).
    pub pattern: String,
    /// The supervisord program (or systemd unit).
    pub program: String,
    /// Lines per host.
    #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
    pub lines: usize,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Read the logs as root, through sudo.
    #[arg(short = 'b', long = "become")]
    pub sudo: bool,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load()?;
    let names = pattern_hosts(&inventory, &opts.pattern, opts.hosts.limit.as_deref())?;
    let options = opts.hosts.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        Path::new("<command line>"),
    )?;
    let fleet = Supervised::connect(&inventory, names, &options, opts.sudo).await?;
    let logs = fleet
        .forks()
        .each(&fleet.hosts, |host| host.logs(&opts.program, opts.lines))
        .await;
    let width = fleet.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let mut code = EXIT_OK;
    for (host, e) in &fleet.unreachable {
        eprintln!("{host}: unreachable: {e}");
        code = EXIT_UNREACHABLE;
    }
    let mut errors = Vec::new();
    for (host, log) in fleet.hosts.iter().zip(&logs) {
        match log {
            Ok(text) => {
                for line in text.lines() {
                    println!("{:<width$} | {line}", host.name);
                }
            }
            Err(e) => errors.push((host.name.clone(), e.clone())),
        }
    }
    let all_failed = !fleet.hosts.is_empty() && errors.len() == fleet.hosts.len();
    for (host, e) in &errors {
        eprintln!("{host}: {e}");
    }
    fleet.close().await;
    if all_failed {
        return Err(Error::Usage(format!(
            "no host of \"{}\" could show the logs of \"{}\"",
            opts.pattern, opts.program
        )));
    }
    if !errors.is_empty() {
        code = EXIT_UNREACHABLE;
    }
    Ok(code)
}
