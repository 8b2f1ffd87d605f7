//! `convoy unlock PLAYBOOK`: clear the deploy locks a dead run left behind.

use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::lock;
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::run::{Mode, Phase};

#[derive(Args)]
pub struct Opts {
    /// The playbook whose distributions are unlocked.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let answers = opts
        .hosts
        .load_distributions(&opts.playbook, Mode::Deploy { phase: Phase::All })?
        .on_each_host(|conn, root, sudo| async move {
            let cleared = lock::clear(&conn, &root, sudo.as_ref()).await;
            (conn, cleared.map_err(|e| e.to_string()))
        })
        .await?;
    let mut code = EXIT_OK;
    for super::shared::HostAnswer { host, root, answer } in answers.into_iter().flat_map(|(_, a)| a)
    {
        match answer {
            Ok(Some(holder)) => println!("{host}: unlocked {root} (was held by {holder})"),
            Ok(None) => println!("{host}: {root} was not locked"),
            Err(e) => {
                println!("{host}: unreachable: {e}");
                code = EXIT_UNREACHABLE;
            }
        }
    }
    Ok(code)
}
