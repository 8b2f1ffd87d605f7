//! `systemd` / `systemd_service`: a unit started, stopped, restarted or
//! reloaded, enabled or disabled, masked or unmasked, and `daemon-reload` /
//! `daemon-reexec`, through `systemctl` as ansible-core's
//! `systemd_service.py` drives it, call for call: `show` parsed into the
//! registered `status` (a unit it cannot show is looked for with
//! `is-enabled`, then `list-unit-files`, then a bare `systemctl` that must
//! succeed), `is-enabled` (`-l`) for the boot state, the unit's
//! `ActiveState` for the running state, and the same messages on failure.
//! Check mode runs only the queries. The unit's init script, when it has
//! one, counts as ansible-core counts it (`/etc/init.d/NAME` executable, an
//! `S??NAME` link in `/etc/rc?.d`).
//!
//! Each `systemctl` call is one round trip, with the task's `environment:`
//! and `XDG_RUNTIME_DIR` set as the module sets it.

use serde::Deserialize;

use super::file::lenient;
use super::service::State;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{ShellScript, TransportError};
use crate::vars::{Value, VarMap};

const ARGS: &[&str] = &[
    "name",
    "service",
    "unit",
    "state",
    "enabled",
    "force",
    "masked",
    "daemon_reload",
    "daemon-reload",
    "daemon_reexec",
    "daemon-reexec",
    "scope",
    "no_block",
];

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "systemd",
    args: ARGS,
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Systemd::new(parse_args(args)?)?)),
};

pub static SERVICE_SPEC: ModuleSpec = ModuleSpec {
    name: "systemd_service",
    ..SPEC
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(
        default,
        alias = "service",
        alias = "unit",
        deserialize_with = "lenient::opt_string"
    )]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    force: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    masked: Option<bool>,
    #[serde(
        default,
        alias = "daemon-reload",
        deserialize_with = "lenient::boolean"
    )]
    daemon_reload: bool,
    #[serde(
        default,
        alias = "daemon-reexec",
        deserialize_with = "lenient::boolean"
    )]
    daemon_reexec: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    scope: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    no_block: bool,
}

pub(super) struct Systemd {
    unit: Option<String>,
    state: Option<State>,
    enabled: Option<bool>,
    masked: Option<bool>,
    force: bool,
    daemon_reload: bool,
    daemon_reexec: bool,
    scope: String,
    no_block: bool,
}

/// What one command printed and how it ended.
struct Ran {
    rc: i32,
    out: String,
    err: String,
}

/// The unit states `systemctl is-enabled` prints for a unit it knows
/// (systemctl(1) of systemd 244, as the module lists them).
const ENABLED_STATES: &[&str] = &[
    "enabled",
    "enabled-runtime",
    "linked",
    "linked-runtime",
    "masked",
    "masked-runtime",
    "static",
    "indirect",
    "disabled",
    "generated",
    "transient",
];

impl Systemd {
    fn new(a: Args) -> Result<Self, String> {
        let state = a.state.as_deref().map(State::parse).transpose()?;
        let scope = a.scope.unwrap_or_else(|| "system".into());
        if !["system", "user", "global"].contains(&scope.as_str()) {
            return Err(format!(
                "value of scope must be one of: system, user, global, got: {scope}"
            ));
        }
        if state.is_none()
            && a.enabled.is_none()
            && a.masked.is_none()
            && !a.daemon_reload
            && !a.daemon_reexec
        {
            return Err(
                "one of the following is required: state, enabled, masked, daemon_reload, daemon_reexec"
                    .into(),
            );
        }
        if a.name.is_none() {
            for (key, given) in [
                ("state", state.is_some()),
                ("enabled", a.enabled.is_some()),
                ("masked", a.masked.is_some()),
            ] {
                if given {
                    return Err(format!("missing parameter(s) required by '{key}': name"));
                }
            }
        }
        Ok(Self {
            unit: a.name,
            state,
            enabled: a.enabled,
            masked: a.masked,
            force: a.force.unwrap_or(false),
            daemon_reload: a.daemon_reload,
            daemon_reexec: a.daemon_reexec,
            scope,
            no_block: a.no_block,
        })
    }

    /// What ansible-core's `service` hands to this module on a systemd
    /// host (its `pattern`, `sleep`, `arguments` and `runlevel` dropped).
    pub(super) fn for_service(unit: String, state: Option<State>, enabled: Option<bool>) -> Self {
        Self {
            unit: Some(unit),
            state,
            enabled,
            masked: None,
            force: false,
            daemon_reload: false,
            daemon_reexec: false,
            scope: "system".into(),
            no_block: false,
        }
    }

