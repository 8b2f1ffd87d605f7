//! `convoy traffic PLAYBOOK [--to 10%|POOL]`: where traffic goes now, read
//! from the proxy hosts' records, and a move made by hand with the same
//! proxy tier a run uses (render every file first, then validate, install,
//! reload; the previous files restored on failure). No app host is touched.

use std::collections::HashMap;
use std::path::Path;

use super::{Step, TrafficState};
use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Playbook, ProxySpec};
use crate::proxy::{FleetState, ProxyTier, StandaloneTier};
use crate::run::RunOptions;
use crate::template::Templates;
use crate::vars::VarMap;

/// Where `--to` sends the traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// This share of requests to the idle pool, the rest to the live one
    /// (100% makes it live).
    Share(u8),
    /// Every request to this pool, which becomes live.
    Pool(String),
}

impl Destination {
    pub fn parse(text: &str) -> Result<Destination, String> {
        if text.trim_end().ends_with('%') {
            match super::spec::parse_step(&serde_json::json!(text)) {
                Ok(Step::Share(s)) => Ok(Destination::Share(s)),
                _ => Err(format!("--to {text}: a share is 1% to 100%")),
            }
        } else {
            Ok(Destination::Pool(text.to_owned()))
        }
    }
}

/// The proxy tier of the first play with pools, connected.
pub struct TrafficControl {
    pub play: String,
    tier: ProxyTier,
    templates: Templates,
    vars: HashMap<String, VarMap>,
    pub state: FleetState,
}

impl TrafficControl {
    pub async fn open(
        path: &Path,
        inventory: &Inventory,
        options: &RunOptions,
        control_dir: &Path,
    ) -> Result<TrafficControl, Error> {
        let playbook = Playbook::load(path)?;
        let Some(play) = playbook
            .plays
            .iter()
            .find(|p| p.proxy.as_ref().is_some_and(|s| s.traffic.is_some()))
        else {
            return Err(Error::Usage(format!(
                "{} has no play whose `proxy` section has `pools`",
                path.display()
            )));
        };
        let spec: ProxySpec = play.proxy.clone().expect("found above");
        let traffic = spec.traffic.as_ref().expect("found above");
        let app_hosts = match &play.job {
            // A job's proxy routes to its pools, not to the hosts it works on.
            Some(_) => crate::job::tenant_traffic::pool_hosts(traffic, inventory),
            None => inventory
                .select(&play.hosts)
                .map_err(|source| Error::Pattern {
                    source,
                    span: Some(play.hosts_span.clone()),
                })?,
        };
        let problems = super::spec::check_pools(traffic, inventory, &app_hosts);
        if let Some(problem) = problems.into_iter().next() {
            return Err(problem);
        }
        let mut state =
            FleetState::in_service(inventory, app_hosts.iter().map(|h| h.name.as_str()));
        state.set_section(&spec, inventory);
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
        let mut control = TrafficControl {
            play: play.name.clone(),
            tier,
            templates,
            vars,
            state,
        };
        if let Err(e) = control.read().await {
            control.tier.close().await;
            return Err(Error::Usage(e));
        }
        Ok(control)
    }

    /// Where traffic goes now, as the proxy hosts record it.
    pub fn traffic(&self) -> &TrafficState {
        self.state.traffic.as_ref().expect("pools")
    }

    async fn read(&mut self) -> Result<(), String> {
        let vars = &self.vars;
        let vars_for = |host: &str| vars.get(host).cloned().unwrap_or_default();
        let records = self
            .tier
            .read_records(&vars_for)
            .await
            .map_err(|e| e.to_string())?;
        let declared = self.traffic().clone();
        self.state.traffic = Some(crate::traffic::record::agreed(&declared, records)?);
        Ok(())
    }

    /// Why `to` cannot be done, before anything is touched: a pool the
    /// play does not declare, or one that runs no release convoy deployed.
    pub fn refuse(&self, to: &Destination) -> Option<String> {
        let t = self.traffic();
        if t.tenants.is_some() {
            return Some(
                "this play routes requests by tenant: each tenant goes where its job publishes it (`convoy job run`), not where --to sends it; nothing was changed".into(),
            );
        }
        let (pool, what) = match to {
            Destination::Pool(pool) => (pool.clone(), format!("--to {pool}")),
            Destination::Share(share) => (t.idle().to_owned(), format!("--to {share}%")),
        };
        match t.pools.get(&pool) {
            None => {
                let names: Vec<&str> = t.pools.keys().map(String::as_str).collect();
                Some(format!(
                    "{what}: no such pool (the play has {})",
                    names.join(", ")
                ))
            }
            Some(p) if p.version.is_none() => Some(format!(
                "{what}: pool {pool} runs no release convoy deployed; nothing was changed"
            )),
            Some(_) => None,
        }
    }

    /// Moves the traffic to `to` (checked by [`Self::refuse`]) in one
    /// apply; `Err` with the proxy tier's message (hosts that refused keep
    /// their previous files).
    pub async fn set(&mut self, to: &Destination) -> Result<String, String> {
        let before = self.traffic().clone();
        let mut after = before.clone();
        match to {
            Destination::Pool(pool) => after.switch_to(pool),
            Destination::Share(share) => {
                let idle = before.idle().to_owned();
                after.set_share(&idle, *share);
            }
        }
        self.state.traffic = Some(after);
        let vars = &self.vars;
        let vars_for = |host: &str| vars.get(host).cloned().unwrap_or_default();
        match self
            .tier
            .apply(&self.templates, &vars_for, &self.state)
            .await
        {
            Ok(report) => Ok(report
                .hosts
                .iter()
                .map(|(h, c)| format!("{h}: {c}"))
                .collect::<Vec<_>>()
                .join("\n")),
            Err(e) => {
                self.state.traffic = Some(before);
                Err(e.to_string())
            }
        }
    }

    pub async fn close(self) {
        self.tier.close().await;
    }
}
