//! A run's moves of traffic between pools, each one apply of the proxy
//! tier (render, validate, install, reload; the previous files restored
//! when the proxy rejects them): a deploy's steps once the idle pool is
//! released and healthy, a rollback's switch back.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{Step, TrafficSpec, TrafficState};
use crate::report::Event;
use crate::run::Runner;
use crate::run::proxy_step::ProxyRun;

/// One step of the idle pool taking traffic. A step is applied, then held;
/// a traffic gate (5xx share, latency over the hold) judges it at the end
/// of [`hold`], before the next step, and on failure sends everything back
/// to the live pool with [`back`] ([`super::gate`]).
fn label(index: usize, total: usize, step: &Step, pool: &str, version: &str) -> String {
    format!(
        "traffic: step {}/{total}: {step} to {pool} ({version})",
        index + 1
    )
}

fn note(runner: &Runner<'_>, message: String) {
    runner.reporter.send(Event::Note { message });
}

/// How [`take`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// `pool` takes every request.
    All,
    /// A step the proxy rejected (the step before serves) or an interrupt
    /// between steps (the step reached keeps serving).
    Stopped,
    /// A step failed its gate and the traffic was sent back: `complete`
    /// when the pool that served before has all of it again.
    SentBack { complete: bool },
}

/// Gives `pool`, now running `version`, the traffic in `spec`'s steps.
pub async fn take(
    runner: &Runner<'_>,
    proxy: &Mutex<ProxyRun>,
    spec: &TrafficSpec,
    pool: &str,
    version: &str,
) -> Taken {
    let live_serves = {
        let p = proxy.lock().await;
        p.state
            .traffic
            .as_ref()
            .is_some_and(|t| t.pools.get(&t.live).is_some_and(|p| p.version.is_some()))
    };
    // Nothing to compare with while no pool serves a release convoy
    // deployed (the first run): one step.
    let steps = if live_serves {
        spec.steps.clone()
    } else {
        if spec.steps.len() > 1 {
            note(
                runner,
                format!("no pool serves a release yet: {pool} takes all the traffic in one step"),
            );
        }
        vec![Step::Share(100)]
    };
    let total = steps.len();
    let mut window = None;
    for (index, step) in steps.iter().enumerate() {
        if index > 0 && !hold(runner, spec.hold).await {
            let p = proxy.lock().await;
            let now = p.state.traffic.as_ref().map(TrafficState::summary);
            note(
                runner,
                format!(
                    "interrupted before traffic step {}/{total}: the proxy serves {}",
                    index + 1,
                    now.unwrap_or_default()
                ),
            );
            return Taken::Stopped;
        }
        if let Some(window) = window.take() {
            let held = label(index - 1, total, &steps[index - 1], pool, version);
            if let Err(sent) = super::judged_step::judge(runner, proxy, window, &held).await {
                return Taken::SentBack {
                    complete: sent.complete,
                };
            }
        }
        let label = label(index, total, step, pool, version);
        let moved = set(runner, proxy, &label, |t| {
            if let Some(p) = t.pools.get_mut(pool) {
                p.version = Some(version.to_owned());
            }
            match step {
                Step::Share(share) => t.set_share(pool, *share),
                Step::Target(target) => t.set_target(pool, target.clone()),
            }
        })
        .await;
        if !moved {
            return Taken::Stopped;
        }
        if let Some(gate) = spec.gate.as_ref().filter(|_| index + 1 < total) {
            match super::judged_step::open(runner, proxy, gate, pool, &label).await {
                Ok(opened) => window = opened,
                Err(sent) => {
                    return Taken::SentBack {
                        complete: sent.complete,
                    };
                }
            }
        }
    }
    Taken::All
}

/// Every request back to the pool that served before: the live pool's
/// other side when a release completed, or the live pool itself when the
/// traffic is split. Touches no app host. `Err` (nothing changed) when the
/// other pool runs no release convoy deployed.
pub async fn back(runner: &Runner<'_>, proxy: &Mutex<ProxyRun>) -> Result<bool, String> {
    let (target, label) = {
        let p = proxy.lock().await;
        let Some(t) = p.state.traffic.as_ref() else {
            return Ok(true);
        };
        let target = if t.split() {
            t.live.clone()
        } else {
            t.idle().to_owned()
        };
        let version = t.pools.get(&target).and_then(|p| p.version.clone());
        let Some(version) = version else {
            return Err(format!(
                "cannot switch back: pool {target} runs no release convoy deployed (traffic: {}); no proxy was changed",
                t.summary()
            ));
        };
        (
            target.clone(),
            format!("traffic: back to {target} ({version})"),
        )
    };
    Ok(set(runner, proxy, &label, |t| t.switch_to(&target)).await)
}

/// Applies `change` to the traffic state and brings the proxy tier to it
/// in one apply; on failure the state is put back (the proxy hosts kept
/// or restored their previous files) and the run says which step.
async fn set(
    runner: &Runner<'_>,
    proxy: &Mutex<ProxyRun>,
    label: &str,
    change: impl FnOnce(&mut TrafficState),
) -> bool {
    let mut p = proxy.lock().await;
    let Some(before) = p.state.traffic.clone() else {
        return true;
    };
    let mut after = before.clone();
    change(&mut after);
    p.state.traffic = Some(after);
    if p.apply(runner, label).await {
        let now = p.state.traffic.as_ref().map(TrafficState::summary);
        let serves = if runner.options.check {
            "would serve"
        } else {
            "traffic"
        };
        note(
            runner,
            format!("{label}: {serves} {}", now.unwrap_or_default()),
        );
        return true;
    }
    p.state.traffic = Some(before.clone());
    note(
        runner,
        format!(
            "{label} failed: the proxy keeps serving the step before ({})",
            before.summary()
        ),
    );
    false
}

/// Waits out a step's hold; `false` when the run is interrupted meanwhile.
async fn hold(runner: &Runner<'_>, hold: Duration) -> bool {
    if runner.options.check {
        return true;
    }
    let end = Instant::now() + hold;
    while Instant::now() < end {
        if runner.interrupt.is_set() {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
    !runner.interrupt.is_set()
}

/// The traffic states a run can go through, from `declared`: as it stands
/// (label empty), then after each step, with the idle pool taking the
/// traffic; for the pre-flight check and `convoy lint`, which render (and
/// validate) the proxy files of each.
pub fn step_states(
    spec: &TrafficSpec,
    declared: &TrafficState,
) -> Vec<(String, Option<TrafficState>)> {
    let idle = declared.idle().to_owned();
    let total = spec.steps.len();
    let mut states = vec![(String::new(), Some(declared.clone()))];
    for (index, step) in spec.steps.iter().enumerate() {
        let mut state = declared.clone();
        match step {
            Step::Share(share) => state.set_share(&idle, *share),
            Step::Target(target) => state.set_target(&idle, target.clone()),
        }
        states.push((format!("step {}/{total}: {step}", index + 1), Some(state)));
    }
    states
}
