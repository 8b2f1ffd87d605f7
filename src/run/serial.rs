//! `rollout:` on a play without `distribution:`: Ansible's `serial`.
//!
//! The play's hosts are split into the rollout's batches (canary, batch
//! sizes or ramp, order); each batch runs all the play's tasks, then the
//! handlers its hosts notified, then the health gate, before the next batch
//! starts. The failure budget (`max_fail`) is counted over the whole play;
//! once it is exceeded, or when every host of a batch failed (Ansible stops
//! the play then), no new batch starts. `pause` waits or asks between batches.
//! `convoy ctl` pause / continue / stop act at the same batch boundaries
//! (there is no release to roll back to here: `rollback` is refused).
//! The batches are journaled; `convoy resume` continues after the last
//! batch the interrupted run finished.

use super::batch_pause;
use super::control::ControlOrder;
use super::host_state::Ended;
use super::task_runner::{Scope, run_handlers, run_tasks};
use super::{HostState, Runner};
use crate::playbook::{Play, RolloutSpec};
use crate::report::Event;
use crate::rollout::{FailureBudget, RolloutPlan};

/// Runs `play`'s tasks and handlers on `hosts`, batch by batch.
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    spec: &RolloutSpec,
    hosts: &mut [&mut HostState],
) {
    let names: Vec<String> = hosts
        .iter()
        .filter(|h| h.active())
        .map(|h| h.name.clone())
        .collect();
    let groups = runner.inventory.groups();
    let built = RolloutPlan::build(spec, &names, &|g| {
        groups.get(g).cloned().unwrap_or_default()
    });
    // `convoy resume`: the interrupted run's batches, without those it finished.
    let (plan, done) = match runner
        .options
        .resume
        .as_ref()
        .and_then(|r| r.plays.get(&play.name))
    {
        Some(r) => (r.plan.clone(), r.batches_done),
        None => (built, 0),
    };
    // Recorded in the journal and JSON output, as for a release's rollout.
    runner.reporter.send(Event::RolloutPlanned {
        play: play.name.clone(),
        plan: plan.clone(),
    });
    let mut budget = FailureBudget::new(spec.max_fail, names.len());
    let total = plan.batches.len();
    let sizes: Vec<String> = plan
        .batches
        .iter()
        .map(|b| b.hosts.len().to_string())
        .collect();
    let seed = plan
        .seed
        .map(|s| format!(", shuffle seed {s}"))
        .unwrap_or_default();
    note(
        runner,
        format!(
            "{}: {total} batch(es) of {} host(s){seed}; failure budget {} host(s)",
            play.name,
            sizes.join("+"),
            budget.allowed()
        ),
    );
    let done = done.min(total);
    if done > 0 {
        note(
            runner,
            format!("resuming: batches 1-{done} of {total} finished in the interrupted run"),
        );
    }
    for (index, batch) in plan.batches.iter().enumerate().skip(done) {
        if runner.interrupt.is_set() {
            note(
                runner,
                format!(
                    "interrupted: batch {}/{total} and later were not started",
                    index + 1
                ),
            );
            return;
        }
        let answered = index == done
            || batch_pause::between(runner, &spec.pause, index, total, false).await
                == batch_pause::Decision::Continue;
        if !answered {
            runner.control.halt();
        }
        let go = answered
            && runner
                .control
                .boundary(index, total, None, &runner.interrupt)
                .await
                == ControlOrder::Go;
        if !go {
            note(runner, "stopped by the operator".into());
            return;
        }
        if runner.interrupt.is_set() {
            note(
                runner,
                format!(
                    "interrupted: batch {}/{total} and later were not started",
                    index + 1
                ),
            );
            return;
        }
        runner.reporter.send(Event::BatchStart {
            index: index + 1,
            total,
            hosts: batch.hosts.clone(),
            canary: batch.canary,
        });
        let mut members: Vec<&mut HostState> = hosts
            .iter_mut()
            .filter(|h| batch.hosts.contains(&h.name))
            .map(|h| &mut **h)
            .collect();
        runner
            .batch_failures
            .start(members.iter().map(|h| h.name.clone()));
        // Facts per batch, then pre_tasks, tasks and post_tasks, each
        // followed by its handlers, as Ansible.
        if let Some(gather) = &play.gather {
            run_tasks(runner, scope, std::slice::from_ref(gather), &mut members).await;
        }
        if !play.pre_tasks.is_empty() {
            run_tasks(runner, scope, &play.pre_tasks, &mut members).await;
            run_handlers(runner, scope, &mut members).await;
        }
        run_tasks(runner, scope, &play.tasks, &mut members).await;
        run_handlers(runner, scope, &mut members).await;
        if !play.post_tasks.is_empty() {
            run_tasks(runner, scope, &play.post_tasks, &mut members).await;
            run_handlers(runner, scope, &mut members).await;
        }
        if let Some(health) = &spec.health
            && !runner.options.check
        {
            super::health_gate::check(runner, scope, health, &mut members, HostState::active).await;
        }
        let failed: Vec<String> = members
            .iter()
            .filter(|h| !h.active())
            .map(|h| h.name.clone())
            .collect();
        for h in &failed {
            budget.fail(h);
        }
        let all_failed = !members.is_empty() && failed.len() == members.len();
        runner.reporter.send(Event::BatchEnd {
            play: play.name.clone(),
            index: index + 1,
            failed: failed.clone(),
        });
        if all_failed {
            // As ansible-core: the play stops, and no later play runs.
            super::play::stop_after_whole_batch(runner, &play.name);
        }
        let rest = total - index - 1;
        if rest == 0 {
            break;
        }
        // `meta: end_play` ends the play, not only its batch (ansible-core's AnsibleEndPlay).
        if members.iter().any(|h| h.ended == Some(Ended::Play)) {
            break;
        }
        // Named when the play stops: these hosts never ran the tasks.
        let not_run: Vec<&str> = plan.batches[index + 1..]
            .iter()
            .flat_map(|b| b.hosts.iter().map(String::as_str))
            .collect();
        let not_run = not_run.join(", ");
        if all_failed {
            note(
                runner,
                format!(
                    "every host of batch {}/{total} failed: the play stops, {rest} batch(es) not started; not run: {not_run}",
                    index + 1
                ),
            );
            return;
        }
        if budget.exceeded() {
            note(
                runner,
                format!(
                    "failure budget exceeded: {} host(s) failed ({}), {} allowed; {rest} batch(es) not started; not run: {not_run}",
                    budget.failed().len(),
                    budget.failed().join(", "),
                    budget.allowed()
                ),
            );
            return;
        }
    }
}

fn note(runner: &Runner<'_>, message: String) {
    runner.reporter.send(Event::Note { message });
}
