//! A step of the release cycle: the same work on many hosts at once
//! (bounded by `--forks`), reported like a task.

use std::time::Instant;

use super::task_runner::{Scope, ensure_connected, run_tasks};
use super::{HostState, Runner};
use crate::distribution::ReleasePlan;
use crate::playbook::Task;
use crate::report::{Event, HostResult, Status};
use crate::tasks::FileDiff;

/// A step's result on one host.
pub struct StepResult {
    pub status: Status,
    pub msg: String,
    /// What would change or changed in files, shown with `--diff`.
    pub diffs: Vec<FileDiff>,
}

impl StepResult {
    pub fn ok(msg: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            msg: msg.into(),
            diffs: vec![],
        }
    }
    pub fn changed(msg: impl Into<String>) -> Self {
        Self {
            status: Status::Changed,
            msg: msg.into(),
            diffs: vec![],
        }
    }
    pub fn with_diffs(mut self, diffs: Vec<FileDiff>) -> Self {
        self.diffs = diffs;
        self
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            status: Status::Failed,
            msg: msg.into(),
            diffs: vec![],
        }
    }
}

/// Runs `work` on every host that takes part in the cycle and can still
/// act, reporting it as one task. `work` gets the host and (a copy of) its
/// plan, and gives the host back with its result. Returns each host's
/// status (the hosts that could not be reached too), in host order.
pub async fn step<'h, F, Fut>(
    runner: &Runner<'_>,
    name: &str,
    hosts: &'h mut [&mut HostState],
    work: F,
) -> Vec<(String, Status)>
where
    F: Fn(&'h mut HostState, ReleasePlan) -> Fut,
    Fut: std::future::Future<Output = (&'h mut HostState, StepResult)>,
{
    let count = hosts.iter().filter(|h| h.cycling()).count();
    if count == 0 {
        return vec![];
    }
    runner.reporter.send(Event::TaskStart {
        task: name.to_owned(),
        hosts: count,
        handler: false,
    });
    let work = &work;
    runner
        .forks()
        .each(
            hosts.iter_mut().filter(|h| h.cycling()),
            |host| async move {
                let host: &'h mut HostState = host;
                let started = Instant::now();
                runner.reporter.send(Event::HostStart {
                    host: host.name.clone(),
                });
                let plan = host.plan().expect("filtered").clone();
                if !ensure_connected(runner, host, &host.inventory_vars.clone(), name, started)
                    .await
                {
                    return (host.name.clone(), Status::Unreachable);
                }
                let (host, result) = work(host, plan).await;
                let status = record(runner, host, name, result, started);
                (host.name.clone(), status)
            },
        )
        .await
}

pub fn record(
    runner: &Runner<'_>,
    host: &mut HostState,
    task: &str,
    result: StepResult,
    started: Instant,
) -> Status {
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
        delegated_to: None,
        task: task.to_owned(),
        status,
        msg: Some(result.msg),
        item: None,
        duration: started.elapsed(),
        diffs: if runner.options.diff {
            result.diffs
        } else {
            vec![]
        },
        ignored: false,
        output: None,
        rc: None,
    })));
    status
}

pub fn transport_failure(host: &mut HostState, e: crate::transport::TransportError) -> StepResult {
    // A wrong sudo password fails the step; the host still answers.
    if !e.is_unreachable() {
        return StepResult {
            status: Status::Failed,
            msg: e.to_string(),
            diffs: vec![],
        };
    }
    host.unreachable = Some(e.to_string());
    StepResult {
        status: Status::Unreachable,
        msg: e.to_string(),
        diffs: vec![],
    }
}

/// Runs hook tasks on the active hosts `include` selects.
pub async fn hooks(
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
