//! `meta`: directions to the run itself rather than to a host. convoy
//! knows `flush_handlers` (the handlers notified so far run now, as at the
//! end of the play) and `noop`; the run loop acts on them
//! (`run/task_runner.rs`) and, as in ansible-core, they count in no recap.
//! `end_play`, `end_host` and Ansible's other directions are refused when
//! the playbook is loaded.

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "meta",
    args: &["_raw_params"],
    free_form: true,
    any_name: false,
    build: |args| Ok(Box::new(Meta::from_args(&args)?)),
};

/// A direction convoy carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    FlushHandlers,
    Noop,
}

impl Meta {
    /// The direction a `meta` task's arguments give.
    pub fn from_args(args: &Value) -> Result<Meta, String> {
        let word = args
            .get("_raw_params")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        match word {
            "flush_handlers" => Ok(Meta::FlushHandlers),
            "noop" => Ok(Meta::Noop),
            "end_play" | "end_host" | "end_batch" | "end_role" | "clear_facts"
            | "clear_host_errors" | "refresh_inventory" | "reset_connection" => Err(format!(
                "`{word}` is not supported by convoy (it knows flush_handlers and noop)"
            )),
            "" => Err("no direction given (flush_handlers or noop)".into()),
            other => Err(format!(
                "invalid meta action requested: {other} (convoy knows flush_handlers and noop)"
            )),
        }
    }
}

impl Action for Meta {
    fn run<'a>(
        &'a self,
        _ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        // The run loop carries out the directions; on a host there is nothing to do.
        boxed(async move { Ok(Outcome::ok()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        let meta = |w: &str| Meta::from_args(&serde_json::json!({"_raw_params": w}));
        assert_eq!(meta("flush_handlers"), Ok(Meta::FlushHandlers));
        assert_eq!(meta(" noop "), Ok(Meta::Noop));
        assert!(meta("end_play").unwrap_err().contains("not supported"));
        assert!(
            meta("flush_handler")
                .unwrap_err()
                .contains("invalid meta action")
        );
        assert!(meta("").is_err());
    }
}