    pub(super) async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        if let Some(unit) = &self.unit
            && let Some(glob) = ["*", "?", "["].iter().find(|g| unit.contains(**g))
        {
            return Ok(Outcome::failed(format!(
                "This module does not currently support using glob patterns, found '{glob}' in service name: {unit}"
            )));
        }
        let probe = ShellScript::new()
            .var("N", self.unit.clone().unwrap_or_default())
            .code(PROBE_SCRIPT);
        let found = ctx.conn.exec(ctx.script(&probe)).await?;
        let Some(systemctl) = found.field("systemctl").filter(|s| !s.is_empty()) else {
            return Ok(Outcome::failed(format!(
                "Failed to find required executable \"systemctl\" in paths: {}",
                found.field("path").unwrap_or_default()
            )));
        };
        let offline = found.field("offline").as_deref() == Some("1");
        let is_initd = found.field("initd").as_deref() == Some("1");
        let sysv_enabled = found.field("sysv_enabled").as_deref() == Some("1");

        let mut base = vec![systemctl.clone()];
        if self.scope != "system" {
            base.push(format!("--{}", self.scope));
        }
        if self.no_block {
            base.push("--no-block".into());
        }
        if self.force {
            base.push("--force".into());
        }
        let call = |words: &[&str]| {
            let mut argv = base.clone();
            argv.extend(words.iter().map(|w| w.to_string()));
            self.systemctl(ctx, argv)
        };

        let mut result = Outcome::ok()
            .with("name", self.unit.clone().map_or(Value::Null, Value::from))
            .with("status", Value::Object(VarMap::new()));

        for (wanted, what) in [
            (self.daemon_reload, "daemon-reload"),
            (self.daemon_reexec, "daemon-reexec"),
        ] {
            if wanted && !ctx.check {
                let ran = call(&[what]).await?;
                // Offline (a chroot, SYSTEMD_OFFLINE=1), ansible-core warns and goes on.
                if ran.rc != 0 && !offline {
                    return Ok(Outcome::failed(format!(
                        "failure {} during {what}: {}",
                        ran.rc, ran.err
                    )));
                }
            }
        }

        let Some(unit) = self.unit.as_deref() else {
            return Ok(result);
        };
        let mut status = VarMap::new();
        let mut is_systemd = false;
        let shown = call(&["show", unit]).await?;
        if shown.rc == 0 && !request_was_ignored(&shown.out) && !request_was_ignored(&shown.err) {
            if !shown.out.is_empty() {
                status = parse_show(&shown.out);
                let load = status.get("LoadState").and_then(Value::as_str);
                is_systemd = load.is_some_and(|l| l != "not-found");
                let masked = load == Some("masked");
                if is_systemd
                    && !masked
                    && let Some(error) = status.get("LoadError").and_then(Value::as_str)
                {
                    return Ok(Outcome::failed(format!(
                        "Error loading unit file '{unit}': {error}"
                    )));
                }
            }
        } else if shown.rc == 1 && shown.err.contains("Failed to parse bus message") {
            // ansible-core's workaround for systemd's issue 71528.
            status = parse_show(&shown.out);
            let (base_name, sep, _) = match unit.split_once('@') {
                Some((b, _)) => (b, "@", ()),
                None => (unit, "", ()),
            };
            let search = format!("{base_name}{sep}");
            let listed = call(&["list-unit-files", &format!("{search}*")]).await?;
            is_systemd = listed.out.contains(&search);
            let active = call(&["is-active", unit]).await?;
            status.insert(
                "ActiveState".into(),
                active.out.trim_end_matches('\n').into(),
            );
        } else {
            // A unit file systemctl knows, offline too (`list-unit-files`
            // asked only when `is-enabled` does not say).
            let state = call(&["is-enabled", unit]).await?;
            is_systemd = ENABLED_STATES.contains(&state.out.trim())
                || call(&["list-unit-files", unit]).await?.rc == 0;
            if !is_systemd {
                // The module's last resort: systemctl itself must work.
                let bare = self.systemctl(ctx, base.clone()).await?;
                if bare.rc != 0 {
                    return Ok(Outcome::failed(bare.err.trim_end().to_owned())
                        .with("cmd", base.join(" "))
                        .with("rc", bare.rc)
                        .with("stdout_lines", bare.out.lines().collect::<Vec<_>>())
                        .with("stderr_lines", bare.err.lines().collect::<Vec<_>>())
                        .with("stdout", bare.out.clone())
                        .with("stderr", bare.err.clone()));
                }
            }
        }
        result = result.with("status", Value::Object(status.clone()));
        let found = is_systemd || is_initd;
        let missing =
            || Outcome::failed(format!("Could not find the requested service {unit}: host"));

