//! Taking and releasing the deploy lock on every targeted host.
//!
//! Runs started at the same moment on overlapping hosts must not all give
//! up (each holding some locks and meeting the others'). Two rules make
//! exactly one of them win:
//!
//! - The hosts are locked in one global order, by name: the first host
//!   alone, then the rest in parallel. Of runs on the same hosts, whoever
//!   takes the first host's lock is the only one past it, so it meets no
//!   contender on the rest; the others stop there, having taken nothing.
//! - Where sets differ (their first hosts too), the older run (smaller run
//!   id) has priority: a run meeting the lock of an older run gives up at
//!   once; one meeting the lock of a younger run that is still locking
//!   (its lock is not yet `complete`) waits for it, briefly. So the oldest
//!   contender either gets every lock or meets a run that completed its
//!   locking: someone wins, and waits go only from older to younger runs,
//!   so none wait on each other in a circle.
//!
//! (Reachability aside: an unreachable host is skipped, and the next one in
//! the order comes first.)
//!
//! A run that finds a host locked by someone else releases what it took
//! and stops before anything changes, naming the holder and saying
//! whether it is alive. A lock whose run is known to have ended is taken
//! over (see `lock_holder`); while the run lives, its locks are renewed
//! (see `lock_renewal`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lock_holder::{self, HolderStatus};
use super::lock_renewal::{FirstRenewal, LockRenewal, LockTiming, RenewalTarget};
use super::step::StepResult;
use super::task_runner::ensure_connected;
use super::{HostState, Runner};
use crate::distribution::ReleasePlan;
use crate::distribution::lock::{self, Acquired, Holder};
use crate::distribution::remote;
use crate::report::Event;

/// The locks a run holds, renewed until [`unlock_all`] releases them.
pub struct HeldLocks {
    /// The hosts locked.
    pub hosts: HashSet<String>,
    renewal: LockRenewal,
}

/// What a host is asked in the round trip that locks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Nothing,
    /// Its release state for this plan (a deploy's prepare needs it), kept as the cycle's `found`.
    Release,
    /// Its releases, current and previous (a rollback's target), kept as the cycle's `status`.
    Status,
}

/// One host's lock, after any take-over.
enum HostLock {
    Taken,
    Refused(String),
}

/// Locks every host that takes part in the cycle; returns the locks,
/// renewed from now on. Each host is asked what `probe` says in the same
/// round trip, and the answer kept in its cycle.
pub async fn lock_all(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    holder: &Holder,
    probe: Probe,
) -> Result<HeldLocks, String> {
    let timing = LockTiming::from_env();
    let mut order: Vec<(&mut HostState, ReleasePlan)> = hosts
        .iter_mut()
        .filter_map(|h| {
            let plan = h.plan()?.clone();
            Some((&mut **h, plan))
        })
        .collect();
    order.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    // Connecting takes no lock: every host is connected first, all at once
    // (up to --forks), so that the first host's lock does not wait for a
    // connection of its own before the others start theirs. Only as many
    // as --max-connections keeps: a connection opened beyond that would be
    // closed again before its host's lock, and made a third time.
    let keeps = runner.options.masters.bound();
    runner
        .forks()
        .each(order.iter_mut().take(keeps), |(host, _)| async move {
            if host.active() {
                let vars = host.inventory_vars.clone();
                ensure_connected(runner, host, &vars, "lock", Instant::now()).await;
            }
        })
        .await;
    let mut rest = order.into_iter();
    let mut answers = Vec::new();
    // The first host in the order alone: its lock decides between runs started together.
    for (host, plan) in rest.by_ref() {
        let answer = lock_one(runner, host, &plan, holder, probe, timing).await;
        let decided = answer.is_some();
        answers.extend(answer);
        if decided {
            break;
        }
    }
    if matches!(answers.first(), Some((_, HostLock::Taken))) {
        let others: Vec<_> = rest.collect();
        answers.extend(
            runner
                .forks()
                .each(others, |(host, plan)| async move {
                    lock_one(runner, host, &plan, holder, probe, timing).await
                })
                .await
                .into_iter()
                .flatten(),
        );
    }
    let mut taken = HashSet::new();
    let mut refusals = Vec::new();
    for (name, answer) in answers {
        match answer {
            HostLock::Taken => {
                taken.insert(name);
            }
            HostLock::Refused(why) => refusals.push(why),
        }
    }
    if refusals.is_empty() {
        let targets = hosts
            .iter()
            .filter(|h| taken.contains(&h.name))
            .filter_map(|h| {
                Some(RenewalTarget {
                    host: h.name.clone(),
                    conn: Arc::clone(h.conn.as_ref()?),
                    root: h.plan()?.root.clone(),
                    sudo: h.release_sudo(),
                    releasing: Arc::clone(&h.cycle.as_ref()?.releasing),
                })
            })
            .collect();
        let renewal = LockRenewal::start(
            targets,
            holder.line(),
            timing.renew_every,
            runner.reporter.clone(),
            "deploy lock".into(),
            runner.options.forks,
            FirstRenewal::Later,
        );
        return Ok(HeldLocks {
            hosts: taken,
            renewal,
        });
    }
    let held = HeldLocks {
        hosts: taken,
        renewal: LockRenewal::none(),
    };
    unlock_all(
        runner,
        hosts,
        held,
        holder,
        &format!("run={} refused: locked", holder.run_id),
        None,
    )
    .await;
    Err(format!(
        "another run holds the deploy lock; nothing was changed.\n  {}",
        refusals.join("\n  ")
    ))
}

