//! Whom a task or a release step runs as: Ansible's `become`, decided here,
//! once per task and host, and once per play for every command that acts on
//! a distribution (`run`, `rollback`, `status`, `unlock`, `plan`), so that
//! no caller decides it again, and none forgets.
//!
//! Ansible's precedence (PlayContext.set_task_and_variable_override): the
//! `become`/`become_user` keywords of the task, else its enclosing blocks,
//! else the play; then the connection variables `ansible_become`,
//! `ansible_become_user`, `ansible_become_method` (from the inventory, play
//! or task `vars`, or `-e`) override the keywords, each on its own. Only the
//! `sudo` method exists here: any other one is refused, naming the host,
//! rather than silently run through sudo.
//!
//! sudo's password, as ansible-core's sudo plugin reads it: the last set of
//! `ansible_become_password`, `ansible_become_pass`, `ansible_sudo_pass`,
//! else the command line's (`-K`, `--become-password-file`). An empty one
//! is none: then `sudo -n`, which must not ask.

use crate::playbook::{Play, Task};
use crate::template::Templates;
use crate::transport::{Become, BecomePassword};
use crate::vars::{Value, VarMap};

/// The connection variables that decide `become`, as Ansible names them.
const VARS: [&str; 6] = [
    "ansible_become",
    "ansible_become_user",
    "ansible_become_method",
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
];

/// The variables holding sudo's password, the one that wins last (the
/// order of ansible-core's sudo plugin `become_pass` option, where the
/// last one set wins).
const PASSWORD_VARS: [&str; 3] = [
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
];

/// The `become` keywords in force: the play's, then each block's and the task's over them.
#[derive(Debug, Clone, Default)]
pub struct BecomeKeywords {
    pub on: Option<bool>,
    pub user: Option<String>,
}

impl BecomeKeywords {
    pub fn of_play(play: &Play) -> BecomeKeywords {
        BecomeKeywords {
            on: play.sudo,
            user: play.become_user.clone(),
        }
    }

    /// These keywords with `task`'s (or a block's) over them.
    pub fn under(&self, task: &Task) -> BecomeKeywords {
        self.under_keywords(&BecomeKeywords {
            on: task.sudo,
            user: task.become_user.clone(),
        })
    }