        if let Some(want_masked) = self.masked {
            let state = call(&["is-enabled", unit]).await?;
            let masked = state.out.trim() == "masked";
            if masked != want_masked {
                result.changed = true;
                let action = if want_masked { "mask" } else { "unmask" };
                if !ctx.check {
                    let ran = call(&[action, unit]).await?;
                    if ran.rc != 0 {
                        if !found {
                            return Ok(missing());
                        }
                        return Ok(Outcome::failed(format!(
                            "Failed to {action} the service ({unit}): {}",
                            ran.err.trim()
                        )));
                    }
                }
            }
        }

        if let Some(want) = self.enabled {
            let action = if want { "enable" } else { "disable" };
            if !found {
                return Ok(missing());
            }
            let state = call(&["is-enabled", unit, "-l"]).await?;
            let enabled = match state.rc {
                // Enabled, unless only for now, indirectly or as an alias:
                // the module then enables it anyway.
                0 => !["enabled-runtime", "indirect", "alias"].contains(&state.out.trim_end()),
                1 => {
                    self.scope == "system"
                        && is_initd
                        && !state.out.trim().ends_with("disabled")
                        && sysv_enabled
                }
                _ => false,
            };
            result = result.with("enabled", enabled);
            if enabled != want {
                result.changed = true;
                if !ctx.check {
                    let ran = call(&[action, unit]).await?;
                    if ran.rc != 0 {
                        return Ok(Outcome::failed(format!(
                            "Unable to {action} service {unit}: {}{}",
                            ran.out, ran.err
                        )));
                    }
                }
                result = result.with("enabled", !enabled);
            }
        }

        if let Some(state) = self.state {
            if !found {
                return Ok(missing());
            }
            result = result.with("state", state.as_str());
            match status.get("ActiveState").and_then(Value::as_str) {
                Some(active) => {
                    let running = matches!(active, "active" | "activating");
                    let action = match state {
                        State::Started => (!running).then_some("start"),
                        State::Stopped => (running || active == "deactivating").then_some("stop"),
                        State::Restarted | State::Reloaded => {
                            result = result.with("state", "started");
                            Some(match (running, state) {
                                (false, _) => "start",
                                (true, State::Restarted) => "restart",
                                _ => "reload",
                            })
                        }
                    };
                    if let Some(action) = action {
                        result.changed = true;
                        if !ctx.check {
                            let ran = call(&[action, unit]).await?;
                            if ran.rc != 0 {
                                return Ok(Outcome::failed(format!(
                                    "Unable to {action} service {unit}: {}",
                                    ran.err
                                )));
                            }
                        }
                    }
                }
                // Offline, ansible-core warns and reports what it has.
                None if offline => {}
                None => {
                    return Ok(Outcome::failed("Service is in unknown state")
                        .with("status", Value::Object(status)));
                }
            }
        }
        Ok(result)
    }

    /// One `systemctl` call (`argv` starts with its path), one round trip.
    async fn systemctl(
        &self,
        ctx: &ActionContext<'_>,
        argv: Vec<String>,
    ) -> Result<Ran, TransportError> {
        let script = ShellScript::new().args(argv).code(CALL_SCRIPT);
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        Ok(Ran {
            rc: out.status,
            out: out.stdout_str(),
            err: out.stderr_str(),
        })
    }
}

/// Finds systemctl as the module's `get_bin_path` does (the PATH and the
/// sbin and bin directories), and what it asks of the host besides: is it
/// a chroot (`is_chroot`: `/` is not PID 1's root) or is systemd declared
/// offline, and is `$N` an init script, enabled in some runlevel.
const PROBE_SCRIPT: &str = r#"P=$PATH:/sbin:/usr/sbin:/bin:/usr/bin
echo "path=$P"
echo "systemctl=$(PATH=$P command -v systemctl)"
offline=0
if [ -n "$debian_chroot" ] || [ "$SYSTEMD_OFFLINE" = 1 ]; then offline=1
elif r=$(stat -c %d:%i /proc/1/root/. 2>/dev/null); then
  [ "$r" = "$(stat -c %d:%i /)" ] || offline=1
