//! `convoy plan`: the batches, and each host's current -> new version.
//! It changes nothing: online it reads each host's `current` (one
//! read-only round trip); `--offline` contacts no host at all.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::shared::HostOpts;
use crate::distribution::{self, ArtifactCache, remote};
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::playbook::{OnFailure, RolloutSpec};
use crate::rollout::{FailureBudget, RolloutPlan};
use crate::run::context::as_value;
use crate::run::{Mode, Phase, connect, preflight};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// The playbook to plan.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Contact no host: current versions show as `?`.
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let super::shared::Distributions {
        inventory,
        playbook,
        options,
    } = opts
        .hosts
        .load_distributions(&opts.playbook, Mode::Deploy { phase: Phase::All })?;
    let templates = Arc::new(Templates::new(&playbook.base_dir));
    let artifacts = ArtifactCache::default();
    preflight::check(&inventory, &playbook, &templates, &artifacts, &options)?;
    let control_dir = super::shared::control_dir()?;
    let mut code = EXIT_OK;
    for play in &playbook.plays {
        let Some(spec) = &play.distribution else {
            continue;
        };
        let scope = preflight::play_scope(&playbook, play, &options)?;
        let sudo = crate::run::escalation::release_become(play);
        let sudo = sudo.as_ref();
        let names = super::shared::play_hosts(&inventory, play, &options)?;
        let mut hosts = Vec::new();
        for name in &names {
            let ctx = preflight::host_context(&scope, &inventory, &playbook, &options, name);
            let plan = distribution::render(
                spec,
                &templates,
                &as_value(ctx.clone()),
                &playbook.base_dir,
                &artifacts,
            )
            .map_err(|message| Error::Distribution {
                message,
                span: spec.span.clone(),
                host: name.clone(),
            })?;
            hosts.push((name.clone(), ctx, plan));
        }
        let currents: Vec<String> = if opts.offline {
            vec!["?".into(); hosts.len()]
        } else {
            let (options, dir) = (&options, control_dir.path());
            crate::run::Forks::new(options.forks)
                .each(hosts.iter(), |(name, ctx, plan)| async move {
                    match connect::open(name, ctx, options, dir).await {
                        Ok(conn) => {
                            let status = remote::status(&conn, &plan.root, sudo).await;
                            conn.close().await;
                            match status {
                                Ok(s) => s.current.unwrap_or_else(|| "(none)".into()),
                                Err(e) => format!("(unreachable: {e})"),
                            }
                        }
                        Err(e) => format!("(unreachable: {e})"),
                    }
                })
                .await
        };
        if currents.iter().any(|c| c.starts_with("(unreachable")) {
            code = EXIT_UNREACHABLE;
        }
        let default = RolloutSpec::default();
        let rollout = play.rollout.as_ref().unwrap_or(&default);
        let groups = inventory.groups();
        let plan = RolloutPlan::build(rollout, &names, &|g| {
            groups.get(g).cloned().unwrap_or_default()
        });
        let budget = FailureBudget::new(rollout.max_fail, names.len());
        let first = &hosts.first().map(|h| &h.2);
        let seed = plan
            .seed
            .map(|s| format!(", shuffle seed {s}"))
            .unwrap_or_default();
        println!(
            "PLAN {}: {} {} on {} host(s), {} batch(es), failure budget {}, on failure {}{seed}",
            play.name,
            spec.name,
            first.map(|p| p.version.as_str()).unwrap_or("?"),
            names.len(),
            plan.batches.len(),
            budget.allowed(),
            match rollout.on_failure {
                OnFailure::Rollback => "rollback",
                OnFailure::Stop => "stop",
            }
        );
        let width = names.iter().map(String::len).max().unwrap_or(0);
        for (i, batch) in plan.batches.iter().enumerate() {
            println!(
                "  batch {}/{}{}",
                i + 1,
                plan.batches.len(),
                if batch.canary { " (canary)" } else { "" }
            );
            for host in &batch.hosts {
                let idx = names
                    .iter()
                    .position(|n| n == host)
                    .expect("planned hosts come from names");
                println!(
                    "    {host:<width$}  {} -> {}",
                    currents[idx], hosts[idx].2.version
                );
            }
        }
    }
    Ok(code)
}
