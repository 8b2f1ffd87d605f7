use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::run::Mode;

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
    let mode = Mode::Rollback { to: opts.to };
    let d = opts.hosts.load_distributions(&opts.playbook, mode)?;
    super::exec::execute(&d.inventory, &d.playbook, &d.options, &opts.hosts).await
}