/// Locks one host, taking over a lock whose run has ended (or, with
/// `--force-unlock`, a stale one). `None`: the host is unreachable
/// (already reported) and takes no part.
async fn lock_one(
    runner: &Runner<'_>,
    host: &mut HostState,
    plan: &ReleasePlan,
    holder: &Holder,
    probe: Probe,
    timing: LockTiming,
) -> Option<(String, HostLock)> {
    let sudo = host.release_sudo();
    let sudo = sudo.as_ref();
    if !host.active()
        || !ensure_connected(
            runner,
            host,
            &host.inventory_vars.clone(),
            "lock",
            Instant::now(),
        )
        .await
    {
        return None;
    }
    let conn = host.conn.as_ref()?;
    // remote.rs still builds the probe with `quote` (every value quoted
    // there); it is convoy's code, carried over until it is a ShellScript too.
    let then = match probe {
        Probe::Nothing => None,
        Probe::Release => Some(remote::probe_script(plan)),
        Probe::Status => Some(remote::status_script(&plan.root)),
    };
    let then = then.as_ref();
    let name = host.name.clone();
    let journals = runner.playbook.base_dir.join(".convoy/runs");
    let patience = Instant::now() + locking_patience(runner);
    let mut answer = lock::acquire(conn, &plan.root, holder, None, then, sudo).await;
    while let Ok(Ok(Acquired::Held {
        holder: line,
        age_secs,
        complete,
    })) = &answer
    {
        let age = Duration::from_secs(*age_secs);
        let status = lock_holder::assess(line, age, timing.stale_after, &journals);
        let take_over = match &status {
            HolderStatus::Ended(why) => Some(why.clone()),
            HolderStatus::Stale if runner.options.force_unlock => Some(format!(
                "not renewed for {} (--force-unlock)",
                humantime::format_duration(age)
            )),
            _ => None,
        };
        if let Some(why) = take_over {
            let old = line.clone();
            answer = lock::acquire(conn, &plan.root, holder, Some(&old), then, sudo).await;
            if let Ok(Ok(Acquired::Taken { .. })) = &answer {
                runner.reporter.send(Event::Note {
                    message: format!("{name}: took over the deploy lock of {old}: {why}"),
                });
            }
            // Taken, or taken over by someone else meanwhile: theirs now.
            break;
        }
        let alive = matches!(
            status,
            HolderStatus::AliveHere { .. } | HolderStatus::Unknown
        );
        if alive && !complete && younger(line, holder) && Instant::now() < patience {
            // A younger run still locking gives way when it meets one of
            // our locks; look again rather than both giving up.
            tokio::time::sleep(Duration::from_millis(250)).await;
            answer = lock::acquire(conn, &plan.root, holder, None, then, sudo).await;
            continue;
        }
        let refusal = lock_holder::refusal(&name, line, age, &status, timing.stale_after);
        return Some((name, HostLock::Refused(refusal)));
    }
    let answer = match answer {
        Ok(Ok(Acquired::Taken {
            partials_removed,
            then,
        })) => {
            if partials_removed > 0 {
                runner.reporter.send(Event::Note {
                    message: format!(
                        "{name}: removed {partials_removed} partial upload(s) left in the artifact store by an earlier run"
                    ),
                });
            }
            if let Some(cycle) = host.cycle.as_mut() {
                // The run's next script here marks the lock complete.
                cycle.lock_mark = Some(lock::complete_mark(&plan.root, &holder.line()));
                match probe {
                    Probe::Nothing => {}
                    Probe::Release => cycle.found = Some(remote::parse_probe(&then)),
                    Probe::Status => cycle.status = Some(remote::parse_status(&then)),
                }
            }
            HostLock::Taken
        }
        Ok(Ok(Acquired::Held {
            holder: line,
            age_secs,
            ..
        })) => {
            let age = Duration::from_secs(age_secs);
            let status = lock_holder::assess(&line, age, timing.stale_after, &journals);
            HostLock::Refused(lock_holder::refusal(
                &name,
                &line,
                age,
                &status,
                timing.stale_after,
            ))
        }
        Ok(Err(reason)) => HostLock::Refused(format!("{name}: cannot lock: {reason}")),
        Err(e) => HostLock::Refused(format!("{name}: cannot lock: {e}")),
    };
    Some((name, answer))
}

