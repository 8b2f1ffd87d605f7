//! `fail`: stop this host with a message.

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "fail",
    args: &["msg"],
    free_form: false,
    any_name: false,
    build: |args| {
        let a: Args = parse_args(args)?;
        Ok(Box::new(a))
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    msg: Option<String>,
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        _ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            Ok(Outcome::failed(
                self.msg
                    .clone()
                    .unwrap_or_else(|| "Failed as requested from task".into()),
            ))
        })
    }
}
