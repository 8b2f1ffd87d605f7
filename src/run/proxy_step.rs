//! The proxy tier during a run: connected once per play, brought to the
//! fleet's state at each step of the rollout (before the first batch, a
//! batch leaving the upstreams when `drain` is on, the batch returning with
//! its new version), and reported like a task.

use super::context::PlayScope;
use super::preflight;
use super::{HostState, Runner};
use crate::playbook::{Play, ProxySpec};
use crate::proxy::{FleetState, ProxyError, ProxyTier};
use crate::report::{Event, HostResult, Status};
use crate::vars::VarMap;

/// The base variables of a proxy host ([`preflight::proxy_host_context`]),
/// so that `convoy render` and a run agree.
pub fn vars_for<'a>(
    runner: &'a Runner<'a>,
    scope: &'a PlayScope,
    play_name: &'a str,
) -> impl Fn(&str) -> VarMap + 'a {
    move |host: &str| {
        preflight::proxy_host_context(
            scope,
            runner.inventory,
            runner.playbook,
            runner.options,
            host,
            play_name,
        )
    }
}

/// A play's proxy tier and the fleet state its files are rendered from.
pub struct ProxyRun {
    spec: ProxySpec,
    play_name: String,
    scope: PlayScope,
    tier: ProxyTier,
    pub state: FleetState,
    /// An update failed during this play (each fails the run).
    failed: bool,
}

impl ProxyRun {
    /// Connects the proxy hosts; `app_hosts` are the play's hosts in order.
    pub async fn open(
        runner: &Runner<'_>,
        play: &Play,
        scope: &PlayScope,
        spec: &ProxySpec,
        app_hosts: &[&mut HostState],
    ) -> Result<ProxyRun, ProxyError> {
        let mut state =
            FleetState::in_service(runner.inventory, app_hosts.iter().map(|h| h.name.as_str()));
        for h in app_hosts {
            if let Some(app) = state.hosts.get_mut(&h.name) {
                app.version = h.running();
                app.in_service = h.active();
            }
        }
        state.set_section(spec, runner.inventory);
        let vars = vars_for(runner, scope, &play.name);
        let tier = ProxyTier::connect(
            spec,
            runner.inventory,
            runner.options,
            &runner.control_dir,
            &vars,
        )
        .await?;
        Ok(ProxyRun {
            spec: spec.clone(),
            play_name: play.name.clone(),
            scope: scope.clone(),
            tier,
            state,
            failed: false,
        })
    }

    pub fn maintenance_during_migrations(&self) -> bool {
        self.spec.maintenance_during_migrations
    }

    pub fn drains(&self) -> bool {
        self.spec.drain
    }

    pub fn drain_timeout(&self) -> std::time::Duration {
        self.spec.drain_timeout
    }

    /// Reads where traffic goes now from the proxy hosts' records onto
    /// [`FleetState::traffic`]; hosts without a record keep the declared
    /// state. Records that disagree are an error naming the hosts.
    pub async fn read_traffic(&mut self, runner: &Runner<'_>) -> Result<(), String> {
        let Some(declared) = self.state.traffic.clone() else {
            return Ok(());
        };
        let vars = vars_for(runner, &self.scope, &self.play_name);
        let records = self
            .tier
            .read_records(&vars)
            .await
            .map_err(|e| e.to_string())?;
        self.state.traffic = Some(crate::traffic::record::agreed(&declared, records)?);
        Ok(())
    }

    /// Updates the state of some app hosts.
    pub fn set(&mut self, hosts: &[String], change: impl Fn(&mut crate::proxy::AppHost)) {
        for h in hosts {
            if let Some(app) = self.state.hosts.get_mut(h) {
                change(app);
            }
        }
    }

    /// Brings every proxy host to the current state; reports it under
    /// `label`. `false` when a proxy host failed (its previous files stay).
    pub async fn apply(&mut self, runner: &Runner<'_>, label: &str) -> bool {
        let started = std::time::Instant::now();
        let vars = vars_for(runner, &self.scope, &self.play_name);
        let hosts: Vec<String> =
            crate::proxy::proxy_hosts(&self.spec, runner.inventory).unwrap_or_default();
        runner.reporter.send(Event::TaskStart {
            task: label.to_owned(),
            hosts: hosts.len(),
            handler: false,
        });
        let send_diffs = |host: &str, status: Status, msg: String, diffs| {
            runner.reporter.send(Event::HostResult(Box::new(HostResult {
                host: host.to_owned(),
                delegated_to: None,
                task: label.to_owned(),
                status,
                msg: Some(msg),
                item: None,
                duration: started.elapsed(),
                diffs,
                ignored: false,
                output: None,
                rc: None,
            })));
        };
        let send = |host: &str, status: Status, msg: String| send_diffs(host, status, msg, vec![]);
        let status_of = |changed: bool| if changed { Status::Changed } else { Status::Ok };
        let result = if runner.options.check {
            // Check mode asks the proxy hosts and reports; it writes nothing.
            let diff = runner.options.diff;
            match self
                .tier
                .preview(&runner.templates, &vars, &self.state, diff)
                .await
            {
                Ok(previews) => {
                    for (host, preview) in previews {
                        let msg = preview.to_string();
                        send_diffs(
                            &host,
                            status_of(preview.changes.changed()),
                            msg,
                            preview.diffs,
                        );
                    }
                    return true;
                }
                Err(e) => Err(e),
            }
        } else {
            self.tier.apply(&runner.templates, &vars, &self.state).await
        };
        match result {
            Ok(report) => {
                for (host, changes) in &report.hosts {
                    send(host, status_of(changes.changed()), changes.to_string());
                }
                true
            }
            Err(e) => {
                let named = e.hosts();
                let first = e.to_string().lines().next().unwrap_or_default().to_owned();
                // An error about the playbook itself concerns every proxy host.
                let failed: Vec<(&str, String)> = if named.is_empty() {
                    hosts.iter().map(|h| (h.as_str(), first.clone())).collect()
                } else {
                    named
                };
                for (host, message) in failed {
                    send(host, Status::Failed, message);
                }
                runner.reporter.send(Event::Note {
                    message: format!("proxy update failed: {e}"),
                });
                self.failed = true;
                false
            }
        }
    }

    /// A step of the run failed on the proxy tier without an apply
    /// failing (a traffic gate): the run fails like a failed update.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Runs on each proxy host the script `script_for` builds from the
    /// host's name, its variables and its manifest path, all in parallel
    /// (one round trip each); each host's output, or the first host that
    /// could not be asked.
    pub async fn exec_each(
        &self,
        runner: &Runner<'_>,
        script_for: impl Fn(&str, &VarMap, &str) -> Result<crate::transport::ShellScript, String>,
    ) -> Result<indexmap::IndexMap<String, crate::transport::ExecOutput>, String> {
        let vars = vars_for(runner, &self.scope, &self.play_name);
        let hosts = crate::proxy::proxy_hosts(&self.spec, runner.inventory).unwrap_or_default();
        let mut scripts = indexmap::IndexMap::new();
        for host in hosts {
            let v = vars(&host);
            let manifest = crate::proxy::manifest_path(&v, &self.play_name);
            let script = script_for(&host, &v, &manifest)?;
            scripts.insert(host, script);
        }
        let mut outputs = indexmap::IndexMap::new();
        for (host, out) in self.tier.exec_each(&scripts).await {
            outputs.insert(host, out.map_err(|e| e.to_string())?);
        }
        Ok(outputs)
    }

    /// Closes the proxy connections; whether an update failed.
    pub async fn close(self) -> bool {
        self.tier.close().await;
        self.failed
    }
}
