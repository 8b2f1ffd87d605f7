//! `convoy ctl RUN-ID pause|continue|stop|rollback`: control a running run
//! from another terminal or a CI job, over its control socket.

use std::path::Path;

use clap::Args;

use crate::error::Error;
use crate::run::ControlCommand;
use crate::run::control_client::RunAddress;

#[derive(Args)]
pub struct Opts {
    /// The running run's id (see `NOTE journal:`; looked up in ./.convoy/runs/), or its journal's path.
    pub run_id: String,
    /// What the run should do at its next batch boundary.
    #[arg(value_enum)]
    pub command: ControlCommand,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let runs = Path::new(".convoy/runs");
    let address = RunAddress::resolve(&opts.run_id, runs);
    let answer = address.send(opts.command, runs).await?;
    println!("convoy: run {}: {}", address.run_id, answer.message);
    Ok(crate::error::EXIT_OK)
}
