//! `template`: render a Jinja template locally for this host, then install
//! it like `copy` (changed only when the result differs on the host).

use serde::Deserialize;

use super::attributes::Attributes;
use super::copy::put_content;
use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::template::Templates;
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

/// The host's variables plus those ansible-core's `template` gives every
/// template: `ansible_managed` (ansible.cfg's, default "Ansible managed"),
/// `template_host`, `template_path`, `template_fullpath`,
/// `template_destpath`, `template_uid`. Variables of the same name the
/// play sets win, as a user-set `ansible_managed` does in ansible-core.
pub fn template_vars(templates: &Templates, host_vars: &Value, src: &str, dest: &str) -> Value {
    use std::os::unix::fs::MetadataExt;
    let full = templates
        .resolve(src)
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    let full_text = full.as_ref().map(|p| p.display().to_string());
    let uid = full
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| user_name(m.uid()))
        .unwrap_or_default();
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let host = HOST
        .get_or_init(|| whoami::hostname().unwrap_or_default())
        .clone();
    let managed = crate::ansible_cfg::AnsibleCfg::current()
        .ansible_managed
        .as_deref()
        .unwrap_or("Ansible managed")
        .replace("{host}", &host)
        .replace("{uid}", &uid)
        .replace("{file}", full_text.as_deref().unwrap_or(src));
    let mut vars = serde_json::Map::new();
    vars.insert("ansible_managed".into(), managed.into());
    vars.insert("template_host".into(), host.into());
    vars.insert("template_path".into(), src.into());
    vars.insert(
        "template_fullpath".into(),
        full_text.unwrap_or_else(|| src.into()).into(),
    );
    vars.insert("template_destpath".into(), dest.into());
    vars.insert("template_uid".into(), uid.into());
    if let Value::Object(host_vars) = host_vars {
        crate::vars::merge(&mut vars, host_vars);
    }
    Value::Object(vars)
}

/// The user name owning the template (its uid as text when it has none),
/// as `template_uid` is in ansible-core. Looked up once per uid: every
/// host's render of every template asks.
fn user_name(uid: u32) -> String {
    static NAMES: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, name)) = names.iter().find(|(u, _)| *u == uid) {
        return name.clone();
    }
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string());
    names.push((uid, name.clone()));
    name
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let vars = template_vars(ctx.templates, ctx.vars, &self.src, &self.dest);
            let rendered = match ctx.templates.render_file(&self.src, &vars) {
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
