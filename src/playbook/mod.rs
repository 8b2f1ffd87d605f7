//! Playbooks: the YAML model of plays and tasks, checked with locations.
//!
//! Loading is strict on purpose: an unknown key, a wrong type or an unknown
//! module stops the run before any host is contacted, with the file, line and
//! column of the mistake.

mod apply;
mod distribution;
mod error;
mod gather;
mod include;
mod kv_args;
mod load;
mod magic;
mod migration;
mod notify;
mod once;
mod prompt;
mod proxy;
mod role;
mod rollout;
mod serial;
mod task;

use std::path::{Path, PathBuf};

pub use distribution::{DistributionSpec, Hooks};
pub use error::PlaybookError;
pub(crate) use load::RawTask;
pub use migration::{Migration, MigrationTarget};
pub use once::{IfHeld, OnceSpec};
pub use prompt::answer_all as answer_prompts;
pub use proxy::{ProxyFile, ProxySpec};
pub use role::RoleVars;
pub use rollout::{HealthSpec, OnFailure, Order, Pause, RolloutSpec, Size, duration};
pub use task::{LoopLookup, LoopSpec, Task, TaskKind};

use crate::source::SourceSpan;
use crate::vars::{Value, VarMap};

/// A loaded playbook: its plays in order and the directory that relative
/// paths (templates, `src:` files, vars_files) are resolved against.
#[derive(Debug)]
pub struct Playbook {
    pub base_dir: PathBuf,
    pub plays: Vec<Play>,
}

#[derive(Debug)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub hosts_span: SourceSpan,
    /// The implicit "Gathering Facts" task (`setup`), unless `gather_facts: false`.
    pub gather: Option<Task>,
    pub vars: VarMap,
    /// Files as written (templated per host at run time), with their location.
    pub vars_files: Vec<(String, SourceSpan)>,
    /// `vars_prompt`, answered into `vars` before the run (`prompt.rs`).
    pub vars_prompt: Vec<prompt::Prompt>,
    /// Ansible's `pre_tasks`: before `tasks`, their handlers flushed after them.
    pub pre_tasks: Vec<Task>,
    pub tasks: Vec<Task>,
    /// Ansible's `post_tasks`: after `tasks` and their handlers, flushed after them.
    pub post_tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    /// Every role's `defaults/main.yml`: below the inventory.
    pub role_defaults: VarMap,
    /// Every role's `vars/main.yml`: above `vars_files`.
    pub role_vars: VarMap,
    pub sudo: Option<bool>,
    pub become_user: Option<String>,
    /// `environment:` (see [`Task::environment`]), under every task of the play.
    pub environment: Vec<Value>,
    pub tags: Vec<String>,
    /// `any_errors_fatal`: a failure on one host ends the play for all.
    pub any_errors_fatal: bool,
    /// `ignore_unreachable`: an unreachable host is counted and goes on.
    pub ignore_unreachable: bool,
    /// `throttle` and `timeout` for every task that (with its blocks) sets none.
    pub throttle: Option<usize>,
    /// `max_fail_percentage`: more failed hosts than this share of a batch
    /// (after any task) fail the batch's other hosts and end the run.
    pub max_fail_percentage: Option<f64>,
    pub timeout: Option<u64>,
    /// A versioned release cycle (prepare, switch, confirm) after the tasks.
    pub distribution: Option<DistributionSpec>,
    pub hooks: Hooks,
    /// Batches, gates and failure policy for the switch (default: one batch).
    pub rollout: Option<RolloutSpec>,
    pub migrations: Vec<Migration>,
    pub proxy: Option<ProxySpec>,
    /// Run in one instance only across the fleet (a named lock).
    pub once: Option<OnceSpec>,
    /// One-off work over many targets (`convoy job run`).
    pub job: Option<crate::job::JobSpec>,
}

impl Playbook {
    pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
        load::load(path)
    }

    /// `become` and `become_user` for the plays that set none: from the
    /// command line (`-b`, `--become-user`), else ansible.cfg's
    /// `[privilege_escalation]`; a play's keywords beat both, as in
    /// Ansible. A job's play is left alone: a job runs as the ssh user.
    pub fn default_become(&mut self, become_: Option<bool>, become_user: Option<String>) {
        let cfg = crate::ansible_cfg::AnsibleCfg::current();
        let become_ = become_.or(cfg.become_);
        let become_user = become_user.or_else(|| cfg.become_user.clone());
        for play in self.plays.iter_mut().filter(|p| p.job.is_none()) {
            if play.sudo.is_none() {
                play.sudo = become_;
            }
            if play.become_user.is_none() {
                play.become_user = become_user.clone();
            }
        }
    }
}

impl Playbook {
    /// A one-task playbook for `convoy exec`: the command through the shell module.
    pub fn ad_hoc(pattern: &str, command: &str, sudo: bool) -> Playbook {
        let span = SourceSpan::new("<command line>", 1, 1);
        let mut args = VarMap::new();
        args.insert("_raw_params".into(), Value::String(command.to_owned()));
        let task = Task::ad_hoc(
            TaskKind::Module {
                module: "shell",
                args: Value::Object(args),
                args_span: span.clone(),
            },
            span.clone(),
        );
        Playbook {
            base_dir: std::env::current_dir().unwrap_or_else(|_| ".".into()),
            plays: vec![Play {
                name: format!("exec on {pattern}"),
                hosts: pattern.to_owned(),
                hosts_span: span,
                // Ansible's ad-hoc commands gather no facts either.
                gather: None,
                vars: VarMap::new(),
                vars_files: vec![],
                vars_prompt: vec![],
                pre_tasks: vec![],
                tasks: vec![task],
                post_tasks: vec![],
                handlers: vec![],
                role_defaults: VarMap::new(),
                role_vars: VarMap::new(),
                sudo: Some(sudo),
                become_user: None,
                environment: vec![],
                tags: vec![],
                any_errors_fatal: false,
                ignore_unreachable: false,
                throttle: None,
                max_fail_percentage: None,
                timeout: None,
                distribution: None,
                hooks: Hooks::default(),
                rollout: None,
                migrations: vec![],
                proxy: None,
                once: None,
                job: None,
            }],
        }
    }
}
