//! A play's release cycle: prepare (ship and unpack everywhere, nothing
//! serving touched), switch (repoint `current`, run the switch hooks),
//! confirm (prune, confirm hooks). Rollback and patch reuse the switch.
//!
//! Every step runs on all hosts at once (bounded by `--forks`) and is
//! reported like a task, so the output, JSON events and recap stay uniform.

use std::time::Instant;

use super::context::as_value;
use super::host_cycle::HostCycle;
use super::rollout_switch::{Outcome, SwitchRun};
use super::step::{StepResult, hooks, step, transport_failure};
use super::task_runner::{Scope, ensure_connected};
use super::{HostState, Mode, Phase, Runner};
use crate::distribution::lock::Holder;
use crate::distribution::{self, ReleasePlan, remote};
use crate::playbook::{DistributionSpec, Play};
use crate::report::Event;

/// Runs the release cycle of `play` on `hosts`. `Err` is a refusal made
/// before any host changed (bad input, exit 3).
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    spec: &DistributionSpec,
    hosts: &mut Vec<&mut HostState>,
    proxy: Option<&tokio::sync::Mutex<super::proxy_step::ProxyRun>>,
) -> Result<CycleEnd, String> {
    for host in hosts.iter_mut() {
        let vars = scope.scope.context(host, &scope.vars);
        // Both were checked for every host before the run (a method other
        // than sudo is refused there); a failure here means the inventory
        // changed meanwhile: that host takes no part.
        let sudo = super::escalation::for_release(
            play,
            &runner.templates,
            &vars,
            &host.name,
            runner.options.become_password.as_ref(),
        );
        let ctx = as_value(vars);
        host.cycle = distribution::render(
            spec,
            &runner.templates,
            &ctx,
            &runner.playbook.base_dir,
            &runner.artifacts,
        )
        .ok()
        .zip(sudo.ok())
        .map(|(plan, sudo)| HostCycle::new(plan, sudo));
        host.publish_release(None);
    }
    let (name, version) = hosts
        .iter()
        .find_map(|h| h.plan())
        .map(|p| (p.name.clone(), p.version.clone()))
        .unwrap_or_default();
    if runner.options.check {
        // Asks the hosts, changes nothing: no lock, no audit line.
        return super::release_preview::run(runner, scope, play, hosts, proxy)
            .await
            .map(|()| CycleEnd::Checked);
    }
    let holder = Holder::this_process(deployed_by(), runner.options.run_id.clone());
    // One run at a time: every targeted host is locked before anything changes.
    // A deploy reads each host's release state in the lock's round trip, a
    // rollback the releases it can go back to.
    let probe = match runner.options.mode {
        Mode::Deploy { .. } => super::lock::Probe::Release,
        Mode::Rollback { .. } => super::lock::Probe::Status,
        Mode::Patch { .. } => super::lock::Probe::Nothing,
    };
    let locked = super::lock::lock_all(runner, hosts, &holder, probe).await?;
    let action = match &runner.options.mode {
        Mode::Deploy { .. } => "deploy",
        Mode::Rollback { .. } => "rollback",
        Mode::Patch { .. } => "patch",
    };
    let target = match &runner.options.mode {
        Mode::Rollback { to } => to.clone().unwrap_or_else(|| "previous".into()),
        _ => version.clone(),
    };
    let audit_line = |ended: &str| {
        format!(
            "{} run={} by={} playbook={} action={action} version={target} outcome={ended}",
            holder.since, holder.run_id, holder.by, runner.options.playbook_name
        )
    };
    // A rollback's switch is each host's last step unless a health gate or
    // a proxy tier follows it: the lock's release rides in the switch.
    let unlock = (matches!(runner.options.mode, Mode::Rollback { .. })
        && proxy.is_none()
        && play.rollout.as_ref().is_none_or(|r| r.health.is_none()))
    .then(|| super::rollout_switch::UnlockWithSwitch {
        holder: holder.clone(),
        audit: audit_line(CycleEnd::Completed.as_str()),
    });
    let mut unlocking = Unlocking {
        with_switch: unlock.as_ref(),
        prune: None,
    };
    let outcome = cycle(
        runner,
        scope,
        play,
        hosts,
        &format!("{name} {version}"),
        proxy,
        &mut unlocking,
    )
    .await;
    let ended = match &outcome {
        Ok(_) if runner.interrupt.is_set() => "interrupted",
        Ok(_) if !hosts.is_empty() && hosts.iter().all(|h| h.unreachable.is_some()) => {
            "unreachable"
        }
        Ok(end) => end.as_str(),
        Err(_) => "refused",
    };
    let audit = audit_line(ended);
    super::lock::unlock_all(
        runner,
        hosts,
        locked,
        &holder,
        &audit,
        unlocking.prune.as_deref(),
    )
    .await;
    runner.reporter.send(Event::Note {
        message: format!("{name} {action} ended: {ended}"),
    });
    outcome
}

