use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::ArtifactCache;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Pause, Playbook, RolloutSpec, Size};
use crate::report::{self, Event, OutputFormat, OutputGroups, Renderer};
use crate::run::control_socket::ControlSocket;
use crate::run::{Interrupt, Mode, Phase, RunControl, RunOptions, Runner, TagFilter, preflight};
use crate::source::SourceSpan;
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
    /// Run batch by batch, this many hosts (or this share) at a time, as a
    /// play's `rollout: { batch: N }` does; without it, every host at once.
    #[arg(long, value_name = "N|N%")]
    pub batch: Option<Size>,
    /// Failed hosts tolerated over the whole exec before no new batch starts.
    #[arg(long, default_value = "0", value_name = "N|N%", requires = "batch")]
    pub max_fail: Size,
    /// Wait this long between batches, e.g. 10s.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION", requires = "batch")]
    pub pause: Duration,
    /// The command line, run by the remote shell.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load()?;
    let mut playbook = Playbook::ad_hoc(&opts.pattern, &opts.command.join(" "), opts.sudo);
    // The plain-play batching (`run::serial`) then runs the command batch
    // by batch and stops when the failure budget is exceeded.
    playbook.plays[0].rollout = opts.batch.map(|batch| RolloutSpec {
        batch: vec![batch],
        max_fail: opts.max_fail,
        pause: if opts.pause.is_zero() {
            Pause::None
        } else {
            Pause::For(opts.pause)
        },
        span: SourceSpan::new("<command line>", 1, 1),
        ..RolloutSpec::default()
    });
    let mode = Mode::Deploy { phase: Phase::All };
    let mut options =
        opts.hosts
            .run_options(TagFilter::default(), mode, Path::new("<command line>"))?;
    options.once = opts.once.spec()?;
    // The command's output is what an ad hoc command is run for: shown
    // for every host, as `-v` does for playbooks, and as text once more
    // at the end, once per group of hosts that answered the same (exit
    // code and output), so 200 identical answers read as one.
    let mut flags = opts.hosts.clone();
    flags.verbose = flags.verbose.max(1);
    let answers: Option<Box<dyn Renderer>> = match flags.output {
        OutputFormat::Text => Some(Box::new(OutputGroups::new())),
        OutputFormat::Json => None,
    };
    execute_with(&inventory, &playbook, &options, &flags, answers).await
}

/// Checks a playbook against the inventory (touching no host), then runs it
/// with the chosen output; returns the exit code.
pub async fn execute(
    inventory: &Inventory,
    playbook: &Playbook,
    options: &RunOptions,
    flags: &HostOpts,
) -> Result<i32, Error> {
    execute_with(inventory, playbook, options, flags, None).await
}

/// As [`execute`], with one more renderer fed the run's events.
async fn execute_with(
    inventory: &Inventory,
    playbook: &Playbook,
    options: &RunOptions,
    flags: &HostOpts,
    extra: Option<Box<dyn Renderer>>,
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
    let (reporter, renderer) =
        report::start(flags.output, flags.verbose, Some(journal.file), extra);
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
        delegates: Default::default(),
        fatal: Default::default(),
        batch_failed_whole: Default::default(),
        batch_failures: Default::default(),
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
