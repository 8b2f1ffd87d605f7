//! What proxy templates know about the app fleet at one moment of a
//! rollout: which hosts take traffic, which are draining or switched, and
//! which version each runs.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::json;

use crate::inventory::Inventory;
use crate::vars::{Value, VarMap};

/// What the templates know about the app fleet at a moment of the rollout.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetState {
    /// App hosts in rollout order: name -> state.
    pub hosts: IndexMap<String, AppHost>,
    /// The app is in maintenance (a parking page is served).
    pub maintenance: bool,
    /// Where traffic goes between pools, when the proxy section has `pools`.
    #[serde(skip)]
    pub traffic: Option<crate::traffic::TrafficState>,
    /// The proxy section's request pools, their hosts resolved
    /// ([`crate::traffic::request_pools::template_value`]).
    #[serde(skip)]
    pub request_pools: Vec<Value>,
}

/// One app host as the proxy sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppHost {
    /// Where the proxy reaches it: `ansible_host`, else the inventory name.
    pub address: String,
    pub in_service: bool,
    /// Leaving the balancer: in-flight requests finish, no new ones arrive.
    pub draining: bool,
    /// Switched to the release being rolled out.
    pub switched: bool,
    pub version: Option<String>,
}

impl FleetState {
    /// Every host in service, versions unknown: the fleet as it stands before
    /// a rollout starts, and what `convoy render` shows.
    pub fn in_service<'a>(
        inventory: &Inventory,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> FleetState {
        let hosts = hosts
            .into_iter()
            .map(|name| {
                let vars = inventory.host_vars(name);
                let address = match vars.get("ansible_host") {
                    Some(Value::String(a)) => a.clone(),
                    _ => name.to_owned(),
                };
                let host = AppHost {
                    address,
                    in_service: true,
                    ..AppHost::default()
                };
                (name.to_owned(), host)
            })
            .collect();
        FleetState {
            hosts,
            maintenance: false,
            traffic: None,
            request_pools: Vec::new(),
        }
    }

    /// What the proxy section `spec` adds: where traffic goes between its
    /// pools, as declared, and its request pools' hosts.
    pub fn set_section(&mut self, spec: &crate::playbook::ProxySpec, inventory: &Inventory) {
        self.traffic = crate::traffic::TrafficState::of_section(spec, inventory);
        self.request_pools =
            crate::traffic::request_pools::template_value(&spec.request_pools, inventory);
    }

    /// The variables proxy templates get on top of the proxy host's own:
    /// `rollout` (this state), `upstreams` (hosts that should get new
    /// requests: in service and not draining, as `{name, address, version}`)
    /// `maintenance` and `request_pools`; with pools, `pools` and `traffic`
    /// ([`crate::traffic::TrafficState::template_vars`]).
    pub(super) fn template_vars(&self) -> VarMap {
        let upstreams: Vec<Value> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.in_service && !h.draining)
            .map(|(name, h)| json!({"name": name, "address": h.address, "version": h.version}))
            .collect();
        let mut vars = VarMap::new();
        vars.insert("rollout".into(), json!(self));
        vars.insert("upstreams".into(), Value::Array(upstreams));
        vars.insert("maintenance".into(), Value::Bool(self.maintenance));
        vars.insert(
            "request_pools".into(),
            Value::Array(crate::traffic::request_pools::following_traffic(self)),
        );
        if let Some(traffic) = &self.traffic {
            let (pools, traffic) = traffic.template_vars(self);
            vars.insert("pools".into(), pools);
            vars.insert("traffic".into(), traffic);
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(in_service: bool, draining: bool) -> AppHost {
        AppHost {
            address: "10.0.0.1".into(),
            in_service,
            draining,
            switched: false,
            version: Some("1.0".into()),
        }
    }

    #[test]
    fn upstreams_are_the_hosts_in_service_and_not_draining() {
        let mut state = FleetState::default();
        state.hosts.insert("a".into(), host(true, false));
        state.hosts.insert("b".into(), host(true, true));
        state.hosts.insert("c".into(), host(false, false));
        let vars = state.template_vars();
        assert_eq!(
            vars["upstreams"],
            json!([{"name": "a", "address": "10.0.0.1", "version": "1.0"}])
        );
        assert_eq!(vars["rollout"]["hosts"]["b"]["draining"], json!(true));
        assert_eq!(vars["maintenance"], json!(false));
    }
}
