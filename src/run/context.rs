//! The variables a task sees on one host, layered as Ansible does (lowest
//! first): role defaults, inventory, gathered facts, play `vars`, `vars_files`, role vars, block and task `vars`,
//! facts and registered results, extra vars (`-e`), then the loop item.

use serde_json::json;

use super::HostState;
use crate::playbook::RoleVars;
use crate::vars::{Value, VarMap, merge};

/// What every host of a play shares.
#[derive(Clone)]
pub struct PlayScope {
    /// The roles' defaults, under everything else.
    pub role_defaults: VarMap,
    pub play_vars: VarMap,
    pub vars_files: VarMap,
    /// The roles' `vars/main.yml`, above `vars_files`.
    pub role_vars: VarMap,
    pub extra_vars: VarMap,
    /// `playbook_dir`, `ansible_check_mode`, `ansible_diff_mode` (`groups`,
    /// `hostvars` and `ansible_play_hosts` are shared by the templates:
    /// [`Templates::share`](crate::template::Templates::share)).
    pub magic: VarMap,
}

impl PlayScope {
    /// The context of `host` with `task_vars` (block and task `vars`) on top of the play's.
    pub fn context(&self, host: &HostState, task_vars: &VarMap) -> VarMap {
        self.context_in_role(host, task_vars, None)
    }

    /// The same in a task of `role`, whose own defaults and vars rank
    /// above the other roles' (ansible-core merges the task's role last).
    pub fn context_in_role(
        &self,
        host: &HostState,
        task_vars: &VarMap,
        role: Option<&RoleVars>,
    ) -> VarMap {
        let own_defaults = role.map(|r| &r.defaults).filter(|d| !d.is_empty());
        let mut ctx = if self.role_defaults.is_empty() && own_defaults.is_none() {
            host.inventory_vars.clone()
        } else {
            let mut ctx = self.role_defaults.clone();
            if let Some(own) = own_defaults {
                merge(&mut ctx, own);
            }
            merge(&mut ctx, &host.inventory_vars);
            ctx
        };
        merge(&mut ctx, &host.gathered);
        merge(&mut ctx, &self.play_vars);
        merge(&mut ctx, &self.vars_files);
        merge(&mut ctx, &self.role_vars);
        if let Some(own) = role {
            merge(&mut ctx, &own.vars);
        }
        merge(&mut ctx, task_vars);
        merge(&mut ctx, &host.facts);
        merge(&mut ctx, &self.extra_vars);
        merge(&mut ctx, &self.magic);
        ctx.insert("inventory_hostname".into(), json!(host.name));
        ctx
    }
}

/// Turns a map into the `Value` the template engine takes.
pub fn as_value(map: VarMap) -> Value {
    Value::Object(map)
}
