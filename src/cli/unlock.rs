//! `convoy unlock PLAYBOOK`: clear the deploy locks a dead run left behind.

use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::lock;
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::run::{Mode, Phase, connect};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// The playbook whose distributions are unlocked.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let super::shared::Distributions {
        inventory,
        playbook,
        options,
    } = opts
        .hosts
        .load_distributions(&opts.playbook, Mode::Deploy { phase: Phase::All })?;
    let templates = Templates::new(&playbook.base_dir);
    let control_dir = super::shared::control_dir()?;
    let mut code = EXIT_OK;
    for play in &playbook.plays {
        let Some(spec) = &play.distribution else {
            continue;
        };
        for super::shared::ReleaseTarget { host, vars, root } in
            super::shared::release_targets(&inventory, &playbook, play, spec, &options, &templates)?
        {
            let result = match connect::open(&host, &vars, &options, control_dir.path()).await {
                Ok(conn) => {
                    let r = lock::clear(&conn, &root, None)
                        .await
                        .map_err(|e| e.to_string());
                    conn.close().await;
                    r
                }
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(Some(holder)) => println!("{host}: unlocked {root} (was held by {holder})"),
                Ok(None) => println!("{host}: {root} was not locked"),
                Err(e) => {
                    println!("{host}: unreachable: {e}");
                    code = EXIT_UNREACHABLE;
                }
            }
        }
    }
    Ok(code)
}
