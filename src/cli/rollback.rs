use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::playbook::Playbook;
use crate::run::{Mode, TagFilter};

#[derive(Args)]
pub struct Opts {
    /// The playbook whose distribution is rolled back.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// The release to return to (default: the one before the last switch).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load()?;
    let playbook = Playbook::load(&opts.playbook)?;
    super::shared::require_distribution(&playbook, &opts.playbook)?;
    let mode = Mode::Rollback { to: opts.to };
    let options = opts
        .hosts
        .run_options(TagFilter::default(), mode, &opts.playbook)?;
    super::exec::execute(&inventory, &playbook, &options, &opts.hosts).await
}
