//! A play's release cycle: prepare (ship and unpack everywhere, nothing
//! serving touched), switch (repoint `current`, run the switch hooks),
//! confirm (prune, confirm hooks). Rollback and patch reuse the switch.
//!
//! Every step runs on all hosts at once (bounded by `--forks`) and is
//! reported like a task, so the output, JSON events and recap stay uniform.

use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use serde_json::json;
use tokio::sync::Semaphore;

use super::context::as_value;
use super::task_runner::{Scope, ensure_connected, run_tasks};
use super::{HostState, Mode, Phase, Runner};
use crate::distribution::{self, ReleasePlan, remote};
use crate::playbook::{DistributionSpec, Play, Task};
use crate::report::{Event, HostResult, Status};
use crate::transport::Become;

/// A step's result on one host.
struct StepResult {
    status: Status,
    msg: String,
}

impl StepResult {
    fn ok(msg: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            msg: msg.into(),
        }
    }
    fn changed(msg: impl Into<String>) -> Self {
        Self {
            status: Status::Changed,
            msg: msg.into(),
        }
    }
    fn failed(msg: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            msg: msg.into(),
        }
    }
}

/// Runs the release cycle of `play` on `hosts`. `Err` is a refusal made
/// before any host changed (bad input, exit 3).
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    spec: &DistributionSpec,
    hosts: &mut Vec<&mut HostState>,
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
    let mut plans: Vec<Option<ReleasePlan>> = plans.into_iter().map(Result::ok).collect();
    for (host, plan) in hosts.iter_mut().zip(&plans) {
        if let Some(plan) = plan {
            set_release_facts(host, plan, None);
        }
    }
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
                return Ok(());
            }
            switch_all(
                runner,
                scope,
                play,
                &format!("switch {name}"),
                hosts,
                &plans,
                sudo,
            )
            .await;
            step(
                runner,
                &format!("confirm {name}"),
                hosts,
                &plans,
                |host, plan| confirm(runner, host, plan, sudo),
            )
            .await;
            hooks(runner, scope, &play.hooks.confirm, hosts, |_| true).await;
        }
        Mode::Rollback { to } => {
            let targets = rollback_targets(runner, hosts, &plans, to.as_deref(), sudo).await?;
            for (plan, target) in plans.iter_mut().zip(targets) {
                if let (Some(plan), Some(target)) = (plan.as_mut(), target) {
                    plan.version = target;
                }
            }
            switch_all(runner, scope, play, "rollback", hosts, &plans, sudo).await;
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
            switch_all(runner, scope, play, "switch to patch", hosts, &plans, sudo).await;
        }
    }
    Ok(())
}

