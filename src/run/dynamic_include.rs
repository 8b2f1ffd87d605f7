//! `include_tasks` and `include_role` as ansible-core runs them when they
//! loop, or name their file with a template: the include is evaluated on
//! each host (per item, its `when` too), and each distinct inclusion (the
//! file and the loop variables it was included with) runs its tasks on
//! the hosts that included it, in the order ansible-core's
//! `IncludedFile.process_include_results` gives (hosts in order, then
//! their items; a host including the same file with the same item twice
//! runs it twice).
//!
//! The include itself reports once per host: `ok` when it included
//! something, `skipped` when its condition was false for every item (or
//! the loop had none), as ansible-core's recap counts it.

use std::collections::HashMap;
use std::time::Duration;

use super::HostState;
use super::Runner;
use super::context::as_value;
use super::loop_items::{item_label, loop_vars, render_items};
use super::task_runner::{Scope, false_condition, report, run_tasks, skipped};
use crate::playbook::{Task, TaskKind};
use crate::tasks::Outcome;
use crate::vars::{Value, VarMap, merge};

/// One inclusion on one host: the file name (rendered) and the loop
/// variables it brings.
#[derive(Debug, Clone, PartialEq)]
struct Inclusion {
    file: String,
    vars: VarMap,
}

/// How an inclusion is shown: its loop item's label, as ansible-core's
/// `included: FILE for HOSTS => (item=…)`.
type Label = Option<String>;

/// The hosts (by position among the play's) that share one inclusion.
struct Included {
    inclusion: Inclusion,
    label: Label,
    hosts: Vec<usize>,
}

/// Whether the run, not the load, decides what `task` includes.
pub fn is_dynamic(task: &Task) -> bool {
    task.include.is_some() && (task.loop_spec.is_some() || task.dynamic_file.is_some())
}

/// Runs the include `task` (its block holding the tasks loaded with the
/// playbook, unless its file is a template); `scope` already holds the
/// include's own vars and keywords.
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    hosts: &mut Vec<&mut HostState>,
) {
    if !hosts.iter().any(|h| h.in_play()) {
        return;
    }
    runner.reporter.send(crate::report::Event::TaskStart {
        task: task.display_name(),
        hosts: hosts.iter().filter(|h| h.in_play()).count(),
        handler: scope.handler,
    });
    let mut per_host: Vec<(usize, Vec<(Inclusion, Label)>)> = Vec::new();
    let mut longest_loop = 0;
    for (index, host) in hosts.iter_mut().enumerate() {
        if !host.in_play() {
            continue;
        }
        let outcome = match inclusions(runner, scope, task, host) {
            Err(e) => Outcome::failed(e),
            Ok(found) if found.included.is_empty() => found.skip,
            Ok(found) => {
                longest_loop = longest_loop.max(found.items);
                per_host.push((index, found.included));
                continue;
            }
        };
        report(
            runner,
            task,
            &scope.blocks,
            host,
            outcome,
            None,
            Duration::ZERO,
        );
    }
    if let Some(spec) = &task.loop_spec
        && !spec.pause.is_zero()
        && longest_loop > 1
    {
        // `loop_control.pause` between items, as the hosts' loops run side by side.
        tokio::time::sleep(spec.pause * (longest_loop as u32 - 1)).await;
    }

    // Every inclusion is loaded and reported before any runs, as
    // ansible-core does: a host whose file cannot be loaded fails, and
    // runs none of its inclusions. Each host counts `ok` once per
    // inclusion, not once for the include task.
    let groups = grouped(per_host);
    let mut loaded: HashMap<String, Result<Vec<Task>, String>> = HashMap::new();
    for group in &groups {
        let result: Result<(), String> = match &task.dynamic_file {
            None => Ok(()),
            Some(dynamic) => {
                let file = &group.inclusion.file;
                let result = loaded.entry(file.clone()).or_insert_with(|| {
                    dynamic
                        .load(scope.play, file, &task.span)
                        .map_err(|e| e.to_string())
                });
                result.as_ref().map(|_| ()).map_err(Clone::clone)
            }
        };
        for &i in &group.hosts {
            let outcome = match &result {
                Ok(()) => Outcome::ok().with_msg(format!("included: {}", group.inclusion.file)),
                Err(e) => Outcome::failed(e.clone()),
            };
            report(
                runner,
                task,
                &scope.blocks,
                hosts[i],
                outcome,
                group.label.clone(),
                Duration::ZERO,
            );
        }
    }

    for group in &groups {
        let mut members: Vec<&mut HostState> = hosts
            .iter_mut()
            .enumerate()
            .filter(|(i, h)| group.hosts.contains(i) && h.in_play())
            .map(|(_, h)| &mut **h)
            .collect();
        if members.is_empty() {
            continue;
        }
        let tasks: &[Task] = match (&task.dynamic_file, &task.kind) {
            (Some(_), _) => match &loaded[&group.inclusion.file] {
                Ok(tasks) => tasks,
                Err(_) => continue,
            },
            (None, TaskKind::Block { block, .. }) => block,
            (None, TaskKind::Module { .. }) => unreachable!("an include is a block"),
        };
        let mut vars = scope.vars.clone();
        merge(&mut vars, &group.inclusion.vars);
        let inner = Scope {
            vars,
            ..scope.clone()
        };
        run_tasks(runner, &inner, tasks, &mut members).await;
    }
}

