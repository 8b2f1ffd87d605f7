use std::path::Path;
use std::sync::Arc;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::ArtifactCache;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::Playbook;
use crate::report;
use crate::run::{Interrupt, Mode, Phase, RunOptions, Runner, TagFilter, preflight};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// Host pattern (group, host, glob, a:b, a:&b, a:!b).
    pub pattern: String,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Run through sudo.
    #[arg(short = 'b', long = "become")]
    pub sudo: bool,
    /// The command line, run by the remote shell.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load()?;
    let playbook = Playbook::ad_hoc(&opts.pattern, &opts.command.join(" "), opts.sudo);
    let mode = Mode::Deploy { phase: Phase::All };
    let options =
        opts.hosts
            .run_options(TagFilter::default(), mode, Path::new("<command line>"))?;
    execute(&inventory, &playbook, &options, &opts.hosts).await
}

/// Checks a playbook against the inventory (touching no host), then runs it
/// with the chosen output; returns the exit code.
pub async fn execute(
    inventory: &Inventory,
    playbook: &Playbook,
    options: &RunOptions,
    flags: &HostOpts,
) -> Result<i32, Error> {
    let templates = Arc::new(Templates::new(&playbook.base_dir));
    let artifacts = Arc::new(ArtifactCache::default());
    preflight::check(inventory, playbook, &templates, &artifacts, options)?;
    // A short directory for ssh control sockets: Unix socket paths are limited to ~100 bytes.
    let control_dir = tempfile::Builder::new().prefix("cvy.").tempdir_in("/tmp")?;
    let (reporter, renderer) = report::start(flags.output, flags.verbose);
    let runner = Runner {
        inventory,
        playbook,
        templates,
        options,
        reporter: reporter.clone(),
        interrupt: Interrupt::install(),
        control_dir: control_dir.path().to_owned(),
        artifacts,
    };
    let summary = runner.run().await;
    drop(runner);
    renderer.finish(reporter).await;
    if let Some(message) = &summary.refused {
        eprintln!("error: {message}");
    }
    Ok(crate::run::exit_code(&summary))
}