elif [ "$(stat -c %i /)" != 2 ]; then offline=1
fi
echo "offline=$offline"
if [ -n "$N" ]; then
  [ -x "/etc/init.d/$N" ] && echo "initd=1"
  for l in /etc/rc?.d/S??"$N"; do [ -e "$l" ] || [ -L "$l" ] && { echo "sysv_enabled=1"; break; }; done
fi
exit 0
"#;

/// See [`Systemd::systemctl`]: `XDG_RUNTIME_DIR` as the module sets it
/// when unset (a `--user` call needs it).
const CALL_SCRIPT: &str = r#": "${XDG_RUNTIME_DIR:=/run/user/$(id -u)}"
export XDG_RUNTIME_DIR
"$@"
"#;

/// A reply of a systemd that was asked nothing (an old systemd answering
/// `show` on a system it does not run).
fn request_was_ignored(out: &str) -> bool {
    !out.contains('=') && (out.contains("ignoring request") || out.contains("ignoring command"))
}

/// `systemctl show` output as the module parses it: `KEY=value` lines,
/// values trimmed; only an `Exec…=` value that opens with `{` may go on
/// over the lines until one ends with `}` (a `Description={` alone must
/// not swallow the rest).
pub(super) fn parse_show(out: &str) -> VarMap {
    let mut parsed = VarMap::new();
    let mut multi: Vec<&str> = vec![];
    let mut key: Option<&str> = None;
    for line in out.split('\n') {
        match key {
            None => {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                if k.starts_with("Exec")
                    && v.trim_start().starts_with('{')
                    && !v.trim_end().ends_with('}')
                {
                    multi.push(v);
                    key = Some(k);
                    continue;
                }
                parsed.insert(k.to_owned(), v.trim().into());
            }
            Some(k) => {
                multi.push(line);
                if line.trim_end().ends_with('}') {
                    parsed.insert(k.to_owned(), multi.join("\n").trim().into());
                    multi.clear();
                    key = None;
                }
            }
        }
    }
    parsed
}

super::action_by_async_run!(Systemd);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_output_is_parsed_as_the_module_parses_it() {
        let out = "Id=cv.service\n\
                   Description={ not a command\n\
                   LoadState=loaded\n\
                   ExecStart={ path=/bin/sleep ; argv[]=/bin/sleep 100 ;\n  status=0/0 }\n\
                   ExecReload={ path=/bin/kill ; argv[]=/bin/kill -HUP $MAINPID }\n\
                   ActiveState=active \n\
                   no equals sign here\n\
                   Environment=A=b C=d\n";
        let parsed = parse_show(out);
        let get = |k: &str| parsed.get(k).and_then(Value::as_str).unwrap_or("<none>");
        assert_eq!(get("Description"), "{ not a command");
        assert_eq!(get("LoadState"), "loaded");
        assert_eq!(
            get("ExecStart"),
            "{ path=/bin/sleep ; argv[]=/bin/sleep 100 ;\n  status=0/0 }"
        );
        assert_eq!(
            get("ExecReload"),
            "{ path=/bin/kill ; argv[]=/bin/kill -HUP $MAINPID }"
        );
        assert_eq!(get("ActiveState"), "active");
        assert_eq!(get("Environment"), "A=b C=d");
        assert_eq!(parsed.len(), 7);
    }

    #[test]
    fn an_exec_value_never_closed_takes_the_rest() {
        let parsed = parse_show("ExecStart={ path=/x\nLoadState=loaded\n");
        assert_eq!(parsed.len(), 0, "{parsed:?}");
    }

    #[test]
    fn arguments() {
        let build = |v| Systemd::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"name": "a", "state": "started"})).is_ok());
        assert!(build(serde_json::json!({"daemon-reload": true})).is_ok());
        assert!(build(serde_json::json!({"unit": "a", "enabled": "yes"})).is_ok());
        assert_eq!(
            build(serde_json::json!({"name": "a"})).unwrap_err(),
            "one of the following is required: state, enabled, masked, daemon_reload, daemon_reexec"
        );
        assert_eq!(
            build(serde_json::json!({"state": "started"})).unwrap_err(),
            "missing parameter(s) required by 'state': name"
        );
        assert!(build(serde_json::json!({"name": "a", "state": "on"})).is_err());
        assert!(build(serde_json::json!({"name": "a", "scope": "box", "enabled": true})).is_err());
        assert!(build(serde_json::json!({"name": "a", "pattern": "x", "enabled": true})).is_err());
    }
}
