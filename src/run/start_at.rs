//! `--start-at-task NAME`: the tasks before the first one so named (or
//! matching it as a shell pattern, as ansible-playbook matches) are passed
//! over; from it on, the run goes as usual. As in ansible-playbook, the
//! plays before the one holding that task gather no facts, and that play
//! and later ones do.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::playbook::{Playbook, Task, TaskKind};

pub struct StartAt {
    name: String,
    pattern: regex::Regex,
    reached: AtomicBool,
}

impl StartAt {
    /// `None` when no task of `playbook` has that name: the run would
    /// skip everything (Ansible fails at the end; convoy before starting).
    pub fn new(name: &str, playbook: &Playbook) -> Option<StartAt> {
        let pattern = regex::Regex::new(&crate::inventory::glob_regex(name)).ok()?;
        let start = StartAt {
            name: name.to_owned(),
            pattern,
            reached: AtomicBool::new(false),
        };
        let found = playbook.plays.iter().any(|p| {
            [&p.pre_tasks, &p.tasks, &p.post_tasks]
                .iter()
                .any(|l| any_named(l, &start))
        });
        found.then_some(start)
    }

    /// Does `play`'s fact gathering run: the task was reached, or is in `play`.
    pub fn gathers(&self, play: &crate::playbook::Play) -> bool {
        self.reached.load(Ordering::Relaxed)
            || [&play.pre_tasks, &play.tasks, &play.post_tasks]
                .iter()
                .any(|l| any_named(l, self))
    }

    fn matches(&self, task: &str) -> bool {
        task == self.name || self.pattern.is_match(task)
    }

    /// Does this task run? True from the first matching task on.
    pub fn lets_run(&self, task: &str) -> bool {
        if self.reached.load(Ordering::Relaxed) {
            return true;
        }
        if self.matches(task) {
            self.reached.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

fn any_named(tasks: &[Task], start: &StartAt) -> bool {
    tasks.iter().any(|t| match &t.kind {
        TaskKind::Module { .. } => start.matches(&t.display_name()),
        TaskKind::Block {
            block,
            rescue,
            always,
        } => [block, rescue, always].iter().any(|l| any_named(l, start)),
    })
}
