//! `template`: render a Jinja template locally for this host, then install
//! it like `copy` (changed only when the result differs on the host).

use serde::Deserialize;

use super::attributes::Attributes;
use super::copy::put_content;
use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "template",
    args: &["src", "dest", "mode", "owner", "group", "force"],
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
    src: String,
    dest: String,
    mode: Option<Value>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default = "yes")]
    force: bool,
}

fn yes() -> bool {
    true
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let rendered = match ctx.templates.render_file(&self.src, ctx.vars) {
                Ok(text) => text,
                Err(e) => return Ok(Outcome::failed(e.to_string())),
            };
            let name = std::path::Path::new(&self.src)
                .file_name()
                .map(|n| n.to_string_lossy().trim_end_matches(".j2").to_owned());
            let attrs = match Attributes::from_args(
                self.mode.as_ref(),
                self.owner.clone(),
                self.group.clone(),
            ) {
                Ok(attrs) => attrs,
                Err(msg) => return Ok(Outcome::failed(msg)),
            };
            put_content(
                ctx,
                &self.dest,
                name.as_deref(),
                rendered.as_bytes(),
                &attrs,
                self.force,
            )
            .await
        })
    }
}
