//! `request_pools` as the proxy templates see them: each class's hosts
//! resolved (from the inventory, or the live pool at each render), and the
//! regex nginx's second map tests.

use serde_json::json;

use super::{LIVE, RequestPool};
use crate::vars::Value;

/// `request_pools` for the proxy templates, in playbook order: `{name,
/// hosts: [{name, address}], routes, methods, max_conns, timeout, live}`
/// (`timeout` in whole seconds; `live` when the hosts are the live pool's,
/// empty here), with `nginx_method`: the regex nginx's second map tests
/// against `CLASS:$request_method`, CLASS the class whose route matched
/// `$uri` in the first map (empty when none did).
pub fn template_value(
    pools: &[RequestPool],
    inventory: &crate::inventory::Inventory,
) -> Vec<Value> {
    pools
        .iter()
        .map(|p| {
            // `live` ones are filled in at each render ([`following_traffic`]).
            let selected = if p.hosts == LIVE {
                Vec::new()
            } else {
                inventory.select(&p.hosts).unwrap_or_default()
            };
            let hosts: Vec<Value> = selected
                .into_iter()
                .map(|h| {
                    let address = match inventory.host_vars(&h.name).get("ansible_host") {
                        Some(Value::String(a)) => a.clone(),
                        _ => h.name.clone(),
                    };
                    json!({"name": h.name, "address": address})
                })
                .collect();
            // A class without routes takes its methods on any path,
            // whichever class's route matched.
            let route_part = if p.routes.is_empty() {
                "[a-z0-9_]*".to_owned()
            } else {
                regex::escape(&p.name)
            };
            let method_part = if p.methods.is_empty() {
                "[A-Z]+".to_owned()
            } else {
                format!("(?:{})", p.methods.join("|"))
            };
            json!({
                "name": p.name,
                "hosts": hosts,
                "live": p.hosts == LIVE,
                "routes": p.routes,
                "methods": p.methods,
                "max_conns": p.max_conns,
                "timeout": p.timeout.as_secs(),
                "nginx_method": format!("^{route_part}:{method_part}$"),
            })
        })
        .collect()
}

/// `request_pools` as the templates see them at `fleet`'s moment: a class
/// on `hosts: live` gets the hosts of the pool live now.
pub fn following_traffic(fleet: &crate::proxy::FleetState) -> Vec<Value> {
    let live_hosts: Vec<Value> = fleet
        .traffic
        .as_ref()
        .and_then(|t| t.pools.get(&t.live))
        .map(|p| {
            p.hosts
                .iter()
                .map(|h| {
                    let address = fleet.hosts.get(h).map_or(h.as_str(), |a| &a.address);
                    json!({"name": h, "address": address})
                })
                .collect()
        })
        .unwrap_or_default();
    fleet
        .request_pools
        .iter()
        .map(|rp| {
            let mut rp = rp.clone();
            if rp["live"] == json!(true) {
                rp["hosts"] = Value::Array(live_hosts.clone());
            }
            rp
        })
        .collect()
}