/// What one host includes, and what it reports if nothing.
struct Found {
    included: Vec<(Inclusion, Label)>,
    /// How many loop items it had (for `loop_control.pause`).
    items: usize,
    skip: Outcome,
}

fn inclusions(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    host: &HostState,
) -> Result<Found, String> {
    let ctx_map = scope.context_of(task, host, &scope.vars);
    let origin = task.span.to_string();
    let file_for = |ctx: &Value| -> Result<String, String> {
        match &task.dynamic_file {
            Some(dynamic) => runner
                .templates
                .render_str(&dynamic.template, ctx, &origin)
                .map_err(|e| e.to_string()),
            None => Ok(task
                .include
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()),
        }
    };
    let Some(spec) = &task.loop_spec else {
        let ctx = as_value(ctx_map);
        return Ok(match false_condition(runner, task, &ctx, &origin)? {
            Some(condition) => Found {
                included: vec![],
                items: 0,
                skip: skipped(&condition),
            },
            None => Found {
                included: vec![(
                    Inclusion {
                        file: file_for(&ctx)?,
                        vars: VarMap::new(),
                    },
                    None,
                )],
                items: 0,
                skip: Outcome::ok(),
            },
        });
    };
    let items = render_items(runner, spec, &as_value(ctx_map.clone()), &origin)?;
    let mut included = Vec::new();
    let mut last_false = None;
    for index in 0..items.len() {
        let vars = loop_vars(spec, &items, index);
        let mut item_ctx_map = ctx_map.clone();
        merge(&mut item_ctx_map, &vars);
        let item_ctx = as_value(item_ctx_map.clone());
        match false_condition(runner, task, &item_ctx, &origin)? {
            Some(condition) => last_false = Some(condition),
            None => {
                let label = item_label(runner, spec, &items[index], &item_ctx_map, &origin)
                    .map_err(|e| format!("Failed to template loop_control.label: {e}"))?;
                included.push((
                    Inclusion {
                        file: file_for(&item_ctx)?,
                        vars,
                    },
                    Some(label),
                ));
            }
        }
    }
    let skip = match last_false {
        Some(condition) => skipped(&condition).with_msg("All items skipped"),
        None => Outcome {
            skipped: true,
            ..Outcome::ok()
        }
        .with("skipped_reason", "No items in the list"),
    };
    Ok(Found {
        included,
        items: items.len(),
        skip,
    })
}

/// ansible-core's grouping: each inclusion joins the first equal one
/// that this host has not joined yet, else starts a new one.
fn grouped(per_host: Vec<(usize, Vec<(Inclusion, Label)>)>) -> Vec<Included> {
    let mut groups: Vec<Included> = Vec::new();
    for (host, inclusions) in per_host {
        for (inclusion, label) in inclusions {
            match groups
                .iter_mut()
                .find(|g| g.inclusion == inclusion && !g.hosts.contains(&host))
            {
                Some(group) => group.hosts.push(host),
                None => groups.push(Included {
                    inclusion,
                    label,
                    hosts: vec![host],
                }),
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inclusion(file: &str, item: i64) -> (Inclusion, Label) {
        let mut vars = VarMap::new();
        vars.insert("item".into(), json!(item));
        (
            Inclusion {
                file: file.into(),
                vars,
            },
            Some(item.to_string()),
        )
    }

    #[test]
    fn hosts_sharing_a_file_and_item_run_it_together_in_first_seen_order() {
        let groups = grouped(vec![
            (0, vec![inclusion("a.yml", 1), inclusion("a.yml", 2)]),
            (1, vec![inclusion("a.yml", 2), inclusion("b.yml", 1)]),
        ]);
        let shape: Vec<(String, Vec<usize>)> = groups
            .iter()
            .map(|g| {
                (
                    format!("{}:{}", g.inclusion.file, g.inclusion.vars["item"]),
                    g.hosts.clone(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("a.yml:1".to_owned(), vec![0]),
                ("a.yml:2".to_owned(), vec![0, 1]),
                ("b.yml:1".to_owned(), vec![1]),
            ]
        );
    }

    #[test]
    fn a_host_including_the_same_item_twice_runs_it_twice() {
        let groups = grouped(vec![
            (0, vec![inclusion("a.yml", 1), inclusion("a.yml", 1)]),
            (1, vec![inclusion("a.yml", 1)]),
        ]);
        let hosts: Vec<Vec<usize>> = groups.iter().map(|g| g.hosts.clone()).collect();
        assert_eq!(hosts, [vec![0, 1], vec![0]]);
    }
}
