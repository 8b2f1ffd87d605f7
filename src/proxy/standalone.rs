//! A play's proxy tier opened by a command that is not a run (`convoy
//! restart --proxy-from`, `convoy traffic`): the play's variables for each
//! proxy host worked out once, every file rendered for every proxy host
//! (a template error is bad input, before any connection), then the proxy
//! hosts connected.

use std::collections::HashMap;
use std::path::Path;

use super::{FleetState, ProxyTier, proxy_hosts};
use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook, ProxySpec};
use crate::run::{RunOptions, preflight};
use crate::template::Templates;
use crate::vars::VarMap;

/// The connected tier, the templates it renders with, and each proxy
/// host's base variables.
pub struct StandaloneTier {
    pub tier: ProxyTier,
    pub templates: Templates,
    pub vars: HashMap<String, VarMap>,
}

impl StandaloneTier {
    /// `play`'s tier (`spec`), checked against `state` before connecting.
    pub async fn open(
        playbook: &Playbook,
        play: &Play,
        spec: &ProxySpec,
        inventory: &Inventory,
        options: &RunOptions,
        control_dir: &Path,
        state: &FleetState,
    ) -> Result<StandaloneTier, Error> {
        let scope = preflight::play_scope(playbook, play, options)?;
        let templates = Templates::new(&playbook.base_dir);
        preflight::share_inventory(&templates, inventory);
        let vars: HashMap<String, VarMap> = proxy_hosts(spec, inventory)?
            .into_iter()
            .map(|host| {
                let vars = preflight::proxy_host_context(
                    &scope, inventory, playbook, options, &host, &play.name,
                );
                (host, vars)
            })
            .collect();
        let vars_for = |host: &str| vars.get(host).cloned().unwrap_or_default();
        ProxyTier::check(spec, inventory, &templates, &vars_for, state)?;
        let tier = ProxyTier::connect(spec, inventory, options, control_dir, &vars_for).await?;
        Ok(StandaloneTier {
            tier,
            templates,
            vars,
        })
    }
}
