//! `service`: what ansible-core's `service` action does, which is to pick
//! a module by the host's service manager (the `service_mgr` fact, or
//! gathered for the task when the play has not gathered it, or `use:`):
//! `systemd` hands the task to [`super::systemd`] (without `pattern`,
//! `sleep`, `arguments` and `runlevel`, as ansible-core drops them); a
//! manager ansible-core has a module of its own for (`sysvinit`,
//! `openwrt_init`) is refused, naming it, since convoy does not implement
//! those; any other (a container's PID 1, `service`, `upstart`, ...) gets
//! the `service` module's LinuxService, in [`super::init_script`].

use serde::Deserialize;

use super::file::lenient;
use super::init_script::InitScript;
use super::systemd::Systemd;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{Script, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "service",
    args: &[
        "name",
        "state",
        "enabled",
        "sleep",
        "pattern",
        "runlevel",
        "arguments",
        "args",
        "use",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Service::new(parse_args(args)?)?)),
};

/// The running state asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

impl State {
    pub(super) fn parse(s: &str) -> Result<State, String> {
        Ok(match s {
            "started" => State::Started,
            "stopped" => State::Stopped,
            "restarted" => State::Restarted,
            "reloaded" => State::Reloaded,
            other => {
                return Err(format!(
                    "value of state must be one of: reloaded, restarted, started, stopped, got: {other}"
                ));
            }
        })
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Stopped => "stopped",
            State::Restarted => "restarted",
            State::Reloaded => "reloaded",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    sleep: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pattern: Option<String>,
    /// OpenRC's only; accepted as ansible-core accepts it.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    #[allow(dead_code)]
    runlevel: Option<String>,
    #[serde(default, alias = "args", deserialize_with = "lenient::opt_string")]
    arguments: Option<String>,
    #[serde(default, rename = "use", deserialize_with = "lenient::opt_string")]
    use_: Option<String>,
}

/// Which module does the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    /// Decided on the host, from its `service_mgr`.
    Auto,
    Systemd,
    /// ansible-core's `service` module (LinuxService).
    Service,
}

struct Service {
    manager: Manager,
    init_script: InitScript,
}

impl Service {
    fn new(a: Args) -> Result<Self, String> {
        let Some(name) = a.name.filter(|n| !n.is_empty()) else {
            return Err("missing required arguments: name".into());
        };
        let state = a.state.as_deref().map(State::parse).transpose()?;
        if state.is_none() && a.enabled.is_none() {
            return Err("one of the following is required: state, enabled".into());
        }
        let manager = match a.use_.as_deref().map(str::to_lowercase).as_deref() {
            None | Some("auto") => Manager::Auto,
            Some("systemd") => Manager::Systemd,
            Some("service") => Manager::Service,
            Some(other) => {
                return Err(format!(
                    "use: `{other}` is not supported: convoy's service runs systemd or ansible-core's service module (use: auto, systemd or service)"
                ));
            }
        };
        let arguments = a.arguments.unwrap_or_default();
        let arguments = shlex::split(&arguments)
            .ok_or_else(|| format!("cannot split arguments `{arguments}`"))?;
        Ok(Self {
            manager,
            init_script: InitScript {
                name,
                state,
                enabled: a.enabled,
                sleep: a.sleep,
                pattern: a.pattern,
                arguments,
            },
        })
    }

    /// The host's `service_mgr`: the play's facts, else gathered now
    /// (ansible-core runs `setup` with `filter=ansible_service_mgr`).
    async fn service_mgr(&self, ctx: &ActionContext<'_>) -> Result<String, TransportError> {
        let known = ctx
            .vars
            .get("ansible_facts")
            .and_then(|f| f.get("service_mgr"))
            .and_then(Value::as_str);
        if let Some(mgr) = known {
            return Ok(mgr.to_owned());
        }
        let script = crate::facts::script();
        let out = ctx.conn.exec(Script::new(&script)).await?;
        let subset = crate::facts::Subset::parse(&["!all".into(), "service_mgr".into()])
            .expect("a fixed subset");
        let facts = crate::facts::from_output(&out.stdout_str(), &subset, &[]);
        Ok(facts
            .get("service_mgr")
            .and_then(Value::as_str)
            .unwrap_or("service")
            .to_owned())
    }

    fn systemd(&self) -> Systemd {
        let s = &self.init_script;
        Systemd::for_service(s.name.clone(), s.state, s.enabled)
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        match self.manager {
            Manager::Systemd => return self.systemd().run(ctx).await,
            Manager::Service => return self.init_script.run(ctx).await,
            Manager::Auto => {}
        }
        match self.service_mgr(ctx).await?.as_str() {
            "systemd" => self.systemd().run(ctx).await,
            mgr @ ("sysvinit" | "openwrt_init") => Ok(Outcome::failed(format!(
                "the host's service manager is {mgr}, for which ansible-core runs its {mgr} module: convoy does not implement it (use: service runs ansible-core's service module instead)"
            ))),
            _ => self.init_script.run(ctx).await,
        }
    }
}

super::action_by_async_run!(Service);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| Service::new(parse_args(v)?).map(|s| s.manager);
        assert_eq!(
            build(serde_json::json!({"name": "a", "state": "started", "args": "-x 'y z'"})),
            Ok(Manager::Auto)
        );
        assert_eq!(
            build(serde_json::json!({"name": "a", "enabled": true, "use": "systemd"})),
            Ok(Manager::Systemd)
        );
        assert_eq!(
            build(serde_json::json!({"name": "a"})).unwrap_err(),
            "one of the following is required: state, enabled"
        );
        assert!(build(serde_json::json!({"name": "a", "state": "up"})).is_err());
        assert!(build(serde_json::json!({"name": "a", "enabled": 1, "use": "openrc"})).is_err());
        assert!(build(serde_json::json!({"name": "a", "enabled": 1, "masked": true})).is_err());
        assert!(build(serde_json::json!({"state": "started"})).is_err());
    }
}
