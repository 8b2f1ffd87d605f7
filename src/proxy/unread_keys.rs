//! Keys of a proxy section that only its templates act on. `request_pools`
//! and `tenants` change what the proxy does only where a template renders
//! them: a section whose files never read them would accept the key and
//! change nothing (a silent difference). That is refused before any host
//! is touched, naming the key and the templates.
//!
//! A template that includes, imports or extends another may read the key
//! through it; such a section is given the benefit of the doubt.

use super::{ProxyConfig, ProxyError};
use crate::playbook::ProxySpec;
use crate::template::Templates;

/// The first key the section states that none of its rendered files reads.
pub fn check(
    spec: &ProxySpec,
    templates: &Templates,
    configs: &[(String, ProxyConfig)],
) -> Result<(), ProxyError> {
    let Some((host, config)) = configs.first() else {
        return Ok(());
    };
    // Files convoy writes itself (the traffic record) come from no template.
    let mut names: Vec<&str> = config
        .files
        .iter()
        .map(|f| f.template.as_str())
        .filter(|name| templates.resolve(name).is_some())
        .collect();
    names.dedup();
    let keys = [
        (
            !spec.request_pools.is_empty(),
            "request_pools",
            "request_pools",
            "templates/nginx/pools.conf.j2 or templates/haproxy/pools.cfg.j2",
        ),
        (
            spec.traffic.as_ref().is_some_and(|t| t.tenants.is_some()),
            "tenants",
            "traffic.tenants",
            "templates/nginx/tenants.conf.j2 or templates/haproxy/tenants.cfg.j2",
        ),
    ];
    for (stated, key, variable, shipped) in keys {
        if !stated {
            continue;
        }
        let read = names
            .iter()
            .any(|name| templates.may_read(name, variable).unwrap_or(true));
        if !read {
            return Err(ProxyError::Invalid {
                message: format!(
                    "`{key}` is stated, but none of this section's templates ({}) reads `{variable}`: \
                     the key would change nothing. Render it in a template ({shipped} do), or remove the key",
                    names.join(", ")
                ),
                what: "proxy section".to_string(),
                host: host.clone(),
                span: spec.span.clone(),
            });
        }
    }
    Ok(())
}
