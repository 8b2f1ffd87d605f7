use std::path::Path;

use crate::template::Templates;
use crate::transport::{Become, Connection, Script, ShellScript};
use crate::vars::Value;

/// Everything an action may use on one host.
pub struct ActionContext<'a> {
    pub conn: &'a Connection,
    pub templates: &'a Templates,
    /// The host's variables for this task (item included).
    pub vars: &'a Value,
    pub check: bool,
    pub diff: bool,
    pub sudo: Option<&'a Become>,
    /// The directory `src:` paths resolve against.
    pub base_dir: &'a Path,
    /// `environment:`, for the modules that run programs on the host
    /// (through [`ActionContext::script`]).
    pub environment: &'a super::Environment,
}

impl ActionContext<'_> {
    /// `script` as a module that runs programs on the host runs it: with
    /// `become` and the task's `environment:`, which every program it
    /// starts inherits, as in ansible-core. A script that parses what a
    /// program prints sets the C locale for that program itself (the
    /// user's `LANG` must not change what it reads).
    pub fn script<'s>(&'s self, script: &'s ShellScript) -> Script<'s> {
        Script::new(script)
            .sudo(self.sudo)
            .env(self.environment.vars())
    }
}
