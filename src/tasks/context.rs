use std::path::Path;

use crate::template::Templates;
use crate::transport::{Become, Connection};
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
    /// `environment:`, for the modules whose remote process Ansible gives
    /// it to (command, shell, script).
    pub environment: &'a super::Environment,
}
