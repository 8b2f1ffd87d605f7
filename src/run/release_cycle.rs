//! A play's release cycle: prepare (ship and unpack everywhere, nothing
//! serving touched), switch (repoint `current`, run the switch hooks),
//! confirm (prune, confirm hooks). Rollback and patch reuse the switch.
//!
//! Every step runs on all hosts at once (bounded by `--forks`) and is
//! reported like a task, so the output, JSON events and recap stay uniform.

use std::time::Instant;

use futures::future::join_all;
use serde_json::json;

use super::context::as_value;
use super::rollout_switch::{Outcome, SwitchRun};
use super::step::{StepResult, hooks, step, transport_failure};
use super::task_runner::{Scope, ensure_connected};
use super::{HostState, Mode, Phase, Runner};
use crate::distribution::lock::Holder;
use crate::distribution::{self, ReleasePlan, remote};
use crate::playbook::{DistributionSpec, Play};
use crate::report::Event;
use crate::transport::Become;

/// Runs the release cycle of `play` on `hosts`. `Err` is a refusal made
/// before any host changed (bad input, exit 3).
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    spec: &DistributionSpec,
    hosts: &mut Vec<&mut HostState>,
    proxy: Option<&tokio::sync::Mutex<super::proxy_step::ProxyRun>>,
) -> Result<(), String> {
    let sudo = play.sudo.unwrap_or(false).then(|| Become {
        user: play.become_user.clone().unwrap_or_else(|| "root".into()),
    });
    let sudo = sudo.as_ref();
    let mut plans = Vec::new();
    for host in hosts.iter_mut() {
        let ctx = as_value(scope.scope.context(host, &scope.vars));
        // Checked for every host before the run; a failure here means the inventory changed meanwhile.
        plans.push(distribution::render(
            spec,
            &runner.templates,
            &ctx,
            &runner.playbook.base_dir,
            &runner.artifacts,
        ));
    }
    let plans: Vec<Option<ReleasePlan>> = plans.into_iter().map(Result::ok).collect();
    for (host, plan) in hosts.iter_mut().zip(&plans) {
        if let Some(plan) = plan {
            set_release_facts(host, plan, None);
        }
    }
    let holder = Holder::this_process(deployed_by(), runner.options.run_id.clone());
    // One run at a time: every targeted host is locked before anything changes.
    // A deploy reads each host's release state in the lock's round trip.
    let probe = matches!(runner.options.mode, Mode::Deploy { .. });
    let locked = super::lock::lock_all(runner, hosts, &plans, &holder, probe, sudo).await?;
    let outcome = cycle(runner, scope, play, hosts, plans.clone(), sudo, proxy).await;
    let (action, version) = describe(runner, &plans);
    let ended = match &outcome {
        Ok(_) if runner.interrupt.is_set() => "interrupted",
        Ok(end) => end.as_str(),
        Err(_) => "refused",
    };
    let audit = format!(
        "{} run={} by={} playbook={} action={action} version={version} outcome={ended}",
        holder.since, holder.run_id, holder.by, runner.options.playbook_name
    );
    if let Ok(end) = &outcome {
        runner
            .cycle_ends
            .lock()
            .expect("not poisoned")
            .push(end.as_str());
    }
    super::lock::unlock_all(runner, hosts, &plans, locked, &holder, &audit, sudo).await;
    runner.reporter.send(Event::Note {
        message: format!(
            "{} {action} ended: {ended}",
            plans
                .iter()
                .flatten()
                .next()
                .map(|p| p.name.as_str())
                .unwrap_or("")
        ),
    });
    outcome.map(drop)
}

/// How a release cycle ended, for the journal and the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEnd {
    Prepared,
    Completed,
    Stopped,
    RolledBack,
    RollbackIncomplete,
}

impl CycleEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleEnd::Prepared => "prepared",
            CycleEnd::Completed => "completed",
            CycleEnd::Stopped => "stopped",
            CycleEnd::RolledBack => "rolled_back",
            CycleEnd::RollbackIncomplete => "rollback_incomplete",
        }
    }
}

impl From<Outcome> for CycleEnd {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Completed => CycleEnd::Completed,
            Outcome::Stopped => CycleEnd::Stopped,
            Outcome::RolledBack => CycleEnd::RolledBack,
            Outcome::RollbackIncomplete => CycleEnd::RollbackIncomplete,
        }
    }
}

