//! Task modules, one file each, Ansible-compatible in name, arguments and
//! change reporting.
//!
//! A module is described by a [`ModuleSpec`] (its name and argument names,
//! known before any host is contacted so typos fail early) and builds an
//! [`Action`] from arguments already rendered for one host. An action may
//! only *query* in check mode, and apply otherwise.

mod apt;
mod assert;
mod attributes;
mod blockinfile;
mod command;
mod context;
mod copy;
mod cron;
mod crontab;
mod debug;
mod download_dest;
mod environment;
mod fail;
mod file;
mod file_edit;
mod get_url;
mod git;
mod group;
#[cfg(test)]
mod hostile_values;
mod http_request;
mod include_vars;
mod init_script;
mod lineinfile;
mod meta;
mod outcome;
mod package;
mod pause;
mod python_re;
mod raw;
mod replace;
mod script;
mod service;
mod set_fact;
mod setup;
mod stat;
mod systemd;
pub mod template;
mod unarchive;
mod uri;
mod user;
mod wait_for;
mod wait_for_connection;

use std::future::Future;
use std::pin::Pin;

pub use attributes::normalize_mode;
pub use command::{host_command, host_line, ran as command_ran};
pub use context::ActionContext;
pub use environment::Environment;
pub use include_vars::included_names;
pub use meta::Meta;
pub use outcome::{FileDiff, Outcome};
pub use script::in_role as script_in_role;

use crate::transport::TransportError;
use crate::vars::Value;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A module call ready to run on one host.
pub trait Action: Send + Sync {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Outcome, TransportError>>;
}

/// `impl Action for $module` through the module's own `async fn
/// run(&self, &ActionContext)`, the shape most modules have: the trait
/// method only boxes that future (an [`Action`] is called as `dyn`, which
/// an `async fn` in a trait cannot be).
macro_rules! action_by_async_run {
    ($module:ty) => {
        impl $crate::tasks::Action for $module {
            fn run<'a>(
                &'a self,
                ctx: &'a $crate::tasks::ActionContext<'a>,
            ) -> $crate::tasks::BoxFuture<
                'a,
                Result<$crate::tasks::Outcome, $crate::transport::TransportError>,
            > {
                Box::pin(<$module>::run(self, ctx))
            }
        }
    };
}
pub(crate) use action_by_async_run;

/// What convoy knows of a module before running it.
pub struct ModuleSpec {
    pub name: &'static str,
    /// Argument names accepted (checked at load time).
    pub args: &'static [&'static str],
    /// Takes Ansible's free form (`command: ls -l`) as `_raw_params`.
    pub free_form: bool,
    /// Any name is an argument (`set_fact`): `args` lists none.
    pub any_name: bool,
    /// Builds the action from arguments rendered for one host; the error is a
    /// one-line message about the arguments.
    pub build: fn(Value) -> Result<Box<dyn Action>, String>,
}

/// A module's rendered arguments as it takes them: the text of `!unsafe`
/// values plain (`crate::template::unsafe_text`), but for `set_fact`,
/// whose values are variables again and must stay untemplated, as
/// ansible-core keeps them.
pub fn unmarked_args(spec: &ModuleSpec, args: Value) -> Value {
    use crate::template::unsafe_text;
    if spec.name == set_fact::SPEC.name || !unsafe_text::holds_mark(&args) {
        args
    } else {
        unsafe_text::plain(args)
    }
}

static MODULES: &[&ModuleSpec] = &[
    &command::COMMAND,
    &command::SHELL,
    &raw::SPEC,
    &copy::SPEC,
    &template::SPEC,
    &file::SPEC,
    &lineinfile::SPEC,
    &replace::SPEC,
    &blockinfile::SPEC,
    &stat::SPEC,
    &debug::SPEC,
    &set_fact::SPEC,
    &setup::SPEC,
    &assert::SPEC,
    &fail::SPEC,
    &wait_for::SPEC,
    &wait_for_connection::SPEC,
    &script::SPEC,
    &pause::SPEC,
    &include_vars::SPEC,
    &group::SPEC,
    &user::SPEC,
    &meta::SPEC,
    &get_url::SPEC,
    &uri::SPEC,
    &unarchive::SPEC,
    &cron::SPEC,
    &git::SPEC,
    &service::SPEC,
    &systemd::SPEC,
    &systemd::SERVICE_SPEC,
    &apt::SPEC,
    &package::SPEC,
];

/// Finds a module by name; `ansible.builtin.copy` works as well as `copy`.
pub fn find(name: &str) -> Option<&'static ModuleSpec> {
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    MODULES.iter().copied().find(|m| m.name == short)
}

/// Modules that ansible-core runs once for the play's hosts, on the first
/// (its actions with `BYPASS_HOST_LOOP`): a task of one is `run_once`.
pub fn once_per_play(module: &str) -> bool {
    matches!(module, "pause")
}

pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|m| m.name)
}

/// Deserialises rendered arguments into a module's typed argument struct.
pub(crate) fn parse_args<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| e.to_string())
}

/// Boxes an action's future (the trait must stay object-safe).
pub(crate) fn boxed<'a, F>(f: F) -> BoxFuture<'a, Result<Outcome, TransportError>>
where
    F: Future<Output = Result<Outcome, TransportError>> + Send + 'a,
{
    Box::pin(f)
}
