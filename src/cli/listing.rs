//! `convoy run --list-hosts / --list-tasks / --list-tags`: what a run
//! would touch, in ansible-playbook's layout, with no host contacted.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Playbook, Task, TaskKind};
use crate::run::RunOptions;

/// Which listings were asked for (several may be).
pub struct Listing {
    pub hosts: bool,
    pub tasks: bool,
    pub tags: bool,
}

impl Listing {
    pub fn print(
        &self,
        path: &Path,
        inventory: &Inventory,
        playbook: &Playbook,
        options: &RunOptions,
    ) -> Result<(), Error> {
        println!("\nplaybook: {}\n", path.display());
        for (index, play) in playbook.plays.iter().enumerate() {
            let tags = format!("[{}]", play.tags.join(", "));
            println!(
                "  play #{} ({}): {}\tTAGS: {tags}",
                index + 1,
                play.hosts,
                play.name
            );
            if self.hosts {
                let hosts = super::shared::play_hosts(inventory, play, options)?;
                println!("    pattern: ['{}']", play.hosts);
                println!("    hosts ({}):", hosts.len());
                for h in hosts {
                    println!("      {h}");
                }
            }
            let mut tasks = Vec::new();
            for list in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                flatten(list, &play.tags, &mut tasks);
            }
            let tasks: Vec<(String, Vec<String>)> = tasks
                .into_iter()
                .filter(|(_, tags)| options.tags.runs(tags))
                .collect();
            if self.tasks {
                println!("    tasks:");
                for (name, tags) in &tasks {
                    let own: BTreeSet<&String> = tags.iter().collect();
                    let own: Vec<&str> = own.into_iter().map(String::as_str).collect();
                    println!("      {name}\tTAGS: [{}]", own.join(", "));
                }
            }
            if self.tags {
                let all: BTreeSet<&str> = tasks
                    .iter()
                    .flat_map(|(_, t)| t.iter().map(String::as_str))
                    .collect();
                let all: Vec<&str> = all.into_iter().collect();
                println!("      TASK TAGS: [{}]", all.join(", "));
            }
            println!();
        }
        Ok(())
    }
}

/// Every module task under `tasks` with its tags (inherited ones
/// included); an `include_tasks`/`include_role` is listed itself, not
/// what it includes, as ansible-playbook lists it (that is known only
/// when the run reaches it).
fn flatten(tasks: &[Task], inherited: &[String], out: &mut Vec<(String, Vec<String>)>) {
    for task in tasks {
        let mut tags = inherited.to_vec();
        tags.extend(task.tags.iter().cloned());
        match &task.kind {
            TaskKind::Module { .. } => out.push((task.display_name(), tags)),
            TaskKind::Block { .. } if task.include.is_some() => {
                out.push((task.display_name(), tags))
            }
            TaskKind::Block {
                block,
                rescue,
                always,
            } => {
                for list in [block, rescue, always] {
                    flatten(list, &tags, out);
                }
            }
        }
    }
}
