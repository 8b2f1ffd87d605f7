//! A task list on one host, outside a play's run: a job runs its `tasks:`
//! once per target this way, with the same engine (conditions, loops,
//! `register`, blocks, every module) a play's tasks use, on a connection
//! the job already holds. Results are collected rather than shown: the job
//! reports per target, and needs the failed task's name and message for
//! the target's record.

use std::path::Path;
use std::sync::Arc;

use super::context::PlayScope;
use super::task_runner::{Scope, run_tasks};
use super::{HostState, Interrupt, RunControl, RunOptions, Runner};
use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook, Task};
use crate::report::{Event, Status};
use crate::template::Templates;
use crate::transport::Connection;
use crate::vars::VarMap;

/// Where a task list is run: the play it belongs to and what it shares.
pub struct TaskListPlace<'a> {
    pub inventory: &'a Inventory,
    pub playbook: &'a Playbook,
    pub play: &'a Play,
    pub templates: Arc<Templates>,
    pub options: &'a RunOptions,
    pub control_dir: &'a Path,
}

/// How a task list ended on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskListEnd {
    /// No task failed (ignored failures do not count).
    Ok { tasks: usize, changed: usize },
    /// The first task that failed, its name and message; the list stopped there.
    Failed { task: String, message: String },
    /// The host could not be reached during the list.
    Unreachable { task: String, message: String },
}

/// Runs `tasks` on `host` over `conn`, with `vars` over the play's (a
/// job's `target`), and says how it ended.
pub async fn run_task_list(
    place: &TaskListPlace<'_>,
    host: &str,
    conn: Arc<Connection>,
    vars: VarMap,
    tasks: &[Task],
) -> TaskListEnd {
    let (reporter, mut events) = crate::report::collecting();
    let runner = Runner {
        inventory: place.inventory,
        playbook: place.playbook,
        templates: place.templates.clone(),
        options: place.options,
        reporter,
        // Ctrl-C starts no new target, but a started list runs to its end
        // and is recorded, as a running `run:` command is (else every
        // interrupted target would be `lost`).
        interrupt: Interrupt::default(),
        control: RunControl::default(),
        control_dir: place.control_dir.to_owned(),
        artifacts: Default::default(),
        delegates: Default::default(),
        fatal: Default::default(),
        batch_failed_whole: Default::default(),
        batch_failures: Default::default(),
    };
    let mut magic = VarMap::new();
    magic.insert("ansible_check_mode".into(), place.options.check.into());
    magic.insert(
        "playbook_dir".into(),
        place.playbook.base_dir.display().to_string().into(),
    );
    // The play's vars files were read when the job was prepared; a file
    // gone since fails the target here rather than the whole job.
    let vars_files = match super::preflight::play_scope(place.playbook, place.play, place.options) {
        Ok(s) => s.vars_files,
        Err(e) => {
            return TaskListEnd::Failed {
                task: "vars_files".into(),
                message: e.to_string(),
            };
        }
    };
    let scope = PlayScope {
        role_defaults: place.play.role_defaults.clone(),
        play_vars: place.play.vars.clone(),
        vars_files,
        role_vars: place.play.role_vars.clone(),
        extra_vars: place.options.extra_vars.clone(),
        magic,
    };
    let task_scope = Scope {
        play: place.play,
        scope: &scope,
        tags: Vec::new(),
        vars,
        handler: false,
        blocks: Default::default(),
        role: None,
    };
    let mut state = HostState::new(host.to_owned(), place.inventory.host_vars(host));
    state.conn = Some(conn);
    {
        let mut hosts = vec![&mut state];
        run_tasks(&runner, &task_scope, tasks, &mut hosts).await;
    }
    runner.delegates.close().await;
    drop(runner);
    let mut ran = 0;
    let mut changed = 0;
    let mut failed = None;
    while let Ok(event) = events.try_recv() {
        let Event::HostResult(r) = event else {
            continue;
        };
        ran += 1;
        match r.status {
            Status::Changed => changed += 1,
            Status::Failed if !r.ignored => {
                failed = Some((r.task.clone(), r.msg.clone().unwrap_or_default()));
            }
            Status::Unreachable => {
                return TaskListEnd::Unreachable {
                    task: r.task.clone(),
                    message: r.msg.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
    }
    if let Some(reason) = &state.unreachable {
        return TaskListEnd::Unreachable {
            task: String::new(),
            message: reason.clone(),
        };
    }
    match failed {
        // The host's failure stands after any rescue: the last failed task
        // before it is the one that stopped the list.
        Some((task, message)) if state.failed => TaskListEnd::Failed { task, message },
        _ => TaskListEnd::Ok {
            tasks: ran,
            changed,
        },
    }
}
