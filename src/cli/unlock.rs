//! `convoy unlock PLAYBOOK`: clear the deploy locks a dead run left behind.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::shared::HostOpts;
use crate::distribution::lock;
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::report::OutputFormat;
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
    let mut hosts = Vec::new();
    for (distribution, answers) in answers {
        for super::shared::HostAnswer { host, root, answer } in answers {
            let line = match &answer {
                Ok(Some(holder)) => format!("{host}: unlocked {root} (was held by {holder})"),
                Ok(None) => format!("{host}: {root} was not locked"),
                Err(e) => {
                    code = EXIT_UNREACHABLE;
                    format!("{host}: unreachable: {e}")
                }
            };
            match opts.hosts.output {
                OutputFormat::Text => println!("{line}"),
                OutputFormat::Json => hosts.push(match answer {
                    Ok(holder) => json!({
                        "host": host,
                        "distribution": distribution,
                        "root": root,
                        "unlocked": holder.is_some(),
                        "held_by": holder.map(|h| h.to_string()),
                    }),
                    Err(e) => json!({
                        "host": host,
                        "distribution": distribution,
                        "root": root,
                        "unlocked": false,
                        "unreachable": e,
                    }),
                }),
            }
        }
    }
    if opts.hosts.output == OutputFormat::Json {
        // One document (README: Output): every host of every distribution.
        println!("{}", json!({ "hosts": hosts }));
    }
    Ok(code)
}