/// How a release cycle ended, for the journal and the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEnd {
    /// A `--check` run: nothing changed.
    Checked,
    Prepared,
    Completed,
    Stopped,
    RolledBack,
    RollbackIncomplete,
}

impl CycleEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            CycleEnd::Checked => "checked",
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

/// How the locks are released: with each host's switch (a rollback's),
/// and whether the run's end prunes in the same round trip (`prune`: that
/// step's title).
struct Unlocking<'u> {
    with_switch: Option<&'u super::rollout_switch::UnlockWithSwitch>,
    prune: Option<String>,
}

/// The cycle proper, under the lock. `name` is "NAME VERSION" for the step
/// titles. A completed deploy whose play has no confirm hooks leaves its
/// confirm step (the prune) to the release of the locks, in the same round
/// trip: `unlocking.prune` is then that step's title.
async fn cycle(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    hosts: &mut Vec<&mut HostState>,
    name: &str,
    proxy: Option<&tokio::sync::Mutex<super::proxy_step::ProxyRun>>,
    unlocking: &mut Unlocking<'_>,
) -> Result<CycleEnd, String> {
    let switch = |label: String, may_roll_back: bool| SwitchRun {
        runner,
        scope,
        play,
        label,
        may_roll_back,
        proxy,
        unlock: None,
    };
    match &runner.options.mode {
        Mode::Deploy { phase } => {
            step(runner, &format!("prepare {name}"), hosts, |host, plan| {
                prepare(runner, host, plan)
            })
            .await;
            hooks(runner, scope, &play.hooks.prepare, hosts, |_| true).await;
            if *phase == Phase::Prepare {
                return Ok(CycleEnd::Prepared);
            }
            if !super::migrations::run_due(runner, scope, play, hosts, proxy).await {
                return Ok(CycleEnd::Stopped);
            }
            let outcome = switch(format!("switch {name}"), true).run(hosts).await;
            if outcome != Outcome::Completed || runner.interrupt.is_set() {
                // A rollout that did not complete keeps every release: no pruning, no confirm hooks.
                return Ok(outcome.into());
            }
            if play.hooks.confirm.is_empty() {
                unlocking.prune = Some(format!("confirm {name}"));
                return Ok(CycleEnd::Completed);
            }
            step(runner, &format!("confirm {name}"), hosts, |host, plan| {
                confirm(host, plan)
            })
            .await;
            hooks(runner, scope, &play.hooks.confirm, hosts, |_| true).await;
            Ok(CycleEnd::Completed)
        }
        Mode::Rollback { to } => {
            rollback_targets(runner, hosts, to.as_deref()).await?;
            let rollback = SwitchRun {
                unlock: unlocking.with_switch,
                ..switch("rollback".into(), false)
            };
            Ok(rollback.run(hosts).await.into())
        }
        Mode::Patch { files } => {
            step(runner, "patch", hosts, |host, plan| async move {
                let sudo = host.release_sudo();
                let conn = host.conn.as_ref().expect("connected by step");
                let result = match remote::make_patch(conn, &plan.root, files, sudo.as_ref()).await
                {
                    Err(e) => transport_failure(host, e),
                    Ok(Err(msg)) => StepResult::failed(msg),
                    Ok(Ok(version)) => {
                        let result = StepResult::changed(format!("made release {version}"));
                        if let Some(cycle) = host.cycle.as_mut() {
                            cycle.plan.version = version;
                            cycle.patched = true;
                        }
                        host.publish_release(None);
                        return (host, result);
                    }
                };
                (host, result)
            })
            .await;
            // A host without its patched release is not switched.
            for host in hosts.iter_mut() {
                if !host.cycle.as_ref().is_some_and(|c| c.patched) {
                    host.cycle = None;
                }
            }
            Ok(switch("switch to patch".into(), true)
                .run(hosts)
                .await
                .into())
        }
    }
}

