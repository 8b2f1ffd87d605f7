//! `meta` tasks carried out by the run loop (`tasks/meta.rs` parses them).
//!
//! As in ansible-core's linear strategy, `end_play` is decided once, by the
//! `when` of the first host still running, while `end_host` and
//! `flush_handlers` are decided per host; none of them counts in the recap.

use super::HostState;
use super::Runner;
use super::context::as_value;
use super::host_state::Ended;
use super::task_runner::{Scope, false_condition, report, run_handlers};
use crate::playbook::Task;
use crate::tasks::{Meta, Outcome};
use crate::vars::{Value, merge};

/// Carries out the `meta` task `task` on the running `hosts`.
pub(super) async fn direct(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    args: &Value,
    hosts: &mut [&mut HostState],
) {
    match Meta::from_args(args) {
        Ok(Meta::FlushHandlers) if !scope.handler => run_handlers(runner, scope, hosts).await,
        Ok(Meta::EndHost) => {
            for host in hosts.iter_mut().filter(|h| h.in_play()) {
                if applies(runner, scope, task, host) {
                    host.ended = Some(Ended::Host);
                }
            }
        }
        Ok(Meta::EndPlay) => {
            let Some(first) = hosts.iter_mut().find(|h| h.in_play()) else {
                return;
            };
            if applies(runner, scope, task, first) {
                for host in hosts.iter_mut().filter(|h| h.in_play()) {
                    host.ended = Some(Ended::Play);
                }
            }
        }
        _ => {}
    }
}

/// Whether the task's `when` holds on `host`; a condition that cannot be
/// evaluated fails the host, as for any task.
fn applies(runner: &Runner<'_>, scope: &Scope<'_>, task: &Task, host: &mut HostState) -> bool {
    let mut vars = scope.vars.clone();
    merge(&mut vars, &task.vars);
    let ctx = as_value(scope.context_of(task, host, &vars));
    match false_condition(runner, task, &ctx, &task.span.to_string()) {
        Ok(None) => true,
        Ok(Some(_)) => false,
        Err(e) => {
            report(
                runner,
                task,
                &scope.blocks,
                host,
                Outcome::failed(e),
                None,
                Default::default(),
            );
            false
        }
    }
}
