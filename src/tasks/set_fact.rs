//! `set_fact`: set host variables for the rest of the run.

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed};
use crate::transport::TransportError;
use crate::vars::{Value, VarMap};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "set_fact",
    // Any name is a fact; only Ansible's `cacheable` is reserved.
    args: &[],
    free_form: false,
    any_name: true,
    build: |args| match args {
        Value::Object(mut facts) => {
            facts.shift_remove("cacheable");
            Ok(Box::new(SetFact(facts)))
        }
        _ => Err("set_fact takes a mapping of names to values".into()),
    },
};

struct SetFact(VarMap);

impl Action for SetFact {
    fn run<'a>(
        &'a self,
        _ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            Ok(Outcome {
                facts: self.0.clone(),
                ..Outcome::ok()
            })
        })
    }
}
