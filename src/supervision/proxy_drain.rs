//! A rolling restart behind a play's proxy tier (`convoy restart
//! --proxy-from PLAYBOOK`): each batch leaves the upstreams before its
//! program restarts and comes back once its health gate passed, as a
//! rollout's switch does, so no request is sent to a host while it is down.
//!
//! It is the same proxy tier a run uses (render, validate, install,
//! reload, restore on failure): the play's `proxy:` files rendered from the
//! fleet's state, with every app host's version unknown (as `convoy render`
//! shows it), since a restart changes no release.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Playbook, ProxySpec};
use crate::proxy::{FleetState, ProxyTier, StandaloneTier};
use crate::run::RunOptions;
use crate::template::Templates;
use crate::vars::VarMap;

/// The proxy tier of one play, connected, and the app fleet as it sees it.
pub struct ProxyDrain {
    /// The play whose `proxy:` section this is, for messages.
    pub play: String,
    spec: ProxySpec,
    tier: ProxyTier,
    templates: Templates,
    /// Each proxy host's base variables, computed once.
    vars: HashMap<String, VarMap>,
    state: FleetState,
}

impl ProxyDrain {
    /// The first play of `path` with a `proxy:` section, every proxy file
    /// rendered for every proxy host (a template error is bad input, before
    /// any connection), then the proxy hosts connected.
    pub async fn open(
        path: &Path,
        inventory: &Inventory,
        options: &RunOptions,
        control_dir: &Path,
    ) -> Result<ProxyDrain, Error> {
        let playbook = Playbook::load(path)?;
        let Some(play) = playbook.plays.iter().find(|p| p.proxy.is_some()) else {
            return Err(Error::Usage(format!(
                "{} has no play with a `proxy` section to drain from",
                path.display()
            )));
        };
        let spec = play.proxy.clone().expect("found above");
        if spec.traffic.is_some() {
            // Draining renders the declared pools, not the ones the proxy
            // records as live: it could move traffic to the wrong pool.
            return Err(Error::Usage(format!(
                "{}: the proxy section has `pools`; draining hosts of a pooled play is not supported (deploy to the idle pool instead)",
                path.display()
            )));
        }
        let app_hosts = inventory
            .select(&play.hosts)
            .map_err(|source| Error::Pattern {
                source,
                span: Some(play.hosts_span.clone()),
            })?;
        let state = FleetState::in_service(inventory, app_hosts.iter().map(|h| h.name.as_str()));
        let StandaloneTier {
            tier,
            templates,
            vars,
        } = StandaloneTier::open(
            &playbook,
            play,
            &spec,
            inventory,
            options,
            control_dir,
            &state,
        )
        .await?;
        Ok(ProxyDrain {
            play: play.name.clone(),
            spec,
            tier,
            templates,
            vars,
            state,
        })
    }

    /// Whether `host` is one of the app hosts the proxy balances to (a
    /// host outside the play's `hosts:` is restarted without a drain).
    pub fn balances(&self, host: &str) -> bool {
        self.state.hosts.contains_key(host)
    }

    /// How long a drained batch waits for in-flight requests.
    pub fn drain_timeout(&self) -> Duration {
        self.spec.drain_timeout
    }

    /// The upstreams as they stand (every app host in service): a first
    /// apply, so that the drains that follow change only the batch.
    pub async fn settle(&mut self) -> Result<(), String> {
        self.apply().await
    }

    /// `hosts` leave the upstreams (in-flight requests finish).
    pub async fn drain(&mut self, hosts: &[String]) -> Result<(), String> {
        self.set(hosts, |h| h.draining = true);
        self.apply().await
    }

    /// `hosts` come back, each only if `healthy` says so (an unhealthy one
    /// stays out of the upstreams, as after a failed switch).
    pub async fn restore(
        &mut self,
        hosts: &[String],
        healthy: &dyn Fn(&str) -> bool,
    ) -> Result<(), String> {
        for name in hosts {
            let ok = healthy(name);
            self.set(std::slice::from_ref(name), |h| {
                h.draining = false;
                h.in_service = ok;
            });
        }
        self.apply().await
    }

    pub async fn close(self) {
        self.tier.close().await;
    }

    fn set(&mut self, hosts: &[String], change: impl Fn(&mut crate::proxy::AppHost)) {
        for name in hosts {
            if let Some(app) = self.state.hosts.get_mut(name) {
                change(app);
            }
        }
    }

    async fn apply(&mut self) -> Result<(), String> {
        let vars = &self.vars;
        let vars_for = |host: &str| vars.get(host).cloned().unwrap_or_default();
        self.tier
            .apply(&self.templates, &vars_for, &self.state)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
