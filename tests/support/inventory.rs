//! Inventories of a fleet's hosts for the example project.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::{Fleet, write_file};

/// An inventory with the fleet's hosts in group `app`, the example's group vars,
/// and extra host vars per host.
pub fn app_inventory(fleet: &Fleet, dir: &Path, host_extra: &str) -> PathBuf {
    let mut yaml = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n    app_name: hello\n    app_port: 8080\n    app_greeting: Hello from convoy\n    app_root: /srv\n  children:\n    app:\n      hosts:\n",
        fleet.ssh_config().display()
    );
    for i in fleet.hosts() {
        yaml.push_str(&format!(
            "        {}:\n          ansible_host: {}\n",
            fleet.name(i),
            fleet.addr(i)
        ));
        if !host_extra.is_empty() {
            yaml.push_str(&format!("          {host_extra}\n"));
        }
    }
    write_file(dir, "inventory.yml", &yaml)
}
