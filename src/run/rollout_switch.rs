//! The switch phase, batch by batch in rollout order: switch, switch hooks,
//! health gate; the failure budget is counted over the whole rollout, and
//! when it is exceeded `on_failure` decides: every host switched in this
//! run goes back (in reverse batch order), or all stay where they are.
//!
//! `convoy ctl` requests (pause, continue, stop, rollback) are read at the
//! same boundaries as `pause:`, so they too never cut a batch short.
//!
//! Ctrl-C starts no new batch: the batch in flight finishes its switch and
//! its health gate, and the hosts stay on the release they reached, so
//! `convoy run` again (or `convoy resume`) continues from there.

use std::time::Instant;

use super::batch_pause::{self, Decision};
use super::control::ControlOrder;
use super::health_gate;
use super::host_cycle::Switch;
use super::proxy_step::ProxyRun;
use super::step::{StepResult, hooks, record, step, transport_failure};
use super::switch_hooks::SwitchHooks;
use super::task_runner::Scope;
use super::{HostState, Runner};
use crate::distribution::{ReleasePlan, remote};
use crate::playbook::{OnFailure, Play, RolloutSpec};
use crate::report::Event;
use crate::report::Status;
use crate::rollout::{FailureBudget, RolloutPlan};
use crate::run::context::as_value;

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Stopped before all batches (interrupt, budget, operator).
    Stopped,
    /// The budget was exceeded and the switched hosts went back.
    RolledBack,
    /// The rollback could not return every host (they are named in a note).
    RollbackIncomplete,
}

pub struct SwitchRun<'a, 'r> {
    pub runner: &'a Runner<'r>,
    pub scope: &'a Scope<'a>,
    pub play: &'a Play,
    /// What the step is called in output ("switch shop 2.0", "rollback").
    pub label: String,
    /// Roll back when the budget is exceeded (never while rolling back).
    pub may_roll_back: bool,
    /// The play's proxy tier, kept in step with the fleet.
    pub proxy: Option<&'a tokio::sync::Mutex<ProxyRun>>,
    /// When the switch is each host's last step in the run (see
    /// [`UnlockWithSwitch`]): the deploy lock's release rides along.
    pub unlock: Option<&'a UnlockWithSwitch>,
}

/// The release of a host's deploy lock, sent in the same round trip as its
/// switch (and its hooks) instead of one of its own at the run's end. Only
/// for a switch after which the run does nothing more on the host (a
/// `convoy rollback` without a health gate or a proxy tier), and run on the
/// host only when `current` moved and every hook exited 0; otherwise the
/// host keeps the lock until the run's end releases it as usual.
pub struct UnlockWithSwitch {
    pub holder: crate::distribution::lock::Holder,
    /// The host's audit line: its part of the run completed.
    pub audit: String,
}

