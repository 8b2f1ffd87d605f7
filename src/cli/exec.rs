use std::path::Path;
use std::sync::Arc;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::ArtifactCache;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::Playbook;
use crate::report::{self, Event};
use crate::run::control_socket::ControlSocket;
use crate::run::{Interrupt, Mode, Phase, RunControl, RunOptions, Runner, TagFilter, preflight};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// Host pattern (group, host, glob, a:b, a:&b, a:!b).
    pub pattern: String,
    #[command(flatten)]
    pub hosts: HostOpts,
    #[command(flatten)]
    pub once: super::shared::OnceOpts,
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
    let mut options =
        opts.hosts
            .run_options(TagFilter::default(), mode, Path::new("<command line>"))?;
    options.once = opts.once.spec()?;
    // The command's output is what an ad hoc command is run for: shown
    // for every host, as `-v` does for playbooks.
    let mut flags = opts.hosts.clone();
    flags.verbose = flags.verbose.max(1);
    execute(&inventory, &playbook, &options, &flags).await
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
    let control_dir = super::shared::control_dir()?;
    // Every run, ad hoc commands too, leaves a journal in the project
    // (for ad hoc commands: the current directory).
    let journal = report::Journal::create(&playbook.base_dir, &options.run_id).map_err(|e| {
        Error::Usage(format!(
            "cannot write the run journal in {}/.convoy/runs: {e}",
            playbook.base_dir.display()
        ))
    })?;
    let journal_path = journal.path.clone();
    let (reporter, renderer) = report::start(flags.output, flags.verbose, Some(journal.file));
    reporter.send(Event::RunStart {
        run_id: options.run_id.clone(),
        playbook: options.playbook_name.clone(),
        // Extra vars may be secrets: their values are never recorded.
        argv: super::extra_vars::hide_in_argv(&std::env::args().skip(1).collect::<Vec<_>>()),
    });
    reporter.send(Event::Note {
        message: format!("journal: {}", journal_path.display()),
    });
    let control = RunControl::default();
    // Without a socket (a path too long for one, say) the run goes on: it
    // only cannot be controlled from elsewhere, and says so.
    let socket = match ControlSocket::serve(
        journal_path.with_extension("sock"),
        control.clone(),
        reporter.clone(),
    ) {
        Ok(socket) => Some(socket),
        Err(e) => {
            reporter.send(Event::Note {
                message: format!("no control socket (`convoy ctl` cannot reach this run): {e}"),
            });
            None
        }
    };
    let runner = Runner {
        inventory,
        playbook,
        templates,
        options,
        reporter: reporter.clone(),
        interrupt: Interrupt::install(),
        control: control.clone(),
        control_dir: control_dir.path().to_owned(),
        artifacts,
    };
    let summary = runner.run().await;
    drop(runner);
    let code = crate::run::exit_code(&summary);
    control.end(summary.outcome());
    if let Some(socket) = socket {
        socket.close().await;
    }
    reporter.send(Event::RunEnd {
        outcome: summary.outcome().to_owned(),
        exit_code: code,
    });
    renderer.finish(reporter).await;
    if let Some(message) = &summary.refused {
        eprintln!("error: {message}");
    }
    Ok(code)
}
