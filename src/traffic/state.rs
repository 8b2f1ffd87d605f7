//! Where traffic goes at one moment: which pool is live and what share of
//! requests each pool gets, with the version each runs. The proxy templates
//! render from it; the proxy hosts record it ([`super::record`]).

use indexmap::IndexMap;
use serde_json::json;

use super::TrafficSpec;
use super::target::Target;
use super::tenants::TenantMap;
use crate::proxy::FleetState;
use crate::vars::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficState {
    pub live: String,
    /// Pool name -> what it gets and runs, in playbook order.
    pub pools: IndexMap<String, PoolState>,
    /// A targeted step: this pool gets these clients' or routes' requests
    /// (the shares then stay 100% on the live pool for the rest).
    pub target: Option<(String, Target)>,
    /// Where each tenant goes, when the section routes tenants.
    pub tenants: Option<TenantMap>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Percent of the requests; the pools' shares add up to 100.
    pub share: u8,
    /// The release it runs, once convoy deployed one there.
    pub version: Option<String>,
    /// Inventory names, from the pool's pattern.
    pub hosts: Vec<String>,
}

impl TrafficState {
    /// As the playbook declares it: every request to `live`, versions unknown.
    pub fn declared(spec: &TrafficSpec, hosts_of: impl Fn(&str) -> Vec<String>) -> TrafficState {
        let pools = spec
            .pools
            .iter()
            .map(|p| {
                let share = if p.name == spec.live { 100 } else { 0 };
                let state = PoolState {
                    share,
                    version: None,
                    hosts: hosts_of(&p.hosts),
                };
                (p.name.clone(), state)
            })
            .collect();
        TrafficState {
            live: spec.live.clone(),
            pools,
            target: None,
            tenants: spec.tenants.as_ref().map(TenantMap::declared),
        }
    }

    /// As declared by a proxy section's traffic keys, the pools' hosts
    /// resolved in `inventory` (a pattern that fails selects none: the
    /// pre-flight check refuses it).
    pub fn of_section(
        spec: &crate::playbook::ProxySpec,
        inventory: &crate::inventory::Inventory,
    ) -> Option<TrafficState> {
        spec.traffic.as_ref().map(|t| {
            TrafficState::declared(t, |pattern| {
                inventory
                    .select(pattern)
                    .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
                    .unwrap_or_default()
            })
        })
    }

    /// The pool a release goes to.
    pub fn idle(&self) -> &str {
        self.pools
            .keys()
            .find(|p| **p != self.live)
            .map(String::as_str)
            .unwrap_or(&self.live)
    }

    /// `share` percent to `pool`, the rest to the other one; at 100 it
    /// becomes the live pool.
    pub fn set_share(&mut self, pool: &str, share: u8) {
        self.target = None;
        for (name, p) in self.pools.iter_mut() {
            p.share = if name == pool { share } else { 100 - share };
        }
        if share == 100 {
            self.live = pool.to_owned();
        }
    }

    /// The requests `target` selects to `pool`, every other one to the
    /// live pool.
    pub fn set_target(&mut self, pool: &str, target: Target) {
        let live = self.live.clone();
        self.set_share(&live, 100);
        self.target = Some((pool.to_owned(), target));
    }

    /// Requests go to more than one pool (a share or a target).
    pub fn split(&self) -> bool {
        self.target.is_some() || self.pools.values().filter(|p| p.share > 0).count() > 1
    }

    /// Every request to `pool`, which becomes live.
    pub fn switch_to(&mut self, pool: &str) {
        self.set_share(pool, 100);
    }

    /// `blue 90% (1.0.0), green 10% (2.0.0)`.
    pub fn summary(&self) -> String {
        self.pools
            .iter()
            .map(|(name, p)| {
                format!(
                    "{name} {}%{} ({})",
                    p.share,
                    if *name == self.live { " live" } else { "" },
                    p.version.as_deref().unwrap_or("no version")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
            + &self
                .target
                .as_ref()
                .map(|(pool, t)| format!("; {t} to {pool}"))
                .unwrap_or_default()
            + &self
                .tenants
                .as_ref()
                .map(|t| format!("; tenants {}", t.summary()))
                .unwrap_or_default()
    }

    /// `pools` for the proxy templates: name -> `{name, hosts, version,
    /// weight, live, targeted}`, each host `{name, address, version}` as
    /// the fleet state knows it; and `traffic` -> `{live, idle, split,
    /// shares, clients, routes, request, to, tenants}`: `split` when requests
    /// go to two pools, `shares` when by share, `clients`/`routes` (lists,
    /// empty unless a targeted step) or `request` (a header or cookie match,
    /// null unless one: [`super::request_match::template_value`]) sending
    /// requests to pool `to`; `tenants` the tenant map
    /// ([`TenantMap::template_vars`]) or none.
    pub fn template_vars(&self, fleet: &FleetState) -> (Value, Value) {
        let mut pools = serde_json::Map::new();
        for (name, p) in &self.pools {
            let hosts: Vec<Value> = p
                .hosts
                .iter()
                .map(|h| {
                    let app = fleet.hosts.get(h);
                    json!({
                        "name": h,
                        "address": app.map_or(h.as_str(), |a| a.address.as_str()),
                        "version": app.and_then(|a| a.version.clone()).or_else(|| p.version.clone()),
                    })
                })
                .collect();
            pools.insert(
                name.clone(),
                json!({
                    "name": name,
                    "hosts": hosts,
                    "version": p.version,
                    "weight": p.share,
                    "live": *name == self.live,
                    "targeted": self.target.as_ref().is_some_and(|(p, _)| p == name),
                }),
            );
        }
        let shares = self.pools.values().filter(|p| p.share > 0).count() > 1;
        let (clients, routes, to) = match &self.target {
            Some((pool, Target::Clients(c))) => (c.clone(), vec![], pool.as_str()),
            Some((pool, Target::Routes(r))) => (vec![], r.clone(), pool.as_str()),
            Some((pool, _)) => (vec![], vec![], pool.as_str()),
            None => (vec![], vec![], self.idle()),
        };
        let request = self
            .target
            .as_ref()
            .and_then(|(_, t)| super::request_match::template_value(t));
        let traffic = json!({
            "live": self.live,
            "idle": self.idle(),
            "split": self.split(),
            "shares": shares,
            "clients": clients,
            "routes": routes,
            "request": request,
            "to": to,
            "tenants": self.tenants.as_ref().map(TenantMap::template_vars),
        });
        (Value::Object(pools), traffic)
    }
}
