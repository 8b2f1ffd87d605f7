//! `setup`: gather the host's facts (see `crate::facts`), as the play's
//! implicit "Gathering Facts" task does. It never changes anything.

use serde::Deserialize;

use super::{Action, ActionContext, BoxFuture, ModuleSpec, Outcome, boxed, parse_args};
use crate::facts::Subset;
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "setup",
    args: &["gather_subset", "filter", "gather_timeout", "fact_path"],
    free_form: false,
    any_name: false,
    build: |args| {
        let a: Args = parse_args(args)?;
        let subset = Subset::parse(&a.gather_subset.into_list()).map_err(|e| e.to_string())?;
        if a.fact_path.is_some() {
            return Err("fact_path (local facts) is not supported by convoy".into());
        }
        Ok(Box::new(Setup {
            subset,
            filter: a.filter.into_list(),
        }))
    },
};

/// A string or a list of strings (`gather_subset: network` or `[network, "!min"]`).
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Names {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn into_list(self) -> Vec<String> {
        match self {
            Names::None => vec![],
            // Ansible splits a comma-separated string.
            Names::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Names::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    gather_subset: Names,
    #[serde(default)]
    filter: Names,
    /// Accepted: the gathering is one script whose time the task's own
    /// `timeout` bounds.
    #[serde(default)]
    #[allow(dead_code)]
    gather_timeout: Option<Value>,
    #[serde(default)]
    fact_path: Option<Value>,
}

struct Setup {
    subset: Subset,
    filter: Vec<String>,
}

impl Action for Setup {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let script = crate::facts::script();
            // With `environment:`, as ansible-core's setup runs with it:
            // `ansible_env` holds it, a `TZ` sets `ansible_date_time`'s zone.
            let out = ctx.conn.exec(ctx.script(&script)).await?;
            let facts = crate::facts::from_output(&out.stdout_str(), &self.subset, &self.filter);
            let mut outcome = Outcome::ok().with(
                "ansible_facts",
                Value::Object(crate::facts::as_returned(&facts)),
            );
            outcome.gathered = facts;
            Ok(outcome)
        })
    }
}
