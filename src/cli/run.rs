use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::playbook::Playbook;
use crate::run::{Mode, Phase, TagFilter};

#[derive(Args)]
pub struct Opts {
    /// The playbook to run.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    #[command(flatten)]
    pub once: super::shared::OnceOpts,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// How far the release cycle goes: `prepare` ships and unpacks everywhere, switching nothing.
    #[arg(long, value_enum, default_value_t = Phase::All)]
    pub phase: Phase,
    /// Set by `convoy resume`: the interrupted run's batches.
    #[arg(skip)]
    pub resume: Option<crate::run::Resume>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load_for(&opts.playbook)?;
    let playbook = Playbook::load(&opts.playbook)?;
    let tags = TagFilter {
        only: opts.tags,
        skip: opts.skip_tags,
    };
    let mode = Mode::Deploy { phase: opts.phase };
    let mut options = opts.hosts.run_options(tags, mode, &opts.playbook)?;
    options.resume = opts.resume;
    options.once = opts.once.spec()?;
    super::exec::execute(&inventory, &playbook, &options, &opts.hosts).await
}