impl SwitchRun<'_, '_> {
    /// Switches the hosts that take part in the cycle to their plans'
    /// versions, batch by batch.
    pub async fn run(&self, hosts: &mut Vec<&mut HostState>) -> Outcome {
        let runner = self.runner;
        let default = RolloutSpec::default();
        let spec = self.play.rollout.as_ref().unwrap_or(&default);
        let built = rollout_plan(runner, spec, hosts);
        // A resumed run keeps the interrupted run's batches and skips those it finished.
        let resumed = runner
            .options
            .resume
            .as_ref()
            .and_then(|r| r.plays.get(&self.play.name));
        let (plan, done) = match resumed {
            Some(r) if self.may_roll_back => (r.plan.clone(), r.batches_done),
            _ => (built, 0),
        };
        runner.reporter.send(Event::RolloutPlanned {
            play: self.play.name.clone(),
            plan: plan.clone(),
        });
        let mut budget = FailureBudget::new(spec.max_fail, hosts.len());
        // Hosts that could not even be prepared count against the budget too.
        for h in hosts.iter().filter(|h| !h.active()) {
            budget.fail(&h.name);
        }
        if self.play.rollout.is_some() {
            let seed = plan
                .seed
                .map(|s| format!(", shuffle seed {s}"))
                .unwrap_or_default();
            let sizes: Vec<String> = plan
                .batches
                .iter()
                .map(|b| b.hosts.len().to_string())
                .collect();
            self.note(format!(
                "{}: {} batch(es) of {} host(s){seed}; failure budget {} host(s)",
                self.label,
                plan.batches.len(),
                sizes.join("+"),
                budget.allowed()
            ));
        }
        let total = plan.batches.len();
        let done = done.min(total);
        if done > 0 {
            self.note(format!(
                "resuming: batches 1-{done} of {total} finished in the interrupted run"
            ));
        }
        if let Some(p) = self.proxy {
            let mut p = p.lock().await;
            for h in hosts.iter() {
                p.set(std::slice::from_ref(&h.name), |a| {
                    a.version = h.running();
                    a.in_service = h.active();
                });
            }
        }
        if !self.proxy_step("proxy", &[], |_| {}).await {
            self.note("the proxy tier could not be updated: no host was switched".into());
            return Outcome::Stopped;
        }
        for (index, batch) in plan.batches.iter().enumerate().skip(done) {
            if budget.exceeded() {
                return self.fail(spec, &budget, hosts).await;
            }
            if runner.interrupt.is_set() {
                self.note(format!(
                    "interrupted: batch {}/{total} and later were not started",
                    index + 1
                ));
                return Outcome::Stopped;
            }
            let mut decision = if index > done {
                batch_pause::between(runner, &spec.pause, index, total, true).await
            } else {
                Decision::Continue
            };
            if decision != Decision::Continue {
                runner.control.halt();
            } else {
                // `convoy ctl`: the batch before has settled; nothing is in flight.
                let rollback = self
                    .may_roll_back
                    .then_some("every host switched in this run goes back, last batch first");
                decision = match runner
                    .control
                    .boundary(index, total, rollback, &runner.interrupt)
                    .await
                {
                    ControlOrder::Go => Decision::Continue,
                    ControlOrder::Stop => Decision::Stop,
                    ControlOrder::RollBack => Decision::RollBack,
                };
            }
            match decision {
                Decision::Continue => {}
                Decision::Stop => {
                    self.note("stopped by the operator".into());
                    return Outcome::Stopped;
                }
                Decision::RollBack => return self.roll_back(hosts).await,
            }
            if runner.interrupt.is_set() {
                self.note(format!(
                    "interrupted: batch {}/{total} and later were not started",
                    index + 1
                ));
                return Outcome::Stopped;
            }
            runner.reporter.send(Event::BatchStart {
                index: index + 1,
                total,
                hosts: batch.hosts.clone(),
                canary: batch.canary,
            });
            if self.drains() {
                let label = format!("proxy: drain batch {}/{total}", index + 1);
                if !self
                    .proxy_step(&label, &batch.hosts, |h| h.draining = true)
                    .await
                {
                    return self.fail(spec, &budget, hosts).await;
                }
                self.drain_wait().await;
            }
            let mut in_batch: Vec<&mut HostState> = hosts
                .iter_mut()
                .filter(|h| batch.hosts.contains(&h.name))
                .map(|h| &mut **h)
                .collect();
            self.switch_batch(&mut in_batch, Some(index)).await;
            if let Some(health) = &spec.health {
                self.health(health, &mut in_batch).await;
            }
            let failed: Vec<String> = in_batch
                .iter()
                .filter(|h| !h.active())
                .map(|h| h.name.clone())
                .collect();
            for h in &failed {
                budget.fail(h);
            }
            let back: Vec<(String, bool, Option<String>)> = in_batch
                .iter()
                .filter(|h| h.cycle.is_some())
                .map(|h| {
                    (
                        h.name.clone(),
                        h.active(),
                        h.plan().map(|p| p.version.clone()),
                    )
                })
                .collect();
            let label = format!("proxy: batch {}/{total} in service", index + 1);
            if !self.proxy_return(&label, &back).await {
                return self.fail(spec, &budget, hosts).await;
            }
            runner.reporter.send(Event::BatchEnd {
                play: self.play.name.clone(),
                index: index + 1,
                failed,
            });
        }
        if budget.exceeded() {
            return self.fail(spec, &budget, hosts).await;
        }
        Outcome::Completed
    }

    fn note(&self, message: String) {
        self.runner.reporter.send(Event::Note { message });
    }

