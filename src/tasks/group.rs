//! `group`: a local group present (with a `gid`) or absent, through
//! groupadd/groupmod/groupdel as ansible-core's Linux implementation does:
//! the group is looked up with `getent` (NSS, like Python's `grp`), created
//! with `-g GID` (`-o` with `non_unique`) or `-r` (`system`), given a new
//! GID when it differs, removed (`-f` with `force`). In check mode nothing
//! runs and the task says whether it would change; the registered result
//! has ansible-core's keys (`name`, `state`, `gid`, `system`).
//!
//! Not supported: `local` (lgroupadd), `gid_min`, `gid_max`.

use serde::Deserialize;

use super::file::lenient;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{ShellScript, TransportError};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "group",
    args: &["name", "state", "gid", "system", "force", "non_unique"],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Group::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    gid: Option<u64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    system: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    force: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    non_unique: bool,
}

struct Group {
    name: String,
    present: bool,
    gid: Option<u64>,
    system: bool,
    force: bool,
    non_unique: bool,
}

impl Group {
    fn new(a: Args) -> Result<Self, String> {
        let Some(name) = a.name.filter(|n| !n.is_empty()) else {
            return Err("missing required arguments: name".into());
        };
        let present = match a.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            other => {
                return Err(format!(
                    "value of state must be one of: absent, present, got: {other}"
                ));
            }
        };
        if a.non_unique && a.gid.is_none() {
            return Err("non_unique is True but all of the following are missing: gid".into());
        }
        Ok(Self {
            name,
            present,
            gid: a.gid,
            system: a.system,
            force: a.force,
            non_unique: a.non_unique,
        })
    }

    /// One round trip: look up, act (unless checking), look up again.
    /// Prints `had=0|1`, `ran=0|1` (a command ran, or would have),
    /// `gid=N` when the group exists afterwards; a command's error on stderr
    /// with `rc=N`.
    fn script(&self, check: bool) -> ShellScript {
        ShellScript::new()
            .var("N", &self.name)
            .var("G", self.gid.map(|g| g.to_string()).unwrap_or_default())
            .flag("PRESENT", self.present)
            .flag("CHECK", check)
            .flag("SYS", self.system)
            .flag("FORCE", self.force)
            .flag("NONU", self.non_unique)
            .code(GROUP_SCRIPT)
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let script = self.script(ctx.check);
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        let field = |key: &str| out.field(key);
        let (had, ran) = (field("had"), field("ran"));
        if had.is_none() {
            return Ok(Outcome::failed(format!(
                "cannot look the group up: {}",
                out.stderr_str().trim()
            )));
        }
        if let Some(failed) = super::user::command_failed(&out, &self.name) {
            return Ok(failed);
        }
        let changed = ran.as_deref() == Some("1");
        // ansible-core's check mode ends early, with `changed` alone, when
        // the group would be created or removed.
        if ctx.check && changed && (had.as_deref() == Some("1")) != self.present {
            return Ok(Outcome::changed(true));
        }
        let mut outcome = Outcome::changed(changed)
            .with("name", self.name.clone())
            .with("state", if self.present { "present" } else { "absent" });
        outcome = super::user::with_stderr(outcome, &out.stderr_str());
        if let Some(gid) = field("gid").and_then(|g| g.parse::<u64>().ok()) {
            outcome = outcome.with("system", self.system).with("gid", gid);
        }
        Ok(outcome)
    }
}

/// See [`Group::script`]. groupadd and friends live in sbin, which a
/// non-root login's PATH may lack.
const GROUP_SCRIPT: &str = r#"PATH=$PATH:/usr/sbin:/sbin
convoy_gid() { getent group "$N" | cut -d: -f3; }
if getent group "$N" >/dev/null 2>&1; then had=1; else had=0; fi
echo "had=$had"
set --
if [ "$PRESENT" = 0 ]; then
  if [ "$had" = 1 ]; then
    set -- groupdel
    [ "$FORCE" = 1 ] && set -- "$@" -f
  fi
elif [ "$had" = 0 ]; then
  set -- groupadd
  if [ -n "$G" ]; then
    set -- "$@" -g "$G"
    [ "$NONU" = 1 ] && set -- "$@" -o
  fi
  [ "$SYS" = 1 ] && set -- "$@" -r
elif [ -n "$G" ] && [ "$(convoy_gid)" != "$G" ]; then
  set -- groupmod -g "$G"
  [ "$NONU" = 1 ] && set -- "$@" -o
fi
if [ "$#" -gt 0 ]; then
  echo "ran=1"
  if [ "$CHECK" = 0 ]; then
    "$@" "$N" >&2
    echo "rc=$?"
  fi
fi
if getent group "$N" >/dev/null 2>&1; then echo "gid=$(convoy_gid)"; fi
"#;

super::action_by_async_run!(Group);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| Group::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"name": "g", "gid": "1234", "system": "yes"})).is_ok());
        assert!(build(serde_json::json!({"gid": 1})).is_err());
        assert!(build(serde_json::json!({"name": "g", "state": "gone"})).is_err());
        assert!(build(serde_json::json!({"name": "g", "non_unique": true})).is_err());
        assert!(build(serde_json::json!({"name": "g", "local": true})).is_err());
    }
}
