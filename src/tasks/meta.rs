//! `meta`: directions to the run itself rather than to a host. convoy
//! knows `flush_handlers` (the handlers notified so far run now, as at the
//! end of the play), `noop`, `end_host` (this host takes no further part in
//! the play) and `end_play` (no host does, nor do later `serial` batches);
//! the run loop acts on them (`run/meta_direction.rs`) and, as in
//! ansible-core, they count in no recap. Ansible's other directions are
//! refused when the playbook is loaded.

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
    EndHost,
    EndPlay,
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
            "end_host" => Ok(Meta::EndHost),
            "end_play" => Ok(Meta::EndPlay),
            "end_batch" | "end_role" | "clear_facts" | "clear_host_errors"
            | "refresh_inventory" | "reset_connection" => Err(format!(
                "`{word}` is not supported by convoy (it knows flush_handlers, noop, end_host and end_play)"
            )),
            "" => Err("no direction given (flush_handlers, noop, end_host or end_play)".into()),
            other => Err(format!(
                "invalid meta action requested: {other} (convoy knows flush_handlers, noop, end_host and end_play)"
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
        assert_eq!(meta("end_play"), Ok(Meta::EndPlay));
        assert_eq!(meta("end_host"), Ok(Meta::EndHost));
        assert!(meta("end_batch").unwrap_err().contains("not supported"));
        assert!(
            meta("flush_handler")
                .unwrap_err()
                .contains("invalid meta action")
        );
        assert!(meta("").is_err());
    }
}
