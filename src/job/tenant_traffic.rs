//! Traffic follows the work: a job whose play has a proxy section with
//! `tenants` publishes its targets' states as the proxy's tenant map. A
//! group's tenants go to maintenance before its first target starts; when
//! the group has ended, the tenants it converted go to the new pool and
//! those that failed back to the old one (a converter that fails must
//! leave the tenant's data as the old version reads it, as a transaction
//! does; `convoy job resume --retry-failed` converts them again).
//!
//! The map is made from the targets' host-side records as this run knows
//! them (read at the start, then each target's own record when it ends),
//! never from what the run meant to do: a resumed run, or one after a
//! controller that died between a group's end and its publish, publishes
//! what the hosts recorded. One publish is one apply of the proxy tier
//! (validate, install, reload; the previous files kept when the proxy
//! refuses), and one publish serves a group's end and the next group's
//! start when no pause lies between them: a proxy reloads at most once per
//! group, plus once at the end, however many targets end together.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook};
use crate::proxy::{FleetState, ProxyTier, StandaloneTier};
use crate::run::RunOptions;
use crate::template::Templates;
use crate::traffic::TrafficState;
use crate::traffic::tenants::{TenantState, invalid_name};
use crate::vars::VarMap;

use super::progress::JobReporter;
use super::state::TargetState;

/// Each target's state as a run knows it, by (host index, target).
pub type Known = BTreeMap<(usize, String), TargetState>;

/// The proxy tier of a job's play, connected, and the map it serves.
pub struct TenantTraffic {
    tier: ProxyTier,
    templates: Templates,
    vars: HashMap<String, VarMap>,
    state: FleetState,
    /// Publishes that changed the proxy's files (each one reload).
    pub reloads: usize,
}

/// The hosts a job's proxy routes to: its pools' (the job's own hosts
/// are where it works, not what the proxy serves), in pool order. A
/// pattern that selects nothing adds none ([`check_pools`] says so).
///
/// [`check_pools`]: crate::traffic::spec::check_pools
pub fn pool_hosts<'i>(
    traffic: &crate::traffic::TrafficSpec,
    inventory: &'i Inventory,
) -> Vec<&'i crate::inventory::Host> {
    let mut hosts = Vec::new();
    for p in &traffic.pools {
        hosts.extend(inventory.select(&p.hosts).unwrap_or_default());
    }
    hosts
}

/// A tenant's state from its targets' records (one per host that has it):
/// in progress while any runs, done once every one is done or skipped,
/// pending otherwise (not started, failed or lost somewhere).
pub fn tenant_state(states: impl IntoIterator<Item = TargetState>) -> TenantState {
    let mut all_done = true;
    for s in states {
        match s {
            TargetState::Running => return TenantState::InProgress,
            TargetState::Done | TargetState::Skipped => {}
            TargetState::Pending | TargetState::Failed | TargetState::Lost => all_done = false,
        }
    }
    if all_done {
        TenantState::Done
    } else {
        TenantState::Pending
    }
}

impl TenantTraffic {
    /// The tier of `play`'s proxy section when it routes tenants (`None`
    /// otherwise): pools checked, every file rendered for every proxy host,
    /// then connected, and the map as the proxy hosts record it read (a
    /// record that cannot be used is an error: no target has started).
    pub async fn open(
        playbook: &Playbook,
        play: &Play,
        inventory: &Inventory,
        options: &RunOptions,
        control_dir: &Path,
    ) -> Result<Option<TenantTraffic>, Error> {
        let Some(spec) = play
            .proxy
            .as_ref()
            .filter(|p| p.traffic.as_ref().is_some_and(|t| t.tenants.is_some()))
        else {
            return Ok(None);
        };
        let traffic = spec.traffic.as_ref().expect("filtered above");
        // The pools are the app's hosts, not the job's: each pool must
        // select hosts, none in both, and none need be a host of the play.
        let pool_hosts = pool_hosts(traffic, inventory);
        let problems = crate::traffic::spec::check_pools(traffic, inventory, &pool_hosts);
        if let Some(problem) = problems.into_iter().next() {
            return Err(problem);
        }
        let mut state =
            FleetState::in_service(inventory, pool_hosts.iter().map(|h| h.name.as_str()));
        state.traffic = TrafficState::of_section(spec, inventory);
        let StandaloneTier {
            tier,
            templates,
            vars,
        } = StandaloneTier::open(
            playbook,
            play,
            spec,
            inventory,
            options,
            control_dir,
            &state,
        )
        .await?;
        let mut opened = TenantTraffic {
            tier,
            templates,
            vars,
            state,
            reloads: 0,
        };
        if let Err(e) = opened.read().await {
            opened.tier.close().await;
            return Err(Error::Usage(e));
        }
        Ok(Some(opened))
    }

