//! `debug`: print a message or a variable.

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "debug",
    args: &["msg", "var", "verbosity"],
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
    msg: Option<Value>,
    var: Option<String>,
    #[allow(dead_code)]
    verbosity: Option<u8>,
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            Ok(match (&self.msg, &self.var) {
                (_, Some(var)) => match ctx.templates.eval(var, ctx.vars, var) {
                    Ok(v) => Outcome::ok()
                        .with_msg(format!("{var}: {}", display(&v)))
                        .with(var, v),
                    Err(e) => Outcome::failed(e.to_string()),
                },
                (Some(msg), None) => Outcome::ok().with_msg(display(msg)),
                (None, None) => Outcome::ok().with_msg("Hello world!"),
            })
        })
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