    /// Switches `hosts` to their plans' versions; runs the switch hooks on
    /// those that changed. A forward switch (`batch` given) is recorded in
    /// each host's cycle; a switch back is not. Returns each host's switch
    /// result (changed: switched; ok: already there).
    async fn switch_batch(
        &self,
        hosts: &mut Vec<&mut HostState>,
        batch: Option<usize>,
    ) -> Vec<(String, Status)> {
        let by = super::release_cycle::deployed_by();
        let magic = self
            .play
            .rollout
            .as_ref()
            .and_then(|r| r.magic_rollback)
            .filter(|_| self.may_roll_back);
        let by = &by;
        // A forward switch (or `convoy rollback`'s) runs plain switch hooks
        // in its own round trip; a switch back runs them as tasks (its
        // hosts' `release.previous` is only known once switched), and so
        // does a switch under a magic-rollback timer, whose confirmation
        // needs to know the switch happened even when the link drops
        // during a hook.
        let inline = batch
            .filter(|_| magic.is_none())
            .and_then(|_| SwitchHooks::of(self.runner, self.scope, self.play));
        let inline = inline.as_ref();
        let results = step(self.runner, &self.label, hosts, |host, plan| async move {
            // The host said, under this run's lock, that `current` already
            // names this release, and this run has not moved it since: the
            // switch would change nothing, so it costs no round trip.
            let live = host.cycle.as_ref().is_some_and(|c| {
                c.switched.is_none() && c.found_current() == Some(plan.version.as_str())
            });
            if live {
                return (host, StepResult::ok(format!("current is {}", plan.version)));
            }
            let arm = match magic.map(|d| self.arm(host, &plan, d)).transpose() {
                Ok(arm) => arm,
                Err(msg) => return (host, StepResult::failed(msg)),
            };
            let hook_lines = inline.map(|hooks| {
                // What the hooks see, as after the switch: the release the
                // host goes to, and the one it leaves (read under the lock).
                let leaving = host
                    .cycle
                    .as_ref()
                    .and_then(|c| c.found_current().map(str::to_owned));
                host.publish_release(leaving.as_deref());
                hooks.render(self.runner, self.scope, host)
            });
            let mark = host.cycle.as_mut().and_then(|c| c.lock_mark.take());
            let unlock = self.unlock.filter(|_| batch.is_some()).map(|u| {
                if let Some(cycle) = host.cycle.as_ref() {
                    cycle
                        .releasing
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                crate::distribution::lock::release_script(&plan.root, &u.holder, &u.audit)
            });
            let along = remote::Along {
                before: mark.as_ref(),
                hooks: hook_lines.as_ref().map_or(&[][..], |h| &h.lines),
                marker: inline.map_or("", |h| h.marker.as_str()),
                after: unlock.as_ref(),
            };
            let sudo = host.release_sudo();
            let conn = host.conn.as_ref().expect("connected by step");
            let result = match remote::switch(
                conn,
                &plan.root,
                &plan.version,
                by,
                arm.as_ref(),
                along,
                sudo.as_ref(),
            )
            .await
            {
                Err(e) => {
                    // With the hooks in the same command, the answer may
                    // have been lost after `current` moved: count the host
                    // as switched, so that a fleet rollback tries to bring
                    // it back (and says so if it cannot) rather than leave
                    // it on the new release unmentioned.
                    let hooked = hook_lines.as_ref().is_some_and(|h| !h.lines.is_empty());
                    if let (Some(cycle), Some(batch), true) = (host.cycle.as_mut(), batch, hooked) {
                        let from = cycle.found_current().map(str::to_owned);
                        cycle.switched = Some(Switch { batch, from });
                    }
                    transport_failure(host, e)
                }
                Ok(Err(msg)) => StepResult::failed(msg),
                Ok(Ok(s)) if !s.changed => StepResult::ok(format!("current is {}", plan.version)),
                Ok(Ok(s)) => {
                    if let Some(cycle) = host.cycle.as_mut() {
                        cycle.unlocked = s.released;
                    }
                    host.publish_release(s.previous.as_deref());
                    if let (Some(cycle), Some(lines)) = (host.cycle.as_mut(), &hook_lines) {
                        cycle.hooks = lines.outcomes(&s.hooks);
                    }
                    if let (Some(cycle), Some(batch)) = (host.cycle.as_mut(), batch) {
                        cycle.switched = Some(Switch {
                            batch,
                            from: s.previous.clone(),
                        });
                    }
                    let from = s.previous.as_deref().unwrap_or("(none)");
                    StepResult::changed(format!("current {from} -> {}", plan.version))
                }
            };
            (host, result)
        })
        .await;
        let switched: Vec<String> = results
            .iter()
            .filter(|(_, status)| *status == Status::Changed)
            .map(|(name, _)| name.clone())
            .collect();
        match inline {
            Some(inline) => inline.report(self.runner, self.scope, hosts, &switched),
            None => {
                hooks(
                    self.runner,
                    self.scope,
                    &self.play.hooks.switch,
                    hosts,
                    |h| switched.contains(&h.name),
                )
                .await
            }
        }
        if let Some(timeout) = magic {
            self.confirm_magic(hosts, &switched, timeout).await;
        }
        results
    }

    /// The magic-rollback timer for a host about to switch: if the host is
    /// not confirmed in time it goes back to the release it runs now and
    /// runs the switch hooks rendered for that release (`release.version`,
    /// `release.path` name it), so what the switch restarted runs the old
    /// code again. Load made sure the hooks are plain `shell`/`command`
    /// tasks; an error here is a template the host's variables cannot fill.
    fn arm(
        &self,
        host: &HostState,
        plan: &ReleasePlan,
        timeout: std::time::Duration,
    ) -> Result<remote::Arm, String> {
        let mut rollback_hooks = Vec::new();
        if let Some(back) = host.cycle.as_ref().and_then(|c| c.found_current()) {
            let mut ctx = self.scope.scope.context(host, &self.scope.vars);
            ctx.insert(
                "release".into(),
                serde_json::json!({
                    "version": back,
                    "path": format!("{}/releases/{back}", plan.root),
                    "previous": plan.version,
                }),
            );
            let vars = as_value(ctx);
            for task in &self.play.hooks.switch {
                let crate::playbook::TaskKind::Module { module, args, .. } = &task.kind else {
                    continue;
                };
                let origin = format!("magic rollback: {}", task.display_name());
                let args = self
                    .runner
                    .templates
                    .render_value(args, &vars, &origin)
                    .map_err(|e| format!("{origin}: {e}"))?;
                let line = crate::tasks::host_line(args, *module == "shell")
                    .map_err(|e| format!("{origin}: {e}"))?;
                rollback_hooks.push(line);
            }
        }
        Ok(remote::Arm {
            seconds: timeout.as_secs().max(1),
            token: format!("{}-{}", self.runner.options.run_id, host.name),
            rollback_hooks,
        })
    }

    /// Confirms each host this batch switched forward over a fresh,
    /// non-multiplexed connection; a host that cannot be reached switches
    /// itself back when its timer ends.
    async fn confirm_magic(
        &self,
        hosts: &mut [&mut HostState],
        switched: &[String],
        timeout: std::time::Duration,
    ) {
        let runner = self.runner;
        let run_id = &runner.options.run_id;
        let from = |h: &HostState| {
            h.cycle
                .as_ref()
                .and_then(|c| c.switched.as_ref())
                .and_then(|s| s.from.clone())
        };
        let targets: Vec<usize> = hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| switched.contains(&h.name) && from(h).is_some())
            .map(|(i, _)| i)
            .collect();
        if targets.is_empty() {
            return;
        }
        runner.reporter.send(Event::TaskStart {
            task: "confirm reachable (magic rollback)".into(),
            hosts: targets.len(),
            handler: false,
        });
        let results = runner
            .forks()
            .all(targets.iter().map(|&i| {
                let host = &hosts[i];
                async move {
                    let started = Instant::now();
                    let plan = host.plan()?;
                    let arm = remote::Arm {
                        seconds: 0,
                        token: format!("{run_id}-{}", host.name),
                        rollback_hooks: vec![],
                    };
                    let vars = super::task_runner::render_map(
                        runner,
                        &host.inventory_vars,
                        "magic rollback",
                    );
                    let confirm = arm.confirm_script(&plan.root);
                    let result = match super::connect::route(&host.name, &vars, runner.options) {
                        Ok(super::connect::Route::Ssh(target)) => {
                            let mut cmd = target.fresh_command(&confirm);
                            match tokio::time::timeout(timeout, cmd.output()).await {
                                Ok(Ok(out)) if out.status.success() => Ok(()),
                                Ok(Ok(out)) => {
                                    Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
                                }
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(_) => Err("no answer".into()),
                            }
                        }
                        Ok(super::connect::Route::Local) => match host.conn.as_ref() {
                            Some(conn) => conn
                                .exec(crate::transport::Script::new(&confirm))
                                .await
                                .map(drop)
                                .map_err(|e| e.to_string()),
                            None => Err("not connected".into()),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    Some((i, result, started))
                }
            }))
            .await;
        for (i, result, started) in results.into_iter().flatten() {
            let previous = from(hosts[i]).unwrap_or_default();
            let step_result = match result {
                Ok(()) => StepResult::ok("reachable over a fresh connection; timer disarmed"),
                Err(reason) => StepResult::failed(format!(
                    "not reachable over a fresh connection ({reason}): it switches itself back to {previous} within {}s",
                    timeout.as_secs()
                )),
            };
            record(runner, hosts[i], "confirm reachable", step_result, started);
        }
    }

    /// The health gate of one batch, on the hosts that take part and can
    /// still act (see [`health_gate::check`]).
    async fn health(&self, spec: &crate::playbook::HealthSpec, hosts: &mut Vec<&mut HostState>) {
        health_gate::check(self.runner, self.scope, spec, hosts, HostState::cycling).await;
    }

    /// The budget is exceeded: roll back or stop, as the play says.
    async fn fail(
        &self,
        spec: &RolloutSpec,
        budget: &FailureBudget,
        hosts: &mut Vec<&mut HostState>,
    ) -> Outcome {
        self.note(format!(
            "failure budget exceeded: {} host(s) failed ({}), {} allowed; no new batch starts",
            budget.failed().len(),
            budget.failed().join(", "),
            budget.allowed()
        ));
        if spec.on_failure == OnFailure::Rollback && self.may_roll_back {
            return self.roll_back(hosts).await;
        }
        let versions: Vec<String> = hosts
            .iter()
            .map(|h| {
                format!(
                    "{} on {}",
                    h.name,
                    h.running().unwrap_or_else(|| "no release".into())
                )
            })
            .collect();
        self.note(format!(
            "stopped; hosts stay where they are: {}",
            versions.join(", ")
        ));
        Outcome::Stopped
    }

    /// Every host switched forward in this run goes back to the release it
    /// left, last batch first, on the same path as forward: drained, switched,
    /// the switch hooks, the health gate, and back into service if healthy.
    async fn roll_back(&self, hosts: &mut Vec<&mut HostState>) -> Outcome {
        let forward: Vec<(String, Switch)> = hosts
            .iter()
            .filter_map(|h| {
                let s = h.cycle.as_ref()?.switched.clone()?;
                Some((h.name.clone(), s))
            })
            .collect();
        self.runner.reporter.send(Event::Rollback {
            play: self.play.name.clone(),
            hosts: forward.iter().map(|(h, _)| h.clone()).collect(),
        });
        let batches = forward
            .iter()
            .map(|(_, s)| s.batch)
            .max()
            .map_or(0, |m| m + 1);
        self.note(format!(
            "rolling back {} host(s) switched in this run, last batch first",
            forward.len()
        ));
        let mut stuck: Vec<String> = Vec::new();
        for batch in (0..batches).rev() {
            // The hosts of this batch that had a release before: their goal
            // is now the one they left.
            let back: Vec<String> = forward
                .iter()
                .filter(|(_, s)| s.batch == batch && s.from.is_some())
                .map(|(h, _)| h.clone())
                .collect();
            if back.is_empty() {
                continue;
            }
            let mut going: Vec<&mut HostState> = hosts
                .iter_mut()
                .filter(|h| back.contains(&h.name))
                .map(|h| &mut **h)
                .collect();
            for h in going.iter_mut() {
                if let Some(cycle) = h.cycle.as_mut()
                    && let Some(from) = cycle.switched.as_ref().and_then(|s| s.from.clone())
                {
                    cycle.plan.version = from;
                }
            }
            if self.drains() {
                self.proxy_step("proxy: drain rolled-back hosts", &back, |h| {
                    h.draining = true
                })
                .await;
                self.drain_wait().await;
            }
            // Failed hosts go back too: clear the mark for the step, then restore it.
            let failed: Vec<bool> = going.iter().map(|h| h.failed).collect();
            for h in going.iter_mut() {
                h.failed = false;
            }
            let rollback = SwitchRun {
                label: "rollback".into(),
                may_roll_back: false,
                unlock: None,
                ..self.clone_ref()
            };
            let results = rollback.switch_batch(&mut going, None).await;
            // Not back: its switch failed, or it could not even be tried.
            for name in &back {
                let back_on_old = results
                    .iter()
                    .any(|(n, s)| n == name && matches!(s, Status::Changed | Status::Ok));
                if !back_on_old {
                    stuck.push(name.clone());
                }
            }
            if let Some(health) = self.play.rollout.as_ref().and_then(|r| r.health.as_ref()) {
                rollback.health(health, &mut going).await;
            }
            // Only a host that passed the gate on its old release serves again.
            let restored: Vec<(String, bool, Option<String>)> = going
                .iter()
                .map(|h| {
                    (
                        h.name.clone(),
                        h.active(),
                        h.plan().map(|p| p.version.clone()),
                    )
                })
                .collect();
            for (h, was) in going.iter_mut().zip(failed) {
                h.failed |= was;
            }
            self.proxy_return("proxy: rolled-back hosts in service", &restored)
                .await;
        }
        for (host, _) in forward.iter().filter(|(_, s)| s.from.is_none()) {
            self.note(format!(
                "{host} had no previous release: it stays on the new one"
            ));
        }
        if !stuck.is_empty() {
            self.note(format!(
                "rollback incomplete: {} could not be switched back and still run the new release; `convoy rollback` once they are reachable",
                stuck.join(", ")
            ));
            return Outcome::RollbackIncomplete;
        }
        Outcome::RolledBack
    }

    fn drains(&self) -> bool {
        self.proxy
            .is_some_and(|p| p.try_lock().map(|p| p.drains()).unwrap_or(false))
    }

    /// Waits the proxy's drain timeout (Ctrl-C shortens it: the batch then
    /// switches at once, which is what was asked for).
    async fn drain_wait(&self) {
        let Some(p) = self.proxy else { return };
        let timeout = p.lock().await.drain_timeout();
        let until = Instant::now() + timeout;
        while Instant::now() < until && !self.runner.interrupt.is_set() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Changes some app hosts' state and brings the proxy tier to it.
    async fn proxy_step(
        &self,
        label: &str,
        hosts: &[String],
        change: impl Fn(&mut crate::proxy::AppHost),
    ) -> bool {
        let Some(p) = self.proxy else { return true };
        let mut p = p.lock().await;
        p.set(hosts, change);
        p.apply(self.runner, label).await
    }

    /// Hosts return to the upstreams (those still healthy) on their version.
    async fn proxy_return(&self, label: &str, hosts: &[(String, bool, Option<String>)]) -> bool {
        let Some(p) = self.proxy else { return true };
        let mut p = p.lock().await;
        for (name, healthy, version) in hosts {
            p.set(std::slice::from_ref(name), |h| {
                h.draining = false;
                h.in_service = *healthy;
                h.switched = true;
                h.version = version.clone();
            });
        }
        p.apply(self.runner, label).await
    }

    fn clone_ref(&self) -> SwitchRun<'_, '_> {
        SwitchRun {
            runner: self.runner,
            scope: self.scope,
            play: self.play,
            label: self.label.clone(),
            may_roll_back: self.may_roll_back,
            proxy: self.proxy,
            unlock: self.unlock,
        }
    }
}

/// The batches of a rollout over the active hosts that have a plan; the
/// same for a run and for its check.
pub(super) fn rollout_plan(
    runner: &Runner<'_>,
    spec: &RolloutSpec,
    hosts: &[&mut HostState],
) -> RolloutPlan {
    let names: Vec<String> = hosts
        .iter()
        .filter(|h| h.cycling())
        .map(|h| h.name.clone())
        .collect();
    let groups = runner.inventory.groups();
    RolloutPlan::build(spec, &names, &|g| {
        groups.get(g).cloned().unwrap_or_default()
    })
}