/// Runs `work` on every active host with a plan, reporting it as one task.
async fn step<'h, F, Fut>(
    runner: &Runner<'_>,
    name: &str,
    hosts: &'h mut Vec<&mut HostState>,
    plans: &'h [Option<ReleasePlan>],
    work: F,
) where
    F: Fn(&'h mut HostState, &'h ReleasePlan) -> Fut,
    Fut: std::future::Future<Output = (&'h mut HostState, StepResult)>,
{
    let count = hosts
        .iter()
        .zip(plans)
        .filter(|(h, p)| h.active() && p.is_some())
        .count();
    if count == 0 {
        return;
    }
    runner.reporter.send(Event::TaskStart {
        task: name.to_owned(),
        hosts: count,
        handler: false,
    });
    let forks = Arc::new(Semaphore::new(runner.options.forks.max(1)));
    let work = &work;
    join_all(
        hosts
            .iter_mut()
            .zip(plans)
            .filter(|(h, p)| h.active() && p.is_some())
            .map(|(host, plan)| {
                let forks = forks.clone();
                async move {
                    let _permit = forks.acquire_owned().await.expect("semaphore never closed");
                    let started = Instant::now();
                    runner.reporter.send(Event::HostStart {
                        host: host.name.clone(),
                    });
                    let plan = plan.as_ref().expect("filtered");
                    if !ensure_connected(runner, host, &host.inventory_vars.clone(), name, started)
                        .await
                    {
                        return;
                    }
                    let (host, result) = work(host, plan).await;
                    record(runner, host, name, result, started);
                }
            }),
    )
    .await;
}

fn record(
    runner: &Runner<'_>,
    host: &mut HostState,
    task: &str,
    result: StepResult,
    started: Instant,
) {
    let status = if host.unreachable.is_some() {
        Status::Unreachable
    } else {
        result.status
    };
    host.stats.count(status, false);
    if status == Status::Failed {
        host.failed = true;
    }
    runner.reporter.send(Event::HostResult(Box::new(HostResult {
        host: host.name.clone(),
        task: task.to_owned(),
        status,
        msg: Some(result.msg),
        item: None,
        duration: started.elapsed(),
        diffs: vec![],
        ignored: false,
        output: None,
    })));
}

fn transport_failure(host: &mut HostState, e: crate::transport::TransportError) -> StepResult {
    host.unreachable = Some(e.to_string());
    StepResult {
        status: Status::Unreachable,
        msg: e.to_string(),
    }
}

async fn prepare<'h>(
    runner: &Runner<'_>,
    host: &'h mut HostState,
    plan: &ReleasePlan,
    sudo: Option<&Become>,
) -> (&'h mut HostState, StepResult) {
    let conn = host.conn.as_ref().expect("connected by step");
    let playbook = runner.options.playbook_name.clone();
    let result = match remote::probe(conn, plan, sudo).await {
        Err(e) => Err(e),
        Ok(state) => remote::ship(conn, plan, &state, &playbook, sudo)
            .await
            .map(|r| (r, state)),
    };
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

/// Switches every host, then runs the switch hooks on the hosts that changed.
async fn switch_all(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    name: &str,
    hosts: &mut Vec<&mut HostState>,
    plans: &[Option<ReleasePlan>],
    sudo: Option<&Become>,
) {
    let by = deployed_by();
    let mut switched: Vec<String> = Vec::new();
    {
        let switched_ref = std::sync::Mutex::new(&mut switched);
        let by = &by;
        let switched_ref = &switched_ref;
        step(runner, name, hosts, plans, |host, plan| async move {
            let conn = host.conn.as_ref().expect("connected by step");
            let result = match remote::switch(conn, &plan.root, &plan.version, by, sudo).await {
                Err(e) => transport_failure(host, e),
                Ok(Err(msg)) => StepResult::failed(msg),
                Ok(Ok(s)) if !s.changed => StepResult::ok(format!("current is {}", plan.version)),
                Ok(Ok(s)) => {
                    set_release_facts(host, plan, s.previous.as_deref());
                    switched_ref
                        .lock()
                        .expect("not poisoned")
                        .push(host.name.clone());
                    StepResult::changed(format!(
                        "current {} -> {}",
                        s.previous.as_deref().unwrap_or("(none)"),
                        plan.version
                    ))
                }
            };
            (host, result)
        })
        .await;
    }
    hooks(runner, scope, &play.hooks.switch, hosts, |h| {
        switched.contains(&h.name)
    })
    .await;
}

/// The version each host rolls back to; refuses (touching nothing) when a
/// host lacks it.
async fn rollback_targets(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    plans: &[Option<ReleasePlan>],
    to: Option<&str>,
    sudo: Option<&Become>,
) -> Result<Vec<Option<String>>, String> {
    let mut targets = Vec::new();
    let mut missing = Vec::new();
    for (host, plan) in hosts.iter_mut().zip(plans) {
        let Some(plan) = plan else {
            targets.push(None);
            continue;
        };
        if !ensure_connected(
            runner,
            host,
            &host.inventory_vars.clone(),
            "rollback",
            Instant::now(),
        )
        .await
        {
            targets.push(None);
            continue;
        }
        let conn = host.conn.as_ref().expect("connected");
        let status = remote::status(conn, &plan.root, sudo)
            .await
            .map_err(|e| format!("{}: {e}", host.name))?;
        let target = to.map(str::to_owned).or(status.previous.clone());
        match target {
            Some(t) if status.releases.iter().any(|r| r.version == t) => targets.push(Some(t)),
            Some(t) => {
                missing.push(format!("{} (no release {t})", host.name));
                targets.push(None);
            }
            None => {
                missing.push(format!("{} (no previous release)", host.name));
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

async fn hooks(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    tasks: &[Task],
    hosts: &mut [&mut HostState],
    include: impl Fn(&HostState) -> bool,
) {
    if tasks.is_empty() {
        return;
    }
    let mut selected: Vec<&mut HostState> = hosts
        .iter_mut()
        .filter(|h| h.active() && include(h))
        .map(|h| &mut **h)
        .collect();
    if !selected.is_empty() {
        run_tasks(runner, scope, tasks, &mut selected).await;
    }
}

/// `release` and `distribution` as hooks and later tasks see them.
fn set_release_facts(host: &mut HostState, plan: &ReleasePlan, previous: Option<&str>) {
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
