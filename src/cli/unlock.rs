//! `convoy unlock PLAYBOOK`: clear the deploy locks a dead run left behind.

use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::lock;
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::run::{Mode, Phase};
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
        let targets = super::shared::release_targets(
            &inventory, &playbook, play, spec, &options, &templates,
        )?;
        let roots: Vec<String> = targets.iter().map(|t| t.root.clone()).collect();
        let answers = super::shared::on_each_target(
            targets,
            &options,
            control_dir.path(),
            |conn, root| async move {
                let cleared = lock::clear(&conn, &root, None).await;
                (conn, cleared.map_err(|e| e.to_string()))
            },
        )
        .await;
        for ((host, result), root) in answers.into_iter().zip(roots) {
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
