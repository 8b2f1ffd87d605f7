//! Tenant routing: each tenant's requests go to the pool that serves its
//! data's version. A tenant is *pending* (not converted yet: the old pool),
//! *in progress* (being converted: the maintenance answer, so that neither
//! version reads data half converted) or *done* (converted: the new pool).
//! A tenant the map does not name is pending: the old pool is the safe
//! default, since an unconverted tenant must never reach the new version.
//!
//! ```yaml
//! proxy:
//!   pools: {blue: {hosts: blue}, green: {hosts: green}}
//!   tenants:
//!     by: header X-Tenant          # or `cookie tenant`, or `host`
//!     pools: {pending: blue, done: green}
//!     maintenance: 503             # the status in-progress tenants get
//!     done: [acme]                 # as declared; a job publishes its own
//!     in_progress: [globex]
//!     pending: [initech]
//! ```
//!
//! Everything that reaches the proxy config is checked at load: tenant
//! names are lowercase letters, digits and `._-` (both proxies match them
//! without regard to case), never one of nginx's `map` keywords, and never
//! listed twice; header and cookie names are plain tokens.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::json;
use serde_saphyr::Spanned;

use crate::playbook::PlaybookError;
use crate::source::SourceSpan;
use crate::vars::Value;

/// Where a tenant's conversion stands, as the proxy routes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantState {
    /// Not converted yet: the old pool.
    Pending,
    /// Being converted: the maintenance answer.
    InProgress,
    /// Converted: the new pool.
    Done,
}

impl TenantState {
    pub const ALL: [TenantState; 3] = [
        TenantState::Done,
        TenantState::InProgress,
        TenantState::Pending,
    ];

    /// As in the playbook and the proxy host's record.
    pub fn key(self) -> &'static str {
        match self {
            TenantState::Pending => "pending",
            TenantState::InProgress => "in_progress",
            TenantState::Done => "done",
        }
    }

    pub fn from_key(key: &str) -> Option<TenantState> {
        TenantState::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// What the proxy reads a request's tenant from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantKey {
    /// A request header (`X-Tenant`).
    Header(String),
    /// A cookie (`tenant`).
    Cookie(String),
    /// The host name the request names (its `Host`, without the port).
    Host,
}

impl TenantKey {
    /// `header X-Tenant`, `cookie tenant`, `host`: the forms `by` takes.
    pub fn parse(text: &str) -> Result<TenantKey, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad_name = |kind: &str, name: &str, allowed: &str| {
            format!("{kind} name {name:?} must be {allowed}, so that the proxy config can carry it")
        };
        match words.as_slice() {
            ["header", name] => {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(bad_name("header", name, "letters, digits and `-`"));
                }
                Ok(TenantKey::Header((*name).to_owned()))
            }
            ["cookie", name] => {
                if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(bad_name("cookie", name, "letters, digits and `_`"));
                }
                Ok(TenantKey::Cookie((*name).to_owned()))
            }
            ["host"] => Ok(TenantKey::Host),
            _ => Err(format!(
                "`tenants.by` is `header NAME`, `cookie NAME` or `host`, not {text:?}"
            )),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            TenantKey::Header(_) => "header",
            TenantKey::Cookie(_) => "cookie",
            TenantKey::Host => "host",
        }
    }

    fn name(&self) -> &str {
        match self {
            TenantKey::Header(n) | TenantKey::Cookie(n) => n,
            TenantKey::Host => "",
        }
    }

    /// The nginx variable holding the request's tenant.
    fn nginx(&self) -> String {
        match self {
            TenantKey::Header(n) => format!("$http_{}", n.to_ascii_lowercase().replace('-', "_")),
            TenantKey::Cookie(n) => format!("$cookie_{n}"),
            TenantKey::Host => "$host".into(),
        }
    }

    /// The haproxy sample fetch giving the request's tenant.
    fn haproxy(&self) -> String {
        match self {
            TenantKey::Header(n) => format!("req.hdr({n})"),
            TenantKey::Cookie(n) => format!("req.cook({n})"),
            TenantKey::Host => "req.hdr(host),field(1,:),lower".into(),
        }
    }
}

/// How the proxy routes tenants, as checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub by: TenantKey,
    /// The pool of pending (and unknown) tenants.
    pub pending_pool: String,
    /// The pool of converted tenants.
    pub done_pool: String,
    /// The HTTP status in-progress tenants get, with the maintenance text.
    pub maintenance: u16,
}

