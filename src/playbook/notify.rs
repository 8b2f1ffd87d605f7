//! `notify:` checked against the play's handlers at load time.
//!
//! A topic that no handler answers to (by `name` or `listen`) would be
//! dropped at run time with nothing said: the handler the author meant never
//! runs. Ansible refuses it too ("The requested handler ... was not found");
//! here it is refused before any host is contacted, with the nearest name.

use super::{Play, PlaybookError, Task, TaskKind};
use crate::source::nearest;

/// The first `notify:` topic of `play` that no handler answers to.
pub fn check(play: &Play) -> Result<(), PlaybookError> {
    let topics = topics(play);
    let not_handlers = [
        &play.pre_tasks,
        &play.tasks,
        &play.post_tasks,
        &play.hooks.prepare,
        &play.hooks.switch,
        &play.hooks.confirm,
    ];
    for tasks in not_handlers {
        no_listen(tasks)?;
    }
    not_handlers
        .into_iter()
        .chain([&play.handlers])
        .try_for_each(|tasks| check_tasks(tasks, &topics))
}

/// The same checks for tasks loaded while `play` runs (a tasks file whose
/// name is a template), which are tasks, not handlers.
pub fn check_loaded(play: &Play, tasks: &[Task]) -> Result<(), PlaybookError> {
    no_listen(tasks)?;
    check_tasks(tasks, &topics(play))
}

/// What the play's handlers answer to.
fn topics(play: &Play) -> Vec<&str> {
    play.handlers
        .iter()
        .flat_map(|h| h.name.iter().chain(&h.listen))
        .map(String::as_str)
        .collect()
}

/// `listen` outside `handlers:` would do nothing (Ansible refuses it too:
/// it is not an attribute of a task).
fn no_listen(tasks: &[Task]) -> Result<(), PlaybookError> {
    for task in tasks {
        if !task.listen.is_empty() {
            return Err(PlaybookError::Invalid {
                message:
                    "`listen` is for handlers: a task under `tasks:` or `hooks:` is never notified"
                        .into(),
                span: task.span.clone(),
            });
        }
        if let TaskKind::Block {
            block,
            rescue,
            always,
        } = &task.kind
        {
            for list in [block, rescue, always] {
                no_listen(list)?;
            }
        }
    }
    Ok(())
}

fn check_tasks(tasks: &[Task], topics: &[&str]) -> Result<(), PlaybookError> {
    for task in tasks {
        for topic in &task.notify {
            if !topics.contains(&topic.as_str()) {
                let suggestion = nearest(topic, topics.iter().copied())
                    .map(|n| format!(" (did you mean \"{n}\"?)"))
                    .unwrap_or_default();
                return Err(PlaybookError::Invalid {
                    message: format!(
                        "the requested handler \"{topic}\" was not found: no handler of this play has that `name` or `listen`{suggestion}"
                    ),
                    span: task
                        .notify_span
                        .clone()
                        .unwrap_or_else(|| task.span.clone()),
                });
            }
        }
        if let TaskKind::Block {
            block,
            rescue,
            always,
        } = &task.kind
        {
            for list in [block, rescue, always] {
                check_tasks(list, topics)?;
            }
        }
    }
    Ok(())
}
