//! Switch hooks in the switch's own round trip.
//!
//! A switch hook is nearly always one plain line ("restart the service"):
//! running it as a task after the switch costs each host a remote command
//! of its own, a session, a login shell, and the controller an `ssh`
//! process. When every switch hook of the play is a plain `shell` or
//! `command` task (nothing that needs convoy between the switch and the
//! hook: no condition, loop, register, retry, escalation of its own,
//! `creates`/`removes`/`stdin`), the switch's script runs them itself,
//! right after repointing `current` and only when it did, in order,
//! stopping at the first that fails: what a task run of the same hooks
//! does. Their results are then reported as the hook tasks' results, with
//! the same events, so output, JSON and recap do not change.
//!
//! Any other hook list runs as tasks after the switch, as before.

use std::time::Duration;

use super::context::as_value;
use super::task_runner::{Scope, report_ran};
use super::{HostState, Runner};
use crate::distribution::remote::HookRan;
use crate::playbook::{Play, Task, TaskKind};
use crate::report::Event;
use crate::tasks::Outcome;
use crate::vars::merge;

/// The play's switch hooks, when they can run inside the switch.
pub struct SwitchHooks<'p> {
    tasks: Vec<&'p Task>,
    /// Separates the hooks' output in the switch's answer.
    pub marker: String,
}

/// The hooks' lines for one host, up to the first that could not be
/// rendered for it.
#[derive(Debug, Clone, Default)]
pub struct HostHooks {
    pub lines: Vec<String>,
    /// How each is shown and registered (`cmd`).
    displays: Vec<String>,
    /// The hook after the last line, which could not be rendered, and why.
    unrendered: Option<String>,
}

impl HostHooks {
    /// Each hook's outcome from what the host's switch `ran`, in order, up
    /// to the first that failed: a hook that could not be rendered fails
    /// there, as the task would.
    pub fn outcomes(&self, ran: &[HookRan]) -> Vec<Outcome> {
        let mut all = Vec::new();
        for (ran, display) in ran.iter().zip(&self.displays) {
            let outcome = match ran.rc {
                Some(rc) => crate::tasks::command_ran(display, rc, &ran.stdout, &ran.stderr),
                None => Outcome::failed(
                    "the host's answer ended before this hook did (the connection was lost)",
                ),
            };
            let failed = outcome.failed;
            all.push(outcome);
            if failed {
                return all;
            }
        }
        if all.len() == self.lines.len()
            && let Some(why) = &self.unrendered
        {
            all.push(Outcome::failed(why.clone()));
        }
        all
    }
}

impl<'p> SwitchHooks<'p> {
    /// The play's switch hooks if all of them can run inside the switch;
    /// `None` (they run as tasks) otherwise, or when there are none.
    pub fn of(runner: &Runner<'_>, scope: &Scope<'_>, play: &'p Play) -> Option<Self> {
        if play.hooks.switch.is_empty() || runner.options.start_at.is_some() {
            return None;
        }
        let mut tasks = Vec::new();
        for task in &play.hooks.switch {
            let mut tags = scope.tags.clone();
            tags.extend(task.tags.iter().cloned());
            if !runner.options.tags.runs(&tags) {
                // Skipped by --tags/--skip-tags: the task path says nothing either.
                continue;
            }
            if !plain(task) {
                return None;
            }
            tasks.push(task);
        }
        if tasks.is_empty() {
            return None;
        }
        Some(SwitchHooks {
            tasks,
            marker: format!("--convoy-switch-hook-{}--", runner.options.run_id),
        })
    }

    /// The hooks' lines for `host` (its `release` already names the
    /// release it is switched to, and the one it leaves).
    pub fn render(&self, runner: &Runner<'_>, scope: &Scope<'_>, host: &HostState) -> HostHooks {
        let mut out = HostHooks::default();
        for task in &self.tasks {
            let TaskKind::Module { module, args, .. } = &task.kind else {
                unreachable!("plain() took modules only")
            };
            let mut vars = scope.vars.clone();
            merge(&mut vars, &task.vars);
            let ctx = as_value(scope.scope.context(host, &vars));
            let origin = task.span.to_string();
            let line = runner
                .templates
                .render_deep(args, &ctx, &origin)
                .map_err(|e| e.to_string())
                .and_then(|args| {
                    crate::tasks::host_command(args, *module == "shell")
                        .map_err(|e| format!("module `{module}`: {e}"))
                });
            match line {
                Ok(c) => {
                    out.lines.push(c.line);
                    out.displays.push(c.display);
                }
                Err(why) => {
                    out.unrendered = Some(why);
                    break;
                }
            }
        }
        out
    }

    /// Reports each hook as a task on the hosts in `switched` (those whose
    /// switch changed `current`), from what their switch ran: the events a
    /// task run of the hooks sends, in the same order.
    pub fn report(
        &self,
        runner: &Runner<'_>,
        scope: &Scope<'_>,
        hosts: &mut [&mut HostState],
        switched: &[String],
    ) {
        for (i, task) in self.tasks.iter().enumerate() {
            let mut on: Vec<&mut HostState> = hosts
                .iter_mut()
                .filter(|h| h.active() && switched.contains(&h.name))
                .map(|h| &mut **h)
                .collect();
            if on.is_empty() {
                break;
            }
            runner.reporter.send(Event::TaskStart {
                task: task.display_name(),
                hosts: on.len(),
                handler: false,
            });
            for host in on.iter_mut() {
                runner.reporter.send(Event::HostStart {
                    host: host.name.clone(),
                });
                let outcome = host
                    .cycle
                    .as_mut()
                    .and_then(|c| c.hooks.get_mut(i).map(std::mem::take))
                    .unwrap_or_else(|| Outcome::failed("the switch did not run this hook"));
                report_ran(runner, scope, task, host, outcome, Duration::ZERO);
            }
        }
    }
}

/// A hook that nothing of convoy's needs to handle between the switch and
/// its line.
fn plain(task: &Task) -> bool {
    let TaskKind::Module { module, args, .. } = &task.kind else {
        return false;
    };
    let no_host_checks = args.as_object().is_none_or(|a| {
        !["creates", "removes", "stdin"]
            .iter()
            .any(|k| a.contains_key(*k))
    });
    matches!(*module, "shell" | "command")
        && no_host_checks
        && task.when.is_empty()
        && task.loop_spec.is_none()
        && task.register.is_none()
        && task.changed_when.is_none()
        && task.failed_when.is_none()
        && !task.ignore_errors
        && task.sudo.is_none()
        && task.become_user.is_none()
        && task.until.is_none()
        && task.retries.is_none()
        && !task.run_once
        && task.delegate_to.is_none()
        && task.check_mode.is_none()
        && task.diff.is_none()
        && task.include.is_none()
        && task.role.is_none()
}