fn describe(runner: &Runner<'_>, plans: &[Option<ReleasePlan>]) -> (&'static str, String) {
    let version = plans
        .iter()
        .flatten()
        .next()
        .map(|p| p.version.clone())
        .unwrap_or_default();
    match &runner.options.mode {
        Mode::Deploy { .. } => ("deploy", version),
        Mode::Rollback { to } => ("rollback", to.clone().unwrap_or_else(|| "previous".into())),
        Mode::Patch { .. } => ("patch", version),
    }
}

/// The cycle proper, under the lock.
async fn cycle(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    hosts: &mut Vec<&mut HostState>,
    mut plans: Vec<Option<ReleasePlan>>,
    sudo: Option<&Become>,
    proxy: Option<&tokio::sync::Mutex<super::proxy_step::ProxyRun>>,
) -> Result<CycleEnd, String> {
    let switch = |label: String, may_roll_back: bool| SwitchRun {
        runner,
        scope,
        play,
        sudo,
        label,
        may_roll_back,
        proxy,
    };
    match &runner.options.mode {
        Mode::Deploy { phase } => {
            let name = plans
                .iter()
                .flatten()
                .next()
                .map(|p| format!("{} {}", p.name, p.version))
                .unwrap_or_default();
            step(
                runner,
                &format!("prepare {name}"),
                hosts,
                &plans,
                |host, plan| prepare(runner, host, plan, sudo),
            )
            .await;
            hooks(runner, scope, &play.hooks.prepare, hosts, |_| true).await;
            if *phase == Phase::Prepare {
                return Ok(CycleEnd::Prepared);
            }
            if !super::migrations::run_due(runner, scope, play, hosts, &plans, sudo, proxy).await {
                return Ok(CycleEnd::Stopped);
            }
            let outcome = switch(format!("switch {name}"), true)
                .run(hosts, &plans)
                .await;
            if outcome != Outcome::Completed || runner.interrupt.is_set() {
                // A rollout that did not complete keeps every release: no pruning, no confirm hooks.
                return Ok(outcome.into());
            }
            step(
                runner,
                &format!("confirm {name}"),
                hosts,
                &plans,
                |host, plan| confirm(runner, host, plan, sudo),
            )
            .await;
            hooks(runner, scope, &play.hooks.confirm, hosts, |_| true).await;
            Ok(CycleEnd::Completed)
        }
        Mode::Rollback { to } => {
            let targets = rollback_targets(runner, hosts, &plans, to.as_deref(), sudo).await?;
            for (plan, target) in plans.iter_mut().zip(targets) {
                if let (Some(plan), Some(target)) = (plan.as_mut(), target) {
                    plan.version = target;
                }
            }
            Ok(switch("rollback".into(), false)
                .run(hosts, &plans)
                .await
                .into())
        }
        Mode::Patch { files } => {
            let made = std::sync::Mutex::new(std::collections::HashMap::new());
            let made_ref = &made;
            step(runner, "patch", hosts, &plans, |host, plan| async move {
                let conn = host.conn.as_ref().expect("connected by step");
                let result = match remote::make_patch(conn, &plan.root, files, sudo).await {
                    Err(e) => transport_failure(host, e),
                    Ok(Err(msg)) => StepResult::failed(msg),
                    Ok(Ok(version)) => {
                        made_ref
                            .lock()
                            .expect("not poisoned")
                            .insert(host.name.clone(), version.clone());
                        StepResult::changed(format!("made release {version}"))
                    }
                };
                (host, result)
            })
            .await;
            let made = made.into_inner().expect("not poisoned");
            for (host, plan) in hosts.iter().zip(plans.iter_mut()) {
                match made.get(&host.name) {
                    Some(version) => plan.iter_mut().for_each(|p| p.version = version.clone()),
                    // A host without its patched release is not switched.
                    None => *plan = None,
                }
            }
            Ok(switch("switch to patch".into(), true)
                .run(hosts, &plans)
                .await
                .into())
        }
    }
}