    async fn read(&mut self) -> Result<(), String> {
        let vars = &self.vars;
        let vars_for = |host: &str| vars.get(host).cloned().unwrap_or_default();
        let records = self
            .tier
            .read_records(&vars_for)
            .await
            .map_err(|e| e.to_string())?;
        let declared = self.state.traffic.clone().expect("tenants");
        self.state.traffic = Some(crate::traffic::record::agreed(&declared, records)?);
        Ok(())
    }

    /// The first target whose name cannot be a tenant in the proxy config
    /// (targets of a `targets_command` are known only now), as an error.
    pub fn check_targets<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        for t in targets {
            if let Some(why) = invalid_name(t) {
                return Err(Error::Usage(format!(
                    "the job's target {t:?} cannot be published to the proxy's tenant map: {why}; no target was started"
                )));
            }
        }
        Ok(())
    }

    /// `done 6, in progress 6, pending 18` as published last.
    pub fn summary(&self) -> String {
        self.map().map(|m| m.summary()).unwrap_or_default()
    }

    fn map(&self) -> Option<&crate::traffic::tenants::TenantMap> {
        self.state.traffic.as_ref().and_then(|t| t.tenants.as_ref())
    }

    /// Sets each tenant's state and brings the proxy tier to the map in
    /// one apply. `Err` with the proxy's message: the proxy hosts that
    /// refused keep serving the map before, which this keeps as the one
    /// published.
    async fn publish(
        &mut self,
        states: impl IntoIterator<Item = (String, TenantState)>,
    ) -> Result<String, String> {
        let before = self.state.traffic.clone();
        if let Some(map) = self.state.traffic.as_mut().and_then(|t| t.tenants.as_mut()) {
            for (name, s) in states {
                map.states.insert(name, s);
            }
        }
        let vars = &self.vars;
        let vars_for = |host: &str| vars.get(host).cloned().unwrap_or_default();
        match self
            .tier
            .apply(&self.templates, &vars_for, &self.state)
            .await
        {
            Ok(report) => {
                if report.hosts.values().any(|c| c.reloaded) {
                    self.reloads += 1;
                }
                Ok(report
                    .hosts
                    .iter()
                    .map(|(h, c)| format!("{h}: {c}"))
                    .collect::<Vec<_>>()
                    .join("; "))
            }
            Err(e) => {
                self.state.traffic = before;
                Err(e.to_string())
            }
        }
    }

    /// Publishes the map made of `known` (each tenant from its targets on
    /// every host) in one apply, saying so before and after; `false` when
    /// the proxy refused it (it keeps the map before).
    pub async fn publish_known(
        &mut self,
        known: &Known,
        why: &str,
        reporter: &JobReporter,
    ) -> bool {
        let mut by_name: indexmap::IndexMap<&str, Vec<TargetState>> = indexmap::IndexMap::new();
        for ((_, target), state) in known {
            by_name.entry(target.as_str()).or_default().push(*state);
        }
        let states: Vec<(String, TenantState)> = by_name
            .into_iter()
            .map(|(name, states)| (name.to_owned(), tenant_state(states)))
            .collect();
        reporter.note(format!("tenants: publishing ({why})"));
        match self.publish(states).await {
            Ok(changes) => {
                reporter.note(format!(
                    "tenants: published ({why}): {}; {changes}",
                    self.summary()
                ));
                true
            }
            Err(e) => {
                reporter.note(format!(
                    "tenants: publishing ({why}) failed; the proxy keeps the map before ({}); no further group starts: {e}",
                    self.summary()
                ));
                false
            }
        }
    }

    pub async fn close(self) {
        self.tier.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_is_done_only_when_every_host_converted_it() {
        use TargetState::*;
        assert_eq!(tenant_state([Done, Skipped]), TenantState::Done);
        assert_eq!(tenant_state([Done, Running]), TenantState::InProgress);
        assert_eq!(tenant_state([Done, Failed]), TenantState::Pending);
        assert_eq!(tenant_state([Pending]), TenantState::Pending);
        assert_eq!(tenant_state([Lost, Running]), TenantState::InProgress);
    }
}
