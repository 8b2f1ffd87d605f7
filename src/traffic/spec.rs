//! The traffic keys of a proxy section, as loaded:
//!
//! ```yaml
//! proxy:
//!   hosts: balancers
//!   pools:
//!     blue: {hosts: app_blue}
//!     green: {hosts: app_green}
//!   live: blue            # live before the proxy records one
//!   traffic:              # optional: the idle pool takes traffic in steps
//!     steps: [10%, 50%, 100%]
//!     hold: 5s
//! ```
//!
//! Without `traffic`, one step: 100% (a blue-green switch).

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::target::{self, Target};
use crate::playbook::PlaybookError;
use crate::source::SourceSpan;
use crate::vars::Value;

/// One pool: a host pattern of the play's inventory.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub name: String,
    pub hosts: String,
    pub span: SourceSpan,
}

/// A step of the idle pool taking traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// This share of requests (percent, 1..=100) goes to the new pool.
    Share(u8),
    /// The requests of these clients, or on these routes, go to the new
    /// pool; every other request stays on the live one.
    Target(Target),
}

impl Step {
    /// The share of requests the step gives the new pool; none for a
    /// targeted step.
    pub fn share(&self) -> Option<u8> {
        match self {
            Step::Share(s) => Some(*s),
            Step::Target(_) => None,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Share(s) => write!(f, "{s}%"),
            Step::Target(t) => write!(f, "{t}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrafficSpec {
    /// In playbook order; exactly two.
    pub pools: Vec<PoolSpec>,
    /// The pool live before any is recorded on the proxy hosts.
    pub live: String,
    /// Ends with 100%.
    pub steps: Vec<Step>,
    /// How long each step but the last serves before the next.
    pub hold: Duration,
    /// Judges each step but the last from what the proxy saw over its hold.
    pub gate: Option<super::gate::Gate>,
    /// The `traffic` key (the proxy section when there is none).
    pub span: SourceSpan,
    /// Tenant routing ([`super::tenants`]), when the section has `tenants`.
    pub tenants: Option<super::tenants::TenantsSpec>,
}

/// The pools against the inventory, before any host is touched: each
/// pattern selects at least one host, every one a host of the play
/// (`play_hosts`), and no host is in both pools.
pub fn check_pools(
    spec: &TrafficSpec,
    inventory: &crate::inventory::Inventory,
    play_hosts: &[&crate::inventory::Host],
) -> Vec<crate::error::Error> {
    let located = |message: String, span: &SourceSpan| crate::error::Error::Located {
        message,
        span: span.clone(),
    };
    let mut problems = Vec::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    for p in &spec.pools {
        let hosts = match inventory.select(&p.hosts) {
            Ok(hosts) => hosts,
            Err(source) => {
                problems.push(located(
                    format!("pool `{}` names no host: {source}", p.name),
                    &p.span,
                ));
                continue;
            }
        };
        if hosts.is_empty() {
            problems.push(located(
                format!(
                    "pool `{}` names no host: `{}` selects none in the inventory",
                    p.name, p.hosts
                ),
                &p.span,
            ));
        }
        for h in hosts {
            if !play_hosts.iter().any(|x| x.name == h.name) {
                problems.push(located(
                    format!(
                        "pool `{}` has host {}, which is not a host of the play",
                        p.name, h.name
                    ),
                    &p.span,
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(n, _)| *n == h.name) {
                problems.push(located(
                    format!(
                        "host {} is in pool `{other}` and in pool `{}`: a host serves one pool",
                        h.name, p.name
                    ),
                    &p.span,
                ));
            }
            seen.push((h.name.clone(), &p.name));
        }
    }
    problems
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    hosts: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    steps: Spanned<Vec<Spanned<Value>>>,
    hold: Option<Spanned<Value>>,
    gate: Option<Spanned<super::gate::RawGate>>,
}

/// The raw keys of a proxy section that concern traffic.
pub struct RawKeys {
    pub pools: Option<Spanned<IndexMap<String, Spanned<RawPool>>>>,
    pub live: Option<Spanned<String>>,
    pub traffic: Option<Spanned<RawTraffic>>,
    pub tenants: Option<Spanned<super::tenants::RawTenants>>,
}

/// Checks and converts the traffic keys; `None` when no `pools` is given
/// (then `live` and `traffic` are refused).
pub fn convert(
    file: &std::path::Path,
    raw: RawKeys,
    section: &SourceSpan,
) -> Result<Option<TrafficSpec>, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let invalid = |message: String, span: SourceSpan| PlaybookError::Invalid { message, span };
    let Some(pools) = raw.pools else {
        if let Some(live) = &raw.live {
            return Err(invalid(
                "`live` names a pool, and this proxy section has no `pools`".into(),
                at(&live.referenced),
            ));
        }
        if let Some(t) = &raw.traffic {
            return Err(invalid(
                "`traffic` moves requests between pools, and this proxy section has no `pools`"
                    .into(),
                at(&t.referenced),
            ));
        }
        if let Some(t) = &raw.tenants {
            return Err(invalid(
                "`tenants` routes each tenant to a pool, and this proxy section has no `pools`"
                    .into(),
                at(&t.referenced),
            ));
        }
        return Ok(None);
    };
    let pools_span = at(&pools.referenced);
    let pools: Vec<PoolSpec> = pools
        .value
        .into_iter()
        .map(|(name, p)| PoolSpec {
            name,
            hosts: p.value.hosts,
            span: at(&p.referenced),
        })
        .collect();
    if pools.len() != 2 {
        return Err(invalid(
            format!(
                "`pools` must name two pools (the live one and the one a release goes to), not {}",
                pools.len()
            ),
            pools_span,
        ));
    }
    for p in &pools {
        if p.hosts.trim().is_empty() {
            return Err(invalid(
                format!("pool `{}` names no host: `hosts` is empty", p.name),
                p.span.clone(),
            ));
        }
    }
    let live = match raw.live {
        None => pools[0].name.clone(),
        Some(l) => {
            if !pools.iter().any(|p| p.name == l.value) {
                let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                return Err(invalid(
                    format!(
                        "`live` names pool `{}`, which `pools` does not declare (it has {})",
                        l.value,
                        names.join(", ")
                    ),
                    at(&l.referenced),
                ));
            }
            l.value
        }
    };
    let (steps, hold, gate, span) = match raw.traffic {
        None => (
            vec![Step::Share(100)],
            Duration::ZERO,
            None,
            section.clone(),
        ),
        Some(t) => {
            let span = at(&t.referenced);
            let t = t.value;
            let steps_span = at(&t.steps.referenced);
            let mut steps = Vec::new();
            for s in &t.steps.value {
                let step =
                    parse_step(&s.value).map_err(|message| invalid(message, at(&s.referenced)))?;
                let last_share = steps.iter().rev().find_map(Step::share);
                if let (Some(share), Some(last)) = (step.share(), last_share)
                    && share <= last
                {
                    return Err(invalid(
                        format!("traffic steps must grow: {step} comes after {last}%"),
                        at(&s.referenced),
                    ));
                }
                if let (Step::Target(_), Some(last)) = (&step, last_share) {
                    return Err(invalid(
                        format!(
                            "a targeted step comes before the shares: it follows {last}%, which already sends others' requests to the new pool"
                        ),
                        at(&s.referenced),
                    ));
                }
                steps.push(step);
            }
            if steps.last().and_then(Step::share) != Some(100) {
                return Err(invalid(
                    format!(
                        "traffic steps must end at 100% (the new pool then takes every request){}",
                        steps
                            .last()
                            .map(|s| format!("; the last is {s}"))
                            .unwrap_or_default()
                    ),
                    steps_span,
                ));
            }
            let hold = match &t.hold {
                None => Duration::ZERO,
                Some(h) => crate::playbook::duration(&h.value).ok_or_else(|| {
                    invalid(
                        "`hold` must be a duration like 5s".into(),
                        at(&h.referenced),
                    )
                })?,
            };
            let gate = t
                .gate
                .map(|g| super::gate::convert(file, g, steps.len() - 1, hold))
                .transpose()?;
            (steps, hold, gate, span)
        }
    };
    let names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
    let tenants = raw
        .tenants
        .map(|t| super::tenants::convert(file, t, &names, &live))
        .transpose()?;
    Ok(Some(TrafficSpec {
        pools,
        live,
        steps,
        hold,
        gate,
        span,
        tenants,
    }))
}

/// `10%`, `"10%"` or `10`; `{clients: [CIDR, ...]}`; `{routes: [REGEX, ...]}`;
/// `{header: {NAME: [VALUE, ...]}}`; `{cookie: {NAME: [VALUE, ...]}}`.
pub fn parse_step(v: &Value) -> Result<Step, String> {
    let not_a_step = || {
        format!(
            "a traffic step is a share of requests like 10%, {{clients: [10.1.0.0/24]}} or {{routes: [^/api]}}, not {}",
            serde_json::to_string(v).unwrap_or_default()
        )
    };
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .trim()
            .strip_suffix('%')
            .unwrap_or(s.trim())
            .trim()
            .parse()
            .ok(),
        Value::Object(map) if map.len() == 1 => {
            let (key, list) = map.iter().next().expect("one key");
            if matches!(key.as_str(), "header" | "cookie") {
                return super::request_match::parse(key, list).map(Step::Target);
            }
            let items: Option<Vec<String>> = match list {
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            };
            let items = items
                .filter(|i| !i.is_empty())
                .ok_or_else(|| format!("`{key}` takes a list of strings, at least one"))?;
            return match key.as_str() {
                "clients" => {
                    target::check_subnets(&items).map(|c| Step::Target(Target::Clients(c)))
                }
                "routes" => target::check_routes(&items).map(|r| Step::Target(Target::Routes(r))),
                _ => Err(format!(
                    "a targeted step names `clients`, `routes`, `header` or `cookie`, not `{key}`"
                )),
            };
        }
        _ => None,
    };
    match n {
        Some(n) if (1.0..=100.0).contains(&n) && n.fract() == 0.0 => Ok(Step::Share(n as u8)),
        _ => Err(not_a_step()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_parse_as_shares() {
        assert_eq!(parse_step(&json!("10%")), Ok(Step::Share(10)));
        assert_eq!(parse_step(&json!(50)), Ok(Step::Share(50)));
        assert!(parse_step(&json!("0%")).is_err());
        assert!(parse_step(&json!("150%")).is_err());
        assert!(parse_step(&json!("2.5%")).is_err());
        assert!(parse_step(&json!("all")).is_err());
        assert_eq!(
            parse_step(&json!({"routes": ["^/api"]})),
            Ok(Step::Target(Target::Routes(vec!["^/api".into()])))
        );
        assert!(
            parse_step(&json!({"clients": ["10.0.0.0/8", "10.1.0.0/16"]}))
                .unwrap_err()
                .contains("overlap")
        );
        assert!(parse_step(&json!({"tenants": ["a"]})).is_err());
    }
}