async fn prepare<'h>(
    runner: &Runner<'_>,
    host: &'h mut HostState,
    plan: &ReleasePlan,
    sudo: Option<&Become>,
) -> (&'h mut HostState, StepResult) {
    let probed = host.probed_release.take();
    let conn = host.conn.as_ref().expect("connected by step");
    let playbook = runner.options.playbook_name.clone();
    let state = match probed {
        Some(state) => Ok(state),
        None => remote::probe(conn, plan, sudo).await,
    };
    let result = match state {
        Err(e) => Err(e),
        Ok(state) => remote::ship(conn, plan, &state, &playbook, sudo)
            .await
            .map(|r| (r, state)),
    };
    if let Ok((_, state)) = &result {
        host.found_release = state.current.clone();
        set_release_facts(host, plan, state.current.as_deref());
    }
    let result = match result {
        Err(e) => transport_failure(host, e),
        Ok((Err(msg), _)) => StepResult::failed(msg),
        Ok((Ok(remote::Shipped::InPlace), _)) => {
            StepResult::ok(format!("release {} in place", plan.version))
        }
        Ok((Ok(remote::Shipped::Built { bytes, pulled }), state)) => {
            host.stats.artifact_bytes += bytes;
            let how = if pulled {
                "pulled the artifact".to_owned()
            } else if bytes > 0 {
                format!("sent {}", crate::report::human_bytes(bytes))
            } else if state.artifact_present {
                "artifact already on the host".to_owned()
            } else {
                "artifact pulled".to_owned()
            };
            StepResult::changed(format!("{how}, made {}", plan.release_path()))
        }
    };
    (host, result)
}

async fn confirm<'h>(
    _runner: &Runner<'_>,
    host: &'h mut HostState,
    plan: &ReleasePlan,
    sudo: Option<&Become>,
) -> (&'h mut HostState, StepResult) {
    let conn = host.conn.as_ref().expect("connected by step");
    let result = match remote::prune(conn, &plan.root, plan.keep, sudo).await {
        Err(e) => transport_failure(host, e),
        Ok(Err(msg)) => StepResult::failed(msg),
        Ok(Ok(removed)) if removed.is_empty() => {
            StepResult::ok(format!("keeping at most {} releases", plan.keep))
        }
        Ok(Ok(removed)) => StepResult::changed(format!("pruned {}", removed.join(", "))),
    };
    (host, result)
}

/// The version each host rolls back to; refuses (touching nothing) when a
/// host lacks it. Every host is asked at once (one round trip each).
async fn rollback_targets(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    plans: &[Option<ReleasePlan>],
    to: Option<&str>,
    sudo: Option<&Become>,
) -> Result<Vec<Option<String>>, String> {
    let answers = join_all(hosts.iter_mut().zip(plans).map(|(host, plan)| async move {
        let plan = plan.as_ref()?;
        let vars = host.inventory_vars.clone();
        if !ensure_connected(runner, host, &vars, "rollback", Instant::now()).await {
            return None;
        }
        let conn = host.conn.as_ref().expect("connected");
        let status = remote::status(conn, &plan.root, sudo)
            .await
            .map_err(|e| format!("{}: {e}", host.name));
        Some((host.name.clone(), status))
    }))
    .await;
    let mut targets = Vec::new();
    let mut missing = Vec::new();
    for answer in answers {
        let Some((name, status)) = answer else {
            targets.push(None);
            continue;
        };
        let status = status?;
        let target = to.map(str::to_owned).or(status.previous.clone());
        match target {
            Some(t) if status.releases.iter().any(|r| r.version == t) => targets.push(Some(t)),
            Some(t) => {
                missing.push(format!("{name} (no release {t})"));
                targets.push(None);
            }
            None => {
                missing.push(format!("{name} (no previous release)"));
                targets.push(None);
            }
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "cannot roll back: the target release is missing on {}; no host was switched",
            missing.join(", ")
        ));
    }
    Ok(targets)
}

/// `release` and `distribution` as hooks and later tasks see them.
pub(super) fn set_release_facts(host: &mut HostState, plan: &ReleasePlan, previous: Option<&str>) {
    let previous = previous.map(str::to_owned).or_else(|| {
        host.facts
            .get("release")
            .and_then(|r| r.get("previous"))
            .and_then(|p| p.as_str())
            .map(str::to_owned)
    });
    host.facts.insert(
        "release".into(),
        json!({"version": plan.version, "path": plan.release_path(), "previous": previous, "sha256": plan.sha256()}),
    );
    host.facts.insert(
        "distribution".into(),
        json!({"name": plan.name, "root": plan.root}),
    );
}

/// `user@machine`, recorded with each switch.
pub fn deployed_by() -> String {
    let user = whoami::username().unwrap_or_else(|_| "unknown".into());
    let machine = whoami::hostname().unwrap_or_else(|_| "unknown".into());
    format!("{user}@{machine}")
}
