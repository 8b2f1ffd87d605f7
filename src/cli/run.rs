use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::playbook::Playbook;
use crate::run::{TagFilter, preflight};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// The playbook to run.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load()?;
    let playbook = Playbook::load(&opts.playbook)?;
    let options = opts.hosts.run_options(TagFilter {
        only: opts.tags,
        skip: opts.skip_tags,
    })?;
    let templates = Arc::new(Templates::new(&playbook.base_dir));
    // Everything that can be checked without a host is checked before the first connection.
    preflight::check(&inventory, &playbook, &templates, &options)?;
    super::exec::execute(&inventory, &playbook, templates, &options, &opts.hosts).await
}
