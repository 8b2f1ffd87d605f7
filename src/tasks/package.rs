//! `package`: the host's own package manager's module, chosen as
//! ansible-core's action plugin chooses it: `use`, else the variable
//! `ansible_package_use`, else the gathered fact `pkg_mgr`, else the fact
//! gathered there and then (one round trip, nothing kept). The arguments
//! go to that module as given. convoy has one such module, `apt`: any
//! other package manager is a failure that names it.

use serde::Deserialize;

use super::apt::{ARGS as APT_ARGS, Apt};
use super::file::lenient;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::facts::Subset;
use crate::transport::{Script, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "package",
    args: ARGS,
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Package::new(args)?)),
};

/// `use`, and the arguments of the one backend convoy has.
const ARGS: &[&str] = &{
    let mut all = [""; APT_ARGS.len() + 1];
    all[0] = "use";
    let mut i = 0;
    while i < APT_ARGS.len() {
        all[i + 1] = APT_ARGS[i];
        i += 1;
    }
    all
};

#[derive(Deserialize)]
struct Use {
    #[serde(default, rename = "use", deserialize_with = "lenient::opt_string")]
    backend: Option<String>,
}

struct Package {
    /// `use` when given and not `auto`.
    backend: Option<String>,
    apt: Apt,
}

impl Package {
    fn new(mut args: Value) -> Result<Self, String> {
        let Use { backend } = serde_json::from_value(
            args.get("use")
                .map(|u| serde_json::json!({ "use": u }))
                .unwrap_or_else(|| serde_json::json!({})),
        )
        .map_err(|e| e.to_string())?;
        if let Value::Object(map) = &mut args {
            map.remove("use");
        }
        let backend = backend.filter(|b| b != "auto");
        // Checked as apt's arguments whatever the host turns out to run:
        // apt is the only backend convoy has.
        let apt = Apt::new(parse_args(args)?)?;
        Ok(Self { backend, apt })
    }

    /// The package manager this host's task goes to, as ansible-core finds it.
    async fn backend(
        &self,
        ctx: &ActionContext<'_>,
    ) -> Result<Result<String, String>, TransportError> {
        if let Some(b) = &self.backend {
            return Ok(Ok(b.clone()));
        }
        if let Some(b) = ctx
            .vars
            .get("ansible_package_use")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty() && *b != "auto")
        {
            return Ok(Ok(b.to_owned()));
        }
        if let Some(b) = ctx
            .vars
            .get("ansible_facts")
            .and_then(|f| f.get("pkg_mgr"))
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
        {
            return Ok(Ok(b.to_owned()));
        }
        // No facts: gather the one needed, as the action plugin does
        // (`setup` with gather_subset=!all, filter=ansible_pkg_mgr).
        let script = crate::facts::script();
        let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
        if !out.success() {
            return Ok(Err(format!(
                "Failed to fetch ansible_pkg_mgr to determine the package action backend: {}",
                out.stderr_str().trim()
            )));
        }
        let subset = Subset::parse(&["!all".to_owned()]).expect("`!all` is a subset");
        let facts =
            crate::facts::from_output(&out.stdout_str(), &subset, &["ansible_pkg_mgr".to_owned()]);
        Ok(facts
            .get("pkg_mgr")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty() && *b != "unknown")
            .map(str::to_owned)
            .ok_or_else(|| {
                "Could not detect a package manager. Try using the \"use\" option.".to_owned()
            }))
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        match self.backend(ctx).await? {
            Err(msg) => Ok(Outcome::failed(msg)),
            Ok(b) if b == "apt" || b == "ansible.builtin.apt" => self.apt.run(ctx).await,
            Ok(b) => Ok(Outcome::failed(format!(
                "the package manager of this host is {b}: convoy's package module drives apt only"
            ))),
        }
    }
}

super::action_by_async_run!(Package);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| Package::new(v).map(|p| p.backend);
        assert_eq!(build(serde_json::json!({"name": "a"})), Ok(None));
        assert_eq!(
            build(serde_json::json!({"name": "a", "use": "auto"})),
            Ok(None)
        );
        assert_eq!(
            build(serde_json::json!({"name": "a", "use": "dnf"})),
            Ok(Some("dnf".to_owned()))
        );
        assert!(build(serde_json::json!({"name": "a", "state": "gone"})).is_err());
        assert!(ARGS.contains(&"use") && ARGS.contains(&"update_cache"));
    }
}
