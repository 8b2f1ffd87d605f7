//! `proxy:` — configs rendered onto the proxy tier, validated before they
//! are installed, reloaded, and restored when a reload fails.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::PlaybookError;
use super::rollout::duration;
use crate::source::SourceSpan;
use crate::vars::Value;

#[derive(Debug, Clone)]
pub struct ProxyFile {
    pub template: String,
    pub dest: String,
    /// One file per item (`item` in the template and in `dest`).
    pub loop_items: Option<Value>,
    pub mode: Option<Value>,
    pub span: SourceSpan,
}

#[derive(Debug, Clone)]
pub struct ProxySpec {
    /// A host pattern: the proxy tier.
    pub hosts: String,
    pub hosts_span: SourceSpan,
    pub files: Vec<ProxyFile>,
    /// Run with the candidate files in place, before anything is installed.
    pub validate: Option<String>,
    pub reload: Option<String>,
    /// Take each batch out of the upstreams before it switches.
    pub drain: bool,
    /// How long connections get to finish after a batch leaves.
    pub drain_timeout: Duration,
    /// Serve the maintenance page (`maintenance` is true in the templates)
    /// while migrations run.
    pub maintenance_during_migrations: bool,
    /// `pools`, `live`, `traffic`: the app hosts in two pools, one live,
    /// releases going to the other ([`crate::traffic`]).
    pub traffic: Option<crate::traffic::TrafficSpec>,
    /// Classes of requests with an upstream of their own
    /// ([`crate::traffic::request_pools`]).
    pub request_pools: Vec<crate::traffic::request_pools::RequestPool>,
    pub span: SourceSpan,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    hosts: Spanned<String>,
    files: Vec<Spanned<RawProxyFile>>,
    validate: Option<String>,
    reload: Option<String>,
    #[serde(default)]
    drain: bool,
    drain_timeout: Option<Spanned<Value>>,
    #[serde(default)]
    maintenance_during_migrations: bool,
    pools: Option<Spanned<indexmap::IndexMap<String, Spanned<crate::traffic::spec::RawPool>>>>,
    live: Option<Spanned<String>>,
    traffic: Option<Spanned<crate::traffic::spec::RawTraffic>>,
    tenants: Option<Spanned<crate::traffic::tenants::RawTenants>>,
    request_pools: Option<crate::traffic::request_pools::RawRequestPools>,
}

impl RawProxy {
    /// The section routes tenants (what a job's play may have it for).
    pub(super) fn routes_tenants(&self) -> bool {
        self.tenants.is_some() && self.traffic.is_none()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxyFile {
    template: String,
    dest: String,
    #[serde(rename = "loop")]
    loop_items: Option<Value>,
    mode: Option<Value>,
}

pub(super) fn convert(
    file: &std::path::Path,
    raw: Spanned<RawProxy>,
) -> Result<ProxySpec, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let span = at(&raw.referenced);
    let p = raw.value;
    let drain_timeout = match &p.drain_timeout {
        None => Duration::from_secs(2),
        Some(d) => duration(&d.value).ok_or_else(|| PlaybookError::Invalid {
            message: "`drain_timeout` must be a duration like 5s".into(),
            span: at(&d.referenced),
        })?,
    };
    let traffic = crate::traffic::spec::convert(
        file,
        crate::traffic::spec::RawKeys {
            pools: p.pools,
            live: p.live,
            traffic: p.traffic,
            tenants: p.tenants,
        },
        &span,
    )?;
    if traffic.is_some() && p.drain {
        return Err(PlaybookError::Invalid {
            message: "`drain` takes hosts out one batch at a time; with `pools` the idle pool takes no traffic while it is deployed, so leave `drain` out".into(),
            span,
        });
    }
    let request_pools =
        crate::traffic::request_pools::convert(file, p.request_pools, traffic.is_some())?;
    Ok(ProxySpec {
        traffic,
        request_pools,
        hosts_span: at(&p.hosts.referenced),
        hosts: p.hosts.value,
        files: p
            .files
            .into_iter()
            .map(|f| ProxyFile {
                span: at(&f.referenced),
                template: f.value.template,
                dest: f.value.dest,
                loop_items: f.value.loop_items,
                mode: f.value.mode,
            })
            .collect(),
        validate: p.validate,
        reload: p.reload,
        drain: p.drain,
        drain_timeout,
        maintenance_during_migrations: p.maintenance_during_migrations,
        span,
    })
}
