//! `assert`: every expression in `that` must hold.

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "assert",
    args: &["that", "fail_msg", "msg", "success_msg", "quiet"],
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
    that: Value,
    fail_msg: Option<String>,
    msg: Option<String>,
    success_msg: Option<String>,
    #[allow(dead_code)]
    quiet: Option<bool>,
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let conditions: Vec<String> = match &self.that {
                Value::Array(items) => items.iter().map(as_expr).collect(),
                other => vec![as_expr(other)],
            };
            for cond in &conditions {
                match ctx.templates.eval_bool(cond, ctx.vars, cond) {
                    Ok(true) => {}
                    Ok(false) => {
                        let msg = self
                            .fail_msg
                            .clone()
                            .or_else(|| self.msg.clone())
                            .unwrap_or_else(|| "Assertion failed".into());
                        return Ok(Outcome::failed(msg)
                            .with("assertion", cond.clone())
                            .with("evaluated_to", false));
                    }
                    Err(e) => return Ok(Outcome::failed(e.to_string())),
                }
            }
            Ok(Outcome::ok().with_msg(
                self.success_msg
                    .clone()
                    .unwrap_or_else(|| "All assertions passed".into()),
            ))
        })
    }
}

/// An already-rendered `that` item may be a bool (from `{{ x }}`): keep it an expression.
fn as_expr(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
