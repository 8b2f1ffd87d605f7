//! Taking and releasing the deploy lock on every targeted host, in parallel.
//! A run that finds a host locked by someone else releases what it took
//! and stops before anything changes, naming the holder.

use std::time::{Duration, Instant};

use super::task_runner::ensure_connected;
use super::{HostState, Runner};
use crate::distribution::lock::{self, Acquired, Holder};
use crate::distribution::remote;
use crate::transport::Become;

/// A lock older than this may be taken over with `--force-unlock`.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Locks every host that takes part in the cycle; returns the names
/// locked. With `probe`, each host's release state is read in the same
/// round trip (a deploy's prepare needs it) and kept in its cycle.
pub async fn lock_all(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    holder: &Holder,
    probe: bool,
    sudo: Option<&Become>,
) -> Result<Vec<String>, String> {
    let results = runner
        .forks()
        .each(hosts.iter_mut(), |host| async move {
            let plan = host.plan()?.clone();
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
            let then = probe.then(|| remote::probe_script(&plan));
            let then = then.as_ref().map(crate::transport::ShellScript::text);
            let mut answer = lock::acquire(conn, &plan.root, holder, None, then, sudo).await;
            if let Ok(Ok(Acquired::Held {
                holder: line,
                age_secs,
            })) = &answer
                && runner.options.force_unlock
                && stale(line, *age_secs)
            {
                answer = lock::acquire(conn, &plan.root, holder, Some(line), then, sudo).await;
            }
            if probe
                && let Ok(Ok(Acquired::Taken { then })) = &answer
                && let Some(cycle) = host.cycle.as_mut()
            {
                cycle.found = Some(remote::parse_probe(then));
            }
            Some((host.name.clone(), answer))
        })
        .await;
    let mut taken = Vec::new();
    let mut refusals = Vec::new();
    for (name, answer) in results.into_iter().flatten() {
        match answer {
            Ok(Ok(Acquired::Taken { .. })) => taken.push(name),
            Ok(Ok(Acquired::Held {
                holder: line,
                age_secs,
            })) => refusals.push(format!(
                "{name}: locked by {line} ({} ago)",
                humantime::format_duration(Duration::from_secs(age_secs))
            )),
            Ok(Err(reason)) => refusals.push(format!("{name}: cannot lock: {reason}")),
            Err(e) => refusals.push(format!("{name}: cannot lock: {e}")),
        }
    }
    if refusals.is_empty() {
        return Ok(taken);
    }
    unlock_all(
        runner,
        hosts,
        &taken,
        holder,
        &format!("run={} refused: locked", holder.run_id),
        sudo,
    )
    .await;
    Err(format!(
        "another run holds the deploy lock; nothing was changed.\n  {}\n  wait for it to finish; if its process is gone, run again with --force-unlock (or `convoy unlock PLAYBOOK`)",
        refusals.join("\n  ")
    ))
}

/// Releases the locks this run took, writing the audit line on each host.
pub async fn unlock_all(
    runner: &Runner<'_>,
    hosts: &mut [&mut HostState],
    locked: &[String],
    holder: &Holder,
    audit: &str,
    sudo: Option<&Become>,
) {
    let results = runner
        .forks()
        .each(
            hosts.iter().filter(|h| locked.contains(&h.name)),
            |host| async move {
                let (Some(plan), Some(conn)) = (host.plan(), host.conn.as_ref()) else {
                    return Some(host.name.clone());
                };
                lock::release(conn, &plan.root, holder, audit, sudo)
                    .await
                    .err()
                    .map(|_| host.name.clone())
            },
        )
        .await;
    let stuck: Vec<String> = results.into_iter().flatten().collect();
    if !stuck.is_empty() {
        runner.reporter.send(crate::report::Event::Note {
            message: format!(
                "could not release the deploy lock on {} (unreachable); `convoy unlock PLAYBOOK` clears it",
                stuck.join(", ")
            ),
        });
    }
}

/// A lock is stale when it is old, or when its holder was a process on this
/// machine that no longer exists.
fn stale(line: &str, age_secs: u64) -> bool {
    if Duration::from_secs(age_secs) > STALE_AFTER {
        return true;
    }
    let Some(holder) = Holder::parse(line) else {
        return true;
    };
    let machine = holder.by.rsplit('@').next().unwrap_or_default().to_owned();
    let here = whoami::hostname().unwrap_or_default();
    machine == here && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists()
}