    /// These keywords with `inner`'s over them.
    pub fn under_keywords(&self, inner: &BecomeKeywords) -> BecomeKeywords {
        BecomeKeywords {
            on: inner.on.or(self.on),
            user: inner.user.clone().or_else(|| self.user.clone()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BecomeError {
    #[error(
        "host {host}: ansible_become_method `{method}` is not supported: convoy becomes another user with sudo only (set ansible_become_method: sudo, or remove it)"
    )]
    UnsupportedMethod { host: String, method: String },
    #[error("host {host}: {var} must be {expected}, got {value}")]
    BadValue {
        host: String,
        var: &'static str,
        expected: &'static str,
        value: String,
    },
    /// Its value is never shown: it is a password.
    #[error("host {host}: {var} must be a string (a password)")]
    BadPassword { host: String, var: &'static str },
}

/// The connection variables among `vars`, rendered (they may be templates;
/// one that cannot render is kept as written and refused below).
pub fn connection_vars(templates: &Templates, vars: &VarMap, origin: &str) -> VarMap {
    let ctx = Value::Object(vars.clone());
    VARS.iter()
        .filter_map(|name| vars.get(*name).map(|v| (name, v)))
        .map(|(name, v)| {
            let rendered = templates
                .render_deep(v, &ctx, origin)
                .unwrap_or_else(|_| v.clone());
            ((*name).to_owned(), rendered)
        })
        .collect()
}

/// The escalation for one task on `host`: keywords, then `vars` (already
/// rendered: [`connection_vars`]) over them; `cli_password` is the command
/// line's, which a password variable overrides.
pub fn resolve(
    keywords: &BecomeKeywords,
    vars: &VarMap,
    host: &str,
    cli_password: Option<&BecomePassword>,
) -> Result<Option<Become>, BecomeError> {
    let bad = |var: &'static str, expected: &'static str, value: &Value| BecomeError::BadValue {
        host: host.to_owned(),
        var,
        expected,
        value: value.to_string(),
    };
    let on = match vars.get("ansible_become") {
        Some(v) => boolean(v).ok_or_else(|| bad("ansible_become", "true or false", v))?,
        None => keywords.on.unwrap_or(false),
    };
    let user = match vars.get("ansible_become_user") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(v) => return Err(bad("ansible_become_user", "a user name", v)),
        None => keywords.user.clone(),
    };
    // Checked even when become is off: the variable says what the host
    // needs, and the next task that turns become on would be refused late.
    match vars.get("ansible_become_method") {
        None => {}
        Some(Value::String(m)) if m == "sudo" => {}
        Some(Value::String(m)) => {
            return Err(BecomeError::UnsupportedMethod {
                host: host.to_owned(),
                method: m.clone(),
            });
        }
        Some(v) => return Err(bad("ansible_become_method", "a method name", v)),
    }
    let password = password(vars, host, cli_password)?;
    Ok(on.then(|| Become {
        user: user.unwrap_or_else(|| "root".into()),
        password,
    }))
}

/// sudo's password for `host`: a variable's (the last of [`PASSWORD_VARS`]
/// set; null is unset), else the command line's.
fn password(
    vars: &VarMap,
    host: &str,
    cli_password: Option<&BecomePassword>,
) -> Result<Option<BecomePassword>, BecomeError> {
    let set = PASSWORD_VARS
        .iter()
        .rev()
        .find_map(|var| vars.get(*var).filter(|v| !v.is_null()).map(|v| (*var, v)));
    match set {
        None => Ok(cli_password.cloned()),
        Some((_, Value::String(s))) => Ok(BecomePassword::new(s)),
        Some((_, Value::Number(n))) => Ok(BecomePassword::new(&n.to_string())),
        Some((var, _)) => Err(BecomeError::BadPassword {
            host: host.to_owned(),
            var,
        }),
    }
}

/// How a host's release steps are escalated (the lock, prepare, switch,
/// prune, migrations, and `status`, `unlock` and `plan`): the play's
/// `become`/`become_user`, with the host's connection variables over them,
/// exactly as for its tasks. `vars` is the host's context.
pub fn for_release(
    play: &Play,
    templates: &Templates,
    vars: &VarMap,
    host: &str,
    cli_password: Option<&BecomePassword>,
) -> Result<Option<Become>, BecomeError> {
    let conn = connection_vars(templates, vars, host);
    resolve(&BecomeKeywords::of_play(play), &conn, host, cli_password)
}

/// Ansible's booleans (`yes`, `on`, `1`, ...), as YAML or strings.
fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "f" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> VarMap {
        serde_json::from_value(v).unwrap()
    }

    fn keywords(on: Option<bool>, user: Option<&str>) -> BecomeKeywords {
        BecomeKeywords {
            on,
            user: user.map(str::to_owned),
        }
    }

    #[test]
    fn keywords_alone_decide_without_vars() {
        let got = resolve(
            &keywords(Some(true), Some("app")),
            &VarMap::new(),
            "h1",
            None,
        );
        assert_eq!(got, Ok(Some(Become::user("app"))));
        let got = resolve(&keywords(None, Some("app")), &VarMap::new(), "h1", None);
        assert_eq!(got, Ok(None));
    }

    #[test]
    fn connection_vars_override_the_keywords() {
        let v = vars(json!({"ansible_become": "no"}));
        assert_eq!(
            resolve(&keywords(Some(true), None), &v, "h1", None),
            Ok(None)
        );
        let v = vars(json!({"ansible_become": true, "ansible_become_user": "db"}));
        assert_eq!(
            resolve(&keywords(Some(false), Some("app")), &v, "h1", None),
            Ok(Some(Become::user("db")))
        );
    }

    #[test]
    fn a_method_other_than_sudo_is_refused_naming_the_host() {
        let v = vars(json!({"ansible_become": true, "ansible_become_method": "su"}));
        let err = resolve(&keywords(None, None), &v, "h2", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host h2: ansible_become_method `su` is not supported: convoy becomes another user with sudo only (set ansible_become_method: sudo, or remove it)"
        );
        let v = vars(json!({"ansible_become_method": "sudo"}));
        assert_eq!(
            resolve(&keywords(Some(true), None), &v, "h2", None),
            Ok(Some(Become::user("root")))
        );
    }

    #[test]
    fn a_password_variable_overrides_the_command_line_and_the_last_one_set_wins() {
        let cli = BecomePassword::new("from-cli");
        let on = keywords(Some(true), None);
        let password = |v: Value| {
            resolve(&on, &vars(v), "h1", cli.as_ref())
                .unwrap()
                .unwrap()
                .password
        };
        assert_eq!(password(json!({})), cli);
        assert_eq!(
            password(json!({"ansible_become_pass": "p2", "ansible_become_password": "p1"})),
            BecomePassword::new("p2")
        );
        assert_eq!(
            password(json!({"ansible_become_password": "p1", "ansible_sudo_pass": null})),
            BecomePassword::new("p1")
        );
        // Set but empty: no password, as ansible-core (then `sudo -n`).
        assert_eq!(password(json!({"ansible_become_password": ""})), None);
        assert_eq!(
            password(json!({"ansible_become_password": 1234})),
            BecomePassword::new("1234")
        );
    }

    #[test]
    fn a_password_that_is_no_string_is_refused_without_showing_it() {
        let v = vars(json!({"ansible_become_password": ["s3cret"]}));
        let err = resolve(&keywords(Some(true), None), &v, "h1", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host h1: ansible_become_password must be a string (a password)"
        );
    }
}