/// How long a run waits for a lock held by a younger run that is still
/// taking its locks: that run's locking lasts at most about a connection
/// timeout (its hosts are connected in parallel) and a round trip, twice
/// over when it waits on a younger run in turn.
fn locking_patience(runner: &Runner<'_>) -> Duration {
    runner.options.connect_timeout * 2 + Duration::from_secs(5)
}

/// Whether the holder `line` names a run younger than ours. Run ids start
/// with their start time (and end with a random tiebreak), so every run
/// compares any two the same way.
fn younger(line: &str, ours: &Holder) -> bool {
    Holder::parse(line).is_some_and(|h| h.run_id > ours.run_id)
}

/// Stops renewing, then releases the locks this run took, writing the
/// audit line on each host. With `confirm` (a deploy's confirm step, when
/// the play has no confirm hooks) each host that is still in the cycle
/// prunes its releases in the same round trip, reported as that step.
pub async fn unlock_all(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    locked: HeldLocks,
    holder: &Holder,
    audit: &str,
    confirm: Option<&str>,
) {
    locked.renewal.stop().await;
    let locked = &locked.hosts;
    if let Some(task) = confirm {
        let count = hosts
            .iter()
            .filter(|h| locked.contains(&h.name) && h.cycling())
            .count();
        if count > 0 {
            runner.reporter.send(Event::TaskStart {
                task: task.to_owned(),
                hosts: count,
                handler: false,
            });
        }
    }
    let results = runner
        .forks()
        .each(
            hosts.iter_mut().filter(|h| {
                locked.contains(&h.name) && !h.cycle.as_ref().is_some_and(|c| c.unlocked)
            }),
            |host| async move {
                let (Some(plan), Some(conn)) = (host.plan().cloned(), host.conn.clone()) else {
                    return Some(host.name.clone());
                };
                let sudo = host.release_sudo();
                let Some(task) = confirm.filter(|_| host.cycling()) else {
                    return lock::release(conn.as_ref(), &plan.root, holder, audit, sudo.as_ref())
                        .await
                        .err()
                        .map(|_| host.name.clone());
                };
                let started = Instant::now();
                runner.reporter.send(Event::HostStart {
                    host: host.name.clone(),
                });
                let prune = remote::prune_script(&plan.root, plan.keep);
                let answer = lock::release_after(
                    conn.as_ref(),
                    &plan.root,
                    holder,
                    audit,
                    &prune,
                    sudo.as_ref(),
                )
                .await;
                let (result, stuck) = match answer {
                    Err(e) => (super::step::transport_failure(host, e), true),
                    Ok(b) if !b.success => (
                        StepResult::failed(remote::failure_message(&b.stderr)),
                        false,
                    ),
                    Ok(b) => match remote::pruned(&b.stdout) {
                        removed if removed.is_empty() => (
                            StepResult::ok(format!("keeping at most {} releases", plan.keep)),
                            false,
                        ),
                        removed => (
                            StepResult::changed(format!("pruned {}", removed.join(", "))),
                            false,
                        ),
                    },
                };
                super::step::record(runner, host, task, result, started);
                stuck.then(|| host.name.clone())
            },
        )
        .await;
    let stuck: Vec<String> = results.into_iter().flatten().collect();
    if !stuck.is_empty() {
        runner.reporter.send(Event::Note {
            message: format!(
                "could not release the deploy lock on {} (unreachable); the next run from this project takes it over (its journal records this run's end), or `convoy unlock PLAYBOOK` clears it",
                stuck.join(", ")
            ),
        });
    }
}
