//! A restart (stop, start) in rollout order: batch by batch, each host
//! acted on and then health-checked, and no new batch once the failure
//! budget is spent, so restarting 40 workers never takes them all down
//! and a restart that breaks the canary breaks nothing else.

use std::collections::HashMap;
use std::time::Duration;

use crate::playbook::Size;
use crate::rollout::{FailureBudget, HealthGate, HealthTarget, RolloutPlan};
use crate::run::Interrupt;

use super::{Action, ProxyDrain, Supervised};

/// What to do, to which program, in what order, gated by what.
pub struct RollingAction<'a> {
    pub action: Action,
    pub program: &'a str,
    pub plan: RolloutPlan,
    /// The gate and each host's rendered check; `None`: no gate.
    pub health: Option<(HealthGate, HashMap<String, HealthTarget>)>,
    pub pause: Duration,
    pub max_fail: Size,
}

/// Told as the rolling action goes, for the renderer.
pub enum RollingEvent<'a> {
    BatchStart {
        index: usize,
        total: usize,
        hosts: &'a [String],
    },
    /// A host's outcome: what the supervisor said (and the gate), or why it failed.
    Host {
        host: &'a str,
        result: &'a Result<String, String>,
    },
    /// The proxy tier was brought to a new state: `what` happened (the
    /// batch drained, back in service), or why it could not be.
    Proxy {
        what: String,
        result: &'a Result<(), String>,
    },
}

/// Where the fleet was left.
#[derive(Debug, Default, serde::Serialize)]
pub struct RollingOutcome {
    /// Hosts the action ran on (whether or not they then passed the gate).
    pub acted: Vec<String>,
    /// Hosts that failed the action or the gate, with the reason.
    pub failed: Vec<(String, String)>,
    /// Hosts of batches never started.
    pub untouched: Vec<String>,
    /// The 1-based batch after which the rollout stopped, if it stopped.
    pub stopped_after_batch: Option<usize>,
    pub interrupted: bool,
    /// The proxy tier could not be updated: nothing more was acted on.
    pub proxy_failed: Option<String>,
}

impl RollingAction<'_> {
    /// Runs batch by batch over `fleet`'s hosts; `on` hears every batch
    /// start and host outcome. With `proxy`, each batch leaves the
    /// upstreams first and comes back after its gate (a rollout's drain).
    pub async fn run(
        &self,
        fleet: &Supervised,
        mut proxy: Option<&mut ProxyDrain>,
        interrupt: &Interrupt,
        on: &mut dyn FnMut(RollingEvent),
    ) -> RollingOutcome {
        let total_hosts = self.plan.batches.iter().map(|b| b.hosts.len()).sum();
        let mut budget = FailureBudget::new(self.max_fail, total_hosts);
        let mut outcome = RollingOutcome::default();
        let total = self.plan.batches.len();
        let all_untouched = |from: usize| -> Vec<String> {
            self.plan.batches[from..]
                .iter()
                .flat_map(|b| b.hosts.iter().cloned())
                .collect()
        };
        if let Some(p) = proxy.as_deref_mut() {
            let result = p.settle().await;
            on(RollingEvent::Proxy {
                what: format!("upstreams of \"{}\" as they stand", p.play),
                result: &result,
            });
            if let Err(e) = result {
                outcome.proxy_failed = Some(e);
                outcome.untouched = all_untouched(0);
                return outcome;
            }
        }
        for (index, batch) in self.plan.batches.iter().enumerate() {
            on(RollingEvent::BatchStart {
                index: index + 1,
                total,
                hosts: &batch.hosts,
            });
            let drained: Vec<String> = match proxy.as_deref() {
                Some(p) => batch
                    .hosts
                    .iter()
                    .filter(|h| p.balances(h))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            if let Some(p) = proxy.as_deref_mut().filter(|_| !drained.is_empty()) {
                let result = p.drain(&drained).await;
                on(RollingEvent::Proxy {
                    what: format!("drained {}", drained.join(", ")),
                    result: &result,
                });
                if let Err(e) = result {
                    // Nothing of this batch was acted on: a host still in
                    // the upstreams must not go down.
                    outcome.proxy_failed = Some(e);
                    outcome.stopped_after_batch = Some(index);
                    outcome.untouched = all_untouched(index);
                    return outcome;
                }
                let until = tokio::time::Instant::now() + p.drain_timeout();
                while tokio::time::Instant::now() < until && !interrupt.is_set() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let results = fleet
                .forks()
                .all(batch.hosts.iter().map(|name| self.on_host(fleet, name)))
                .await;
            for (name, result) in batch.hosts.iter().zip(&results) {
                on(RollingEvent::Host { host: name, result });
                outcome.acted.push(name.clone());
                if let Err(reason) = result {
                    budget.fail(name);
                    outcome.failed.push((name.clone(), reason.clone()));
                }
            }
            if let Some(p) = proxy.as_deref_mut().filter(|_| !drained.is_empty()) {
                // A stopped program has nothing to serve: it stays out.
                let healthy = |name: &str| {
                    self.action != Action::Stop
                        && batch
                            .hosts
                            .iter()
                            .zip(&results)
                            .any(|(h, r)| h == name && r.is_ok())
                };
                let result = p.restore(&drained, &healthy).await;
                let back: Vec<&str> = drained
                    .iter()
                    .map(String::as_str)
                    .filter(|h| healthy(h))
                    .collect();
                on(RollingEvent::Proxy {
                    what: if back.is_empty() {
                        "none back in service".to_owned()
                    } else {
                        format!("back in service: {}", back.join(", "))
                    },
                    result: &result,
                });
                if let Err(e) = result {
                    outcome.proxy_failed = Some(e);
                    outcome.stopped_after_batch = Some(index + 1);
                    outcome.untouched = all_untouched(index + 1);
                    return outcome;
                }
            }
            let last = index + 1 == total;
            let stop = budget.exceeded() || interrupt.is_set();
            if stop && !last {
                outcome.stopped_after_batch = Some(index + 1);
                outcome.interrupted = interrupt.is_set() && !budget.exceeded();
                outcome.untouched = all_untouched(index + 1);
                break;
            }
            if !last && !self.pause.is_zero() {
                // Ctrl-C ends the wait as it does the drain's: the next
                // batch is not started (a plain sleep made the operator sit
                // out the whole pause and then started it anyway).
                let until = tokio::time::Instant::now() + self.pause;
                while tokio::time::Instant::now() < until && !interrupt.is_set() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if interrupt.is_set() {
                    outcome.stopped_after_batch = Some(index + 1);
                    outcome.interrupted = true;
                    outcome.untouched = all_untouched(index + 1);
                    break;
                }
            }
        }
        outcome
    }

    /// Acts on one host, then waits for its gate.
    async fn on_host(&self, fleet: &Supervised, name: &str) -> Result<String, String> {
        let host = fleet
            .hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| format!("{name} is not connected"))?;
        let said = host.act(self.action, self.program).await?;
        let Some((gate, targets)) = self.health.as_ref().filter(|_| self.action.is_gated()) else {
            return Ok(said);
        };
        let Some(target) = targets.get(name) else {
            return Ok(said);
        };
        let took = gate
            .wait(target, host.connection())
            .await
            .map_err(|e| format!("{} but unhealthy: {e}", self.action.done()))?;
        Ok(format!("{said}; healthy after {:.1}s", took.as_secs_f64()))
    }
}
