//! Request pools: classes of requests (by path regex and/or method) sent
//! to an upstream of their own, with its own connection limit per server
//! and its own timeout, so a slow class (uploads, searches, reports)
//! cannot take every connection the app hosts have and hold up the rest.
//!
//! ```yaml
//! proxy:
//!   request_pools:
//!     heavy:
//!       routes: ["^/upload", "^/search"]   # and/or
//!       methods: [POST, PUT]
//!       hosts: live                         # with pools: the live pool's hosts
//!       max_conns: 4                        # per server
//!       timeout: 30s
//! ```
//!
//! A request belongs to a class when its path matches one of the class's
//! routes (any path without `routes`) and its method is one of the
//! class's methods (any method without `methods`). Checked at load: a
//! class states routes or methods or both, each route compiles and keeps
//! to what a proxy config carries, methods are upper-case words, limits
//! are above zero, and no two classes can claim one request (same method,
//! or one of them any method, and routes that are equal or one a literal
//! prefix of the other, or one of them any route). Before any host is
//! touched, each class's `hosts` must select hosts of the inventory.
//!
//! `hosts: live` (with `pools`) follows the traffic: the class goes to the
//! live pool's hosts, and moves when a switch (the last traffic step, a
//! rollback, `convoy traffic --to`) makes the other pool live. A fixed
//! pattern would keep sending the class to a pool after traffic left it,
//! and a release to that pool restarts its servers.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::playbook::PlaybookError;
use crate::source::SourceSpan;
use crate::vars::Value;

mod overlap;
mod render;

use overlap::overlap;
pub use render::{following_traffic, template_value};

/// One class of requests and the upstream it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPool {
    /// Letters, digits and `_`: it names the proxy's upstream.
    pub name: String,
    /// Path regexes; empty: every path.
    pub routes: Vec<String>,
    /// Upper-case methods; empty: every method.
    pub methods: Vec<String>,
    /// A host pattern of the inventory, or [`LIVE`].
    pub hosts: String,
    /// Connections at once per server of the class's upstream.
    pub max_conns: u32,
    /// How long the proxy waits for the app on this class's requests.
    pub timeout: Duration,
    pub span: SourceSpan,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestPool {
    #[serde(default)]
    routes: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    hosts: String,
    max_conns: Spanned<Value>,
    timeout: Spanned<Value>,
}

/// nginx sends each class to its upstream through an error code of its own
/// (`return 560` + `error_page 560 = @class`), and error_page takes codes
/// up to 599.
const MAX_POOLS: usize = 30;

pub type RawRequestPools = Spanned<IndexMap<String, Spanned<RawRequestPool>>>;

/// `hosts: live`: the live pool's hosts, wherever traffic goes.
pub const LIVE: &str = "live";

/// Checks and converts `request_pools`, in playbook order; `pools` when
/// the proxy section has pools (`hosts: live` needs them).
pub fn convert(
    file: &std::path::Path,
    raw: Option<RawRequestPools>,
    has_pools: bool,
) -> Result<Vec<RequestPool>, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let invalid = |message: String, span: SourceSpan| PlaybookError::Invalid { message, span };
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    if raw.value.len() > MAX_POOLS {
        return Err(invalid(
            format!(
                "`request_pools` declares {} classes; at most {MAX_POOLS}",
                raw.value.len()
            ),
            at(&raw.referenced),
        ));
    }
    let mut pools: Vec<RequestPool> = Vec::new();
    for (name, p) in raw.value {
        let span = at(&p.referenced);
        let p = p.value;
        let class = |what: String| format!("request pool `{name}`: {what}");
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                format!(
                    "request pool name {name:?} must be 1 to 32 lower-case letters, digits or _ (it names the proxy's upstream)"
                ),
                span,
            ));
        }
        if p.routes.is_empty() && p.methods.is_empty() {
            return Err(invalid(
                class("give `routes`, `methods` or both: the requests the class takes".into()),
                span,
            ));
        }
        let routes = if p.routes.is_empty() {
            Vec::new()
        } else {
            super::target::check_routes(&p.routes).map_err(|e| invalid(class(e), span.clone()))?
        };
        let mut methods: Vec<String> = Vec::new();
        for m in &p.methods {
            if m.is_empty() || m.len() > 16 || !m.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(invalid(
                    class(format!("method {m:?} must be an upper-case word like POST")),
                    span,
                ));
            }
            if methods.contains(m) {
                return Err(invalid(class(format!("method {m} is given twice")), span));
            }
            methods.push(m.clone());
        }
        if p.hosts.trim().is_empty() {
            return Err(invalid(
                class("names no host: `hosts` is empty".into()),
                span,
            ));
        }
        if p.hosts == LIVE && !has_pools {
            return Err(invalid(
                class(
                    "`hosts: live` names the live pool's hosts, and this proxy section has no `pools`"
                        .into(),
                ),
                span,
            ));
        }
        let max_conns = match &p.max_conns.value {
            Value::Number(n) => n.as_u64().filter(|n| (1..=65_535).contains(n)),
            _ => None,
        }
        .ok_or_else(|| {
            invalid(
                class("`max_conns` must be a whole number of connections, 1 or more".into()),
                at(&p.max_conns.referenced),
            )
        })? as u32;
        let timeout = crate::playbook::duration(&p.timeout.value)
            .filter(|d| *d >= Duration::from_secs(1))
            .ok_or_else(|| {
                invalid(
                    class("`timeout` must be a duration of 1s or more, like 30s".into()),
                    at(&p.timeout.referenced),
                )
            })?;
        let pool = RequestPool {
            name,
            routes,
            methods,
            hosts: p.hosts,
            max_conns,
            timeout,
            span,
        };
        if let Some((other, why)) = pools.iter().find_map(|o| overlap(o, &pool).map(|w| (o, w))) {
            return Err(invalid(
                format!(
                    "request pools `{}` and `{}` can both claim a request ({why}): a request goes to one class",
                    other.name, pool.name
                ),
                pool.span.clone(),
            ));
        }
        pools.push(pool);
    }
    Ok(pools)
}

impl RequestPool {
    /// `heavy: POST PUT on ^/upload ^/search to h2, h3 (4 connections per
    /// server, timeout 30s)`, the hosts as `hosts` selects them.
    pub fn summary(&self, hosts: &[String]) -> String {
        let words = |v: &[String], none: &str| {
            if v.is_empty() {
                none.to_owned()
            } else {
                v.join(" ")
            }
        };
        format!(
            "{}: {} on {} to {} ({} connection(s) per server, timeout {}s)",
            self.name,
            words(&self.methods, "any method"),
            words(&self.routes, "any path"),
            words(hosts, "no host"),
            self.max_conns,
            self.timeout.as_secs()
        )
    }
}

/// Each class's `hosts` against the inventory, before any host is touched.
pub fn check_hosts(
    pools: &[RequestPool],
    inventory: &crate::inventory::Inventory,
) -> Vec<crate::error::Error> {
    pools
        .iter()
        .filter(|p| p.hosts != LIVE)
        .filter_map(|p| {
            let why = match inventory.select(&p.hosts) {
                Err(e) => e.to_string(),
                Ok(hosts) if hosts.is_empty() => {
                    format!("`{}` selects none in the inventory", p.hosts)
                }
                Ok(_) => return None,
            };
            Some(crate::error::Error::Located {
                message: format!("request pool `{}` names no host: {why}", p.name),
                span: p.span.clone(),
            })
        })
        .collect()
}