async fn prepare<'h>(
    runner: &Runner<'_>,
    host: &'h mut HostState,
    plan: ReleasePlan,
) -> (&'h mut HostState, StepResult) {
    let sudo = host.release_sudo();
    let sudo = sudo.as_ref();
    let probed = host.cycle.as_ref().and_then(|c| c.found.clone());
    let conn = host.conn.as_ref().expect("connected by step");
    let playbook = runner.options.playbook_name.clone();
    let state = match probed {
        Some(state) => Ok(state),
        None => remote::probe(conn, &plan, sudo).await,
    };
    let mark = host.cycle.as_ref().and_then(|c| c.lock_mark.clone());
    let result = match state {
        Err(e) => Err(e),
        Ok(state) => remote::ship(conn, &plan, &state, &playbook, mark.as_ref(), sudo)
            .await
            .map(|r| (r, state)),
    };
    // Spent once a script went (in place, none did).
    if !matches!(result, Ok((Ok(remote::Shipped::InPlace), _)))
        && let Some(cycle) = host.cycle.as_mut()
    {
        cycle.lock_mark = None;
    }
    if let Ok((_, state)) = &result {
        let current = state.current.clone();
        if let Some(cycle) = host.cycle.as_mut() {
            cycle.found = Some(state.clone());
        }
        host.publish_release(current.as_deref());
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

async fn confirm(host: &mut HostState, plan: ReleasePlan) -> (&mut HostState, StepResult) {
    let sudo = host.release_sudo();
    let sudo = sudo.as_ref();
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

/// Sets each host's plan to the version it rolls back to; refuses
/// (touching nothing) when a host lacks it. What each host holds was read
/// in the round trip that locked it; a host without that answer is asked
/// now (one round trip each, `--forks` at a time).
async fn rollback_targets(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    to: Option<&str>,
) -> Result<(), String> {
    let answers = runner
        .forks()
        .each(
            hosts.iter_mut().filter(|h| h.cycle.is_some()),
            |host| async move {
                let root = host.plan()?.root.clone();
                // Read with the lock, normally.
                if let Some(status) = host.cycle.as_mut().and_then(|c| c.status.take()) {
                    return Some((host.name.clone(), Ok(status)));
                }
                let vars = host.inventory_vars.clone();
                if !ensure_connected(runner, host, &vars, "rollback", Instant::now()).await {
                    return None;
                }
                let conn = host.conn.as_ref().expect("connected");
                let status = remote::status(conn, &root, host.release_sudo().as_ref())
                    .await
                    .map_err(|e| format!("{}: {e}", host.name));
                Some((host.name.clone(), status))
            },
        )
        .await;
    let mut targets = std::collections::HashMap::new();
    let mut missing = Vec::new();
    for (name, status) in answers.into_iter().flatten() {
        let status = status?;
        let has = |v: &str| status.releases.iter().any(|r| r.version == v);
        match rollback_target(&name, to, status.previous.as_deref(), has) {
            Ok(t) => {
                targets.insert(name, (t, status.current));
            }
            Err(why) => missing.push(why),
        }
    }
    refuse_missing_targets(&missing)?;
    for host in hosts.iter_mut() {
        match (targets.remove(&host.name), host.cycle.as_mut()) {
            (Some((target, current)), Some(cycle)) => {
                cycle.plan.version = target;
                cycle.found = Some(remote::HostRelease {
                    current,
                    ..Default::default()
                });
                host.publish_release(None);
            }
            // Unreachable: it takes no part.
            _ => host.cycle = None,
        }
    }
    Ok(())
}

/// The version a host rolls back to: `to`, else the release it ran before;
/// `Err` names the host and what it lacks.
pub(super) fn rollback_target(
    host: &str,
    to: Option<&str>,
    previous: Option<&str>,
    has: impl Fn(&str) -> bool,
) -> Result<String, String> {
    match to.or(previous) {
        Some(t) if has(t) => Ok(t.to_owned()),
        Some(t) => Err(format!("{host} (no release {t})")),
        None => Err(format!("{host} (no previous release)")),
    }
}

/// A rollback is refused, touching nothing, when any host lacks its target.
pub(super) fn refuse_missing_targets(missing: &[String]) -> Result<(), String> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "cannot roll back: the target release is missing on {}; no host was switched",
        missing.join(", ")
    ))
}

/// `user@machine`, recorded with each switch.
pub fn deployed_by() -> String {
    let user = whoami::username().unwrap_or_else(|_| "unknown".into());
    let machine = whoami::hostname().unwrap_or_else(|_| "unknown".into());
    format!("{user}@{machine}")
}
