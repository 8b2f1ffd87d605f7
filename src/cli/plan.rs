//! `convoy plan`: the batches, and each host's current -> new version.
//! It changes nothing: online it reads each host's `current` (one
//! read-only round trip); `--offline` contacts no host at all.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::shared::HostOpts;
use crate::distribution::{self, ArtifactCache, remote};
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::playbook::{OnFailure, RolloutSpec};
use crate::report::OutputFormat;
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
    let mut plays = Vec::new();
    for play in &playbook.plays {
        let Some(spec) = &play.distribution else {
            continue;
        };
        let scope = preflight::play_scope(&playbook, play, &options)?;
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
            let sudo = crate::run::escalation::for_release(
                play,
                &templates,
                &ctx,
                name,
                options.become_password.as_ref(),
            )?;
            hosts.push((name.clone(), ctx, plan, sudo));
        }
        // Each host's current release (`None`: none, or offline) and why it
        // could not be read.
        let currents: Vec<(Option<String>, Option<String>)> = if opts.offline {
            vec![(None, None); hosts.len()]
        } else {
            let (options, dir) = (&options, control_dir.path());
            crate::run::Forks::new(options.forks)
                .each(hosts.iter(), |(name, ctx, plan, sudo)| async move {
                    match connect::open(name, ctx, options, dir).await {
                        Ok(conn) => {
                            let status = remote::status(&conn, &plan.root, sudo.as_ref()).await;
                            conn.close().await;
                            match status {
                                Ok(s) => (s.current, None),
                                Err(e) => (None, Some(e.to_string())),
                            }
                        }
                        Err(e) => (None, Some(e.to_string())),
                    }
                })
                .await
        };
        let default = RolloutSpec::default();
        let rollout = play.rollout.as_ref().unwrap_or(&default);
        let groups = inventory.groups();
        let plan = RolloutPlan::build(rollout, &names, &|g| {
            groups.get(g).cloned().unwrap_or_default()
        });
        let traffic = play
            .proxy
            .as_ref()
            .and_then(|p| {
                crate::traffic::TrafficState::of_section(p, &inventory).zip(p.traffic.as_ref())
            })
            .map(|(state, spec)| PlannedTraffic {
                pools: state
                    .pools
                    .iter()
                    .map(|(name, p)| PlannedPool {
                        pool: name.clone(),
                        hosts: p.hosts.clone(),
                    })
                    .collect(),
                declared_live: spec.live.clone(),
                steps: spec.steps.iter().map(ToString::to_string).collect(),
                hold_seconds: spec.hold.as_secs_f64(),
                gate: spec.gate.as_ref().map(ToString::to_string),
            });
        let request_pools = play
            .proxy
            .iter()
            .flat_map(|p| &p.request_pools)
            .map(|rp| {
                let hosts: Vec<String> = if rp.hosts == crate::traffic::request_pools::LIVE {
                    vec!["the live pool".to_owned()]
                } else {
                    inventory
                        .select(&rp.hosts)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|h| h.name.clone())
                        .collect()
                };
                rp.summary(&hosts)
            })
            .collect();
        let planned = PlannedPlay {
            traffic,
            request_pools,
            play: play.name.clone(),
            distribution: spec.name.clone(),
            version: hosts.first().map(|h| h.2.version.clone()),
            hosts: names.len(),
            failure_budget: FailureBudget::new(rollout.max_fail, names.len()).allowed(),
            on_failure: match rollout.on_failure {
                OnFailure::Rollback => "rollback",
                OnFailure::Stop => "stop",
            },
            shuffle_seed: plan.seed,
            batches: plan
                .batches
                .iter()
                .map(|batch| PlannedBatch {
                    canary: batch.canary,
                    hosts: batch
                        .hosts
                        .iter()
                        .map(|host| {
                            let idx = names
                                .iter()
                                .position(|n| n == host)
                                .expect("planned hosts come from names");
                            let (current, unreachable) = currents[idx].clone();
                            PlannedHost {
                                host: host.clone(),
                                current,
                                new: hosts[idx].2.version.clone(),
                                unreachable,
                            }
                        })
                        .collect(),
                })
                .collect(),
        };
        if planned
            .batches
            .iter()
            .flat_map(|b| &b.hosts)
            .any(|h| h.unreachable.is_some())
        {
            code = EXIT_UNREACHABLE;
        }
        plays.push(planned);
    }
    match opts.hosts.output {
        OutputFormat::Text => plays.iter().for_each(|p| print_text(p, opts.offline)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({ "offline": opts.offline, "plays": plays })
        ),
    }
    Ok(code)
}