/// The `tenants` key, checked.
#[derive(Debug, Clone)]
pub struct TenantsSpec {
    pub routing: Routing,
    /// The states the playbook lists (a job publishes its targets' own).
    pub declared: IndexMap<String, TenantState>,
}

/// The tenant map at one moment: what the proxy templates render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMap {
    pub routing: Routing,
    /// Tenant -> state, in the order first known.
    pub states: IndexMap<String, TenantState>,
}

impl TenantMap {
    pub fn declared(spec: &TenantsSpec) -> TenantMap {
        TenantMap {
            routing: spec.routing.clone(),
            states: spec.declared.clone(),
        }
    }

    /// The tenants in `state`, in map order.
    pub fn in_state(&self, state: TenantState) -> Vec<&str> {
        self.states
            .iter()
            .filter(|(_, s)| **s == state)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// `done 6, in progress 6, pending 18`.
    pub fn summary(&self) -> String {
        format!(
            "done {}, in progress {}, pending {}",
            self.in_state(TenantState::Done).len(),
            self.in_state(TenantState::InProgress).len(),
            self.in_state(TenantState::Pending).len()
        )
    }

    /// `traffic.tenants` for the proxy templates: `{by, name, nginx,
    /// haproxy, pending_pool, done_pool, maintenance, done, in_progress,
    /// pending}`: `nginx` and `haproxy` are the variable and sample fetch
    /// that give a request's tenant; the three lists are tenant names.
    pub fn template_vars(&self) -> Value {
        let r = &self.routing;
        json!({
            "by": r.by.kind(),
            "name": r.by.name(),
            "nginx": r.by.nginx(),
            "haproxy": r.by.haproxy(),
            "pending_pool": r.pending_pool,
            "done_pool": r.done_pool,
            "maintenance": r.maintenance,
            "done": self.in_state(TenantState::Done),
            "in_progress": self.in_state(TenantState::InProgress),
            "pending": self.in_state(TenantState::Pending),
        })
    }
}

/// Words nginx's `map` reads as directives, not as keys.
const MAP_KEYWORDS: [&str; 4] = ["default", "hostnames", "include", "volatile"];

/// Why `name` cannot be a tenant in a proxy config, or `None`.
pub fn invalid_name(name: &str) -> Option<String> {
    let plain = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !plain {
        return Some(format!(
            "tenant {name:?} must be lowercase letters, digits and `._-`, starting with a letter or digit (at most 100): the proxy config carries it unquoted, and matches it without regard to case"
        ));
    }
    if MAP_KEYWORDS.contains(&name) {
        return Some(format!(
            "tenant {name:?} is a keyword of nginx's `map` ({}), so it cannot be a key there",
            MAP_KEYWORDS.join(", ")
        ));
    }
    None
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenants {
    by: Spanned<String>,
    pools: Option<Spanned<IndexMap<String, Spanned<String>>>>,
    maintenance: Option<Spanned<Value>>,
    done: Option<Spanned<Vec<Spanned<String>>>>,
    in_progress: Option<Spanned<Vec<Spanned<String>>>>,
    pending: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Checks the `tenants` key against the declared `pools` (`live` being
/// the default pool of pending tenants, the other one of done ones).
pub fn convert(
    file: &std::path::Path,
    raw: Spanned<RawTenants>,
    pools: &[String],
    live: &str,
) -> Result<TenantsSpec, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let invalid = |message: String, l: &serde_saphyr::Location| PlaybookError::Invalid {
        message,
        span: at(l),
    };
    let t = raw.value;
    let by = TenantKey::parse(&t.by.value).map_err(|m| invalid(m, &t.by.referenced))?;
    let mut pending_pool = live.to_owned();
    let mut done_pool = pools
        .iter()
        .find(|p| *p != live)
        .cloned()
        .unwrap_or_default();
    if let Some(map) = &t.pools {
        for (state, pool) in &map.value {
            let slot = match state.as_str() {
                "pending" => &mut pending_pool,
                "done" => &mut done_pool,
                other => {
                    return Err(invalid(
                        format!(
                            "`tenants.pools` maps `pending` and `done` to pools, not `{other}` (in-progress tenants get the maintenance answer)"
                        ),
                        &pool.referenced,
                    ));
                }
            };
            if !pools.contains(&pool.value) {
                return Err(invalid(
                    format!(
                        "`tenants.pools.{state}` names pool `{}`, which `pools` does not declare (it has {})",
                        pool.value,
                        pools.join(", ")
                    ),
                    &pool.referenced,
                ));
            }
            *slot = pool.value.clone();
        }
        if pending_pool == done_pool {
            return Err(invalid(
                format!(
                    "`tenants.pools`: pending and done tenants both go to pool `{done_pool}`; converted tenants need the other pool"
                ),
                &map.referenced,
            ));
        }
    }
    let maintenance = match &t.maintenance {
        None => 503,
        Some(m) => m
            .value
            .as_u64()
            .filter(|s| (400..=599).contains(s))
            .map(|s| s as u16)
            .ok_or_else(|| {
                invalid(
                    "`tenants.maintenance` is the HTTP status in-progress tenants get, 400 to 599 (503 when not given)".into(),
                    &m.referenced,
                )
            })?,
    };
    let mut declared = IndexMap::new();
    let mut first_at: IndexMap<String, SourceSpan> = IndexMap::new();
    for (state, list) in [
        (TenantState::Done, &t.done),
        (TenantState::InProgress, &t.in_progress),
        (TenantState::Pending, &t.pending),
    ] {
        for name in list.iter().flat_map(|l| &l.value) {
            if let Some(why) = invalid_name(&name.value) {
                return Err(invalid(why, &name.referenced));
            }
            if let Some(first) = first_at.get(&name.value) {
                return Err(invalid(
                    format!(
                        "tenant {:?} is listed twice (first at {first}): a tenant has one state",
                        name.value
                    ),
                    &name.referenced,
                ));
            }
            first_at.insert(name.value.clone(), at(&name.referenced));
            declared.insert(name.value.clone(), state);
        }
    }
    Ok(TenantsSpec {
        routing: Routing {
            by,
            pending_pool,
            done_pool,
            maintenance,
        },
        declared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_takes_a_header_a_cookie_or_the_host() {
        assert_eq!(
            TenantKey::parse("header X-Tenant").unwrap().nginx(),
            "$http_x_tenant"
        );
        assert_eq!(
            TenantKey::parse("cookie tenant").unwrap().haproxy(),
            "req.cook(tenant)"
        );
        assert_eq!(TenantKey::parse("host"), Ok(TenantKey::Host));
        assert!(TenantKey::parse("path /t").is_err());
        assert!(TenantKey::parse("header X\"Tenant").is_err());
        assert!(TenantKey::parse("cookie a-b").is_err());
        assert!(TenantKey::parse("header").is_err());
    }

    #[test]
    fn a_tenant_map_reads_back_from_its_record() {
        let mut pools = IndexMap::new();
        for (name, share) in [("blue", 100), ("green", 0)] {
            let pool = crate::traffic::state::PoolState {
                share,
                ..Default::default()
            };
            pools.insert(name.to_owned(), pool);
        }
        let routing = Routing {
            by: TenantKey::Host,
            pending_pool: "blue".into(),
            done_pool: "green".into(),
            maintenance: 503,
        };
        let declared = crate::traffic::TrafficState {
            live: "blue".into(),
            pools,
            target: None,
            tenants: Some(TenantMap {
                routing,
                states: IndexMap::from([("acme".to_owned(), TenantState::Pending)]),
            }),
        };
        let mut published = declared.clone();
        let map = published.tenants.as_mut().unwrap();
        map.states.insert("acme".into(), TenantState::Done);
        map.states.insert("globex".into(), TenantState::InProgress);
        let text = crate::traffic::record::format("p", &published);
        assert!(
            text.contains("tenant acme done\ntenant globex in_progress\n"),
            "{text}"
        );
        let mut back = declared.clone();
        crate::traffic::record::apply(&text, &mut back).unwrap();
        assert_eq!(back, published);
        let head = "live blue\npool blue 100\npool green 0\n";
        for bad in ["tenant acme half", "tenant a;b done", "tenant acme"] {
            let text = format!("{head}{bad}\n");
            assert!(
                crate::traffic::record::apply(&text, &mut back).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tenant_names_are_safe_in_a_proxy_config() {
        assert_eq!(invalid_name("acme"), None);
        assert_eq!(invalid_name("t-01.eu"), None);
        assert!(invalid_name("Acme").is_some());
        assert!(invalid_name("a;b").is_some());
        assert!(invalid_name("a b").is_some());
        assert!(invalid_name("-a").is_some());
        assert!(invalid_name("").is_some());
        assert!(invalid_name("default").unwrap().contains("keyword"));
    }
}
