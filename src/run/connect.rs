//! Opening a host's connection from its (rendered) connection variables.

use std::path::PathBuf;

use super::RunOptions;
use crate::transport::{Connection, LocalConnection, SshConnection, SshTarget, TransportError};
use crate::vars::{Value, VarMap};

fn var<'a>(vars: &'a VarMap, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| vars.get(*n))
        .filter(|v| !v.is_null())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How a host is reached, from Ansible's connection variables.
pub enum Route {
    Local,
    Ssh(SshTarget),
}

/// Reads the connection variables.
pub fn route(host: &str, vars: &VarMap, options: &RunOptions) -> Result<Route, TransportError> {
    let connection = var(vars, &["ansible_connection", "convoy_connection"]).map(text);
    match connection.as_deref() {
        Some("local") => return Ok(Route::Local),
        None | Some("ssh") | Some("smart") | Some("openssh") => {}
        Some(other) => {
            return Err(TransportError::Connect {
                reason: format!(
                    "unsupported ansible_connection `{other}` (convoy speaks ssh and local)"
                ),
            });
        }
    }
    // ansible.cfg's connection settings rank below every variable.
    let cfg = crate::ansible_cfg::AnsibleCfg::current();
    let accept_new = options.accept_new_host_keys
        || cfg.host_key_checking == Some(false)
        || var(vars, &["convoy_host_key_checking"])
            .map(text)
            .as_deref()
            == Some("accept-new")
        || var(
            vars,
            &["ansible_ssh_host_key_checking", "ansible_host_key_checking"],
        )
        .map(text)
        .is_some_and(|v| matches!(v.as_str(), "false" | "no" | "False"));
    let target = SshTarget {
        address: var(vars, &["ansible_host", "ansible_ssh_host"])
            .map(text)
            .unwrap_or_else(|| host.to_owned()),
        port: var(vars, &["ansible_port", "ansible_ssh_port"]).and_then(|v| text(v).parse().ok()),
        user: var(vars, &["ansible_user", "ansible_ssh_user"])
            .map(text)
            .or_else(|| options.remote_user.clone())
            .or_else(|| cfg.remote_user.clone()),
        key_file: var(
            vars,
            &["ansible_ssh_private_key_file", "ansible_private_key_file"],
        )
        .map(|v| PathBuf::from(text(v)))
        .or_else(|| cfg.private_key_file.clone()),
        config_file: options
            .ssh_config
            .clone()
            .or_else(|| var(vars, &["convoy_ssh_config"]).map(|v| PathBuf::from(text(v)))),
        accept_new_host_keys: accept_new,
        connect_timeout: options.connect_timeout,
    };
    // Checked at inventory load too; here again as rendered from templates.
    for (what, word) in [
        ("address", Some(&target.address)),
        ("user", target.user.as_ref()),
    ] {
        if let Some(word) = word.filter(|w| w.starts_with('-')) {
            return Err(TransportError::Connect {
                reason: format!(
                    "the {what} {word:?} starts with `-`, which ssh would read as an option"
                ),
            });
        }
    }
    Ok(Route::Ssh(target))
}

/// Opens the connection described by Ansible's connection variables.
pub async fn open(
    host: &str,
    vars: &VarMap,
    options: &RunOptions,
    control_dir: &std::path::Path,
) -> Result<Connection, TransportError> {
    let target = match route(host, vars, options)? {
        Route::Local => {
            return Ok(Connection::Local(LocalConnection::new(
                options.connect_timeout,
            )));
        }
        Route::Ssh(target) => target,
    };
    SshConnection::connect(&target, control_dir, &options.masters)
        .await
        .map(|c| Connection::Ssh(Box::new(c)))
}