/// What `convoy plan` found for one play: the same for text and JSON
/// (`--output json` prints `{"offline": bool, "plays": [...]}`, documented in the README).
#[derive(Serialize)]
struct PlannedPlay {
    play: String,
    distribution: String,
    /// The version of the first host (they normally agree).
    version: Option<String>,
    hosts: usize,
    failure_budget: usize,
    on_failure: &'static str,
    shuffle_seed: Option<u64>,
    batches: Vec<PlannedBatch>,
    /// With `proxy.pools`: the release goes to the idle pool only (the
    /// proxy hosts record which one is live), then takes the traffic in
    /// these steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic: Option<PlannedTraffic>,
    /// `proxy.request_pools`, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    request_pools: Vec<String>,
}

#[derive(Serialize)]
struct PlannedTraffic {
    pools: Vec<PlannedPool>,
    /// Live until the proxy hosts record one.
    declared_live: String,
    steps: Vec<String>,
    hold_seconds: f64,
    /// What each step but the last must show over its hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<String>,
}

#[derive(Serialize)]
struct PlannedPool {
    pool: String,
    hosts: Vec<String>,
}

#[derive(Serialize)]
struct PlannedBatch {
    canary: bool,
    hosts: Vec<PlannedHost>,
}

#[derive(Serialize)]
struct PlannedHost {
    host: String,
    /// The release live now; `None` when there is none, or `--offline`.
    current: Option<String>,
    new: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable: Option<String>,
}

fn print_text(plan: &PlannedPlay, offline: bool) {
    let seed = plan
        .shuffle_seed
        .map(|s| format!(", shuffle seed {s}"))
        .unwrap_or_default();
    println!(
        "PLAN {}: {} {} on {} host(s), {} batch(es), failure budget {}, on failure {}{seed}",
        plan.play,
        plan.distribution,
        plan.version.as_deref().unwrap_or("?"),
        plan.hosts,
        plan.batches.len(),
        plan.failure_budget,
        plan.on_failure,
    );
    if let Some(t) = &plan.traffic {
        let pools: Vec<String> = t
            .pools
            .iter()
            .map(|p| format!("{} ({})", p.pool, p.hosts.join(", ")))
            .collect();
        println!(
            "  pools {}: a run releases to the idle one only (the proxy records which is live; {} until it does); the batches below list both",
            pools.join(", "),
            t.declared_live
        );
        println!(
            "  traffic steps: {}{}",
            t.steps.join(", "),
            if t.steps.len() > 1 {
                format!(", each but the last held {}s", t.hold_seconds)
            } else {
                String::new()
            }
        );
        if let Some(gate) = &t.gate {
            println!(
                "  traffic gate, judged at the end of each held step (failing sends the traffic back): {gate}"
            );
        }
    }
    for rp in &plan.request_pools {
        println!("  request pool {rp}");
    }
    let width = plan
        .batches
        .iter()
        .flat_map(|b| &b.hosts)
        .map(|h| h.host.len())
        .max()
        .unwrap_or(0);
    for (i, batch) in plan.batches.iter().enumerate() {
        println!(
            "  batch {}/{}{}",
            i + 1,
            plan.batches.len(),
            if batch.canary { " (canary)" } else { "" }
        );
        for h in &batch.hosts {
            let current = match (&h.unreachable, &h.current) {
                (Some(e), _) => format!("(unreachable: {e})"),
                (None, Some(c)) => c.clone(),
                (None, None) if offline => "?".into(),
                (None, None) => "(none)".into(),
            };
            println!("    {:<width$}  {current} -> {}", h.host, h.new);
        }
    }
}
