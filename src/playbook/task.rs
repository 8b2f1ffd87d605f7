//! One task: Ansible's shape, a module key plus keywords.

use crate::source::SourceSpan;
use crate::vars::{Value, VarMap};

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    /// Where the task starts (its first key).
    pub span: SourceSpan,
    pub kind: TaskKind,
    /// All conditions must hold (Ansible: a list of `when:` is an `and`).
    pub when: Vec<String>,
    pub loop_spec: Option<LoopSpec>,
    pub register: Option<String>,
    pub notify: Vec<String>,
    /// Where `notify:` is written (a topic no handler answers to is named there).
    pub notify_span: Option<SourceSpan>,
    /// Extra topics a handler answers to (Ansible's `listen`).
    pub listen: Vec<String>,
    pub changed_when: Option<Vec<String>>,
    pub failed_when: Option<Vec<String>>,
    pub ignore_errors: bool,
    pub tags: Vec<String>,
    pub sudo: Option<bool>,
    pub become_user: Option<String>,
    pub no_log: bool,
    pub vars: VarMap,
    pub until: Option<String>,
    /// As written: unset differs from 0 (Ansible gives `until` 3 retries by
    /// default, and `retries` alone retries until the task succeeds).
    pub retries: Option<u32>,
    pub delay: std::time::Duration,
    pub run_once: bool,
    /// `delegate_to` (a template, rendered per host and item); `local_action`
    /// sets it to `localhost`.
    pub delegate_to: Option<String>,
    /// `delegate_facts`: facts the task sets go to the delegated host.
    pub delegate_facts: Option<bool>,
    /// `any_errors_fatal` as written (unset: the enclosing block's, then the play's).
    pub any_errors_fatal: Option<bool>,
    /// `ignore_unreachable` as written (unset: the enclosing block's, then the play's).
    pub ignore_unreachable: Option<bool>,
    /// `throttle`: at most this many hosts run the task at once (0: no
    /// limit beyond `--forks`); unset, the enclosing block's.
    pub throttle: Option<usize>,
    /// `timeout`: seconds each attempt of the task may take (0: no limit);
    /// unset, the enclosing block's.
    pub timeout: Option<u64>,
    /// `check_mode:` / `diff:` as written (unset: the command line's `--check` / `--diff`).
    pub check_mode: Option<bool>,
    pub diff: Option<bool>,
    /// `include_tasks: FILE`: the block holds FILE's tasks, and the include
    /// itself reports ok (or skipped) per host, as Ansible's does.
    pub include: Option<Include>,
    /// `include_tasks` naming its file with a template: loaded when the run
    /// reaches it (the block is empty until then).
    pub dynamic_file: Option<super::include::DynamicFile>,
    /// An include's `apply:`: the block its included tasks run in.
    pub apply: Option<Box<Task>>,
    /// The role this block (or handler) is, whose defaults and vars rank
    /// above every other role's in its own tasks, as in ansible-core.
    pub own_role: Option<std::sync::Arc<super::role::RoleVars>>,
    /// `import_role`/`include_role`: the role (`{role, tasks_from}`), put in
    /// place once the play is loaded (its handlers and vars join the play's).
    pub role: Option<Value>,
    /// `environment:` as written, each entry a mapping or a template that
    /// renders to one (Ansible's list, the enclosing levels' first): the
    /// variables the module's remote process gets.
    pub environment: Vec<Value>,
}

/// What an `include_tasks` / `include_role` names (as written: a file
/// name may be a template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Include {
    Tasks(String),
    Role(String),
}

impl std::fmt::Display for Include {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Include::Tasks(file) => f.write_str(file),
            Include::Role(name) => write!(f, "role {name}"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum TaskKind {
    /// A module call; `args` is still a template, rendered per host and item.
    Module {
        module: &'static str,
        args: Value,
        args_span: SourceSpan,
    },
    /// `block` / `rescue` / `always`.
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
}

#[derive(Debug, Clone)]
pub struct LoopSpec {
    /// A list, or a template string that renders to one (`with_*`: the
    /// lookup's terms).
    pub items: Value,
    /// `loop:` or the `with_<lookup>` that made the loop.
    pub lookup: LoopLookup,
    pub loop_var: String,
    pub label: Option<String>,
    /// `loop_control.index_var`: the item's index (from 0) under this name.
    pub index_var: Option<String>,
    /// `loop_control.extended`: `ansible_loop` (index, first, last, ...).
    pub extended: bool,
    /// `loop_control.extended_allitems`: `ansible_loop.allitems` (default true).
    pub extended_allitems: bool,
    /// `loop_control.pause`: time between two items.
    pub pause: std::time::Duration,
}

/// Which keyword a loop came from: `loop:` takes a list as it is, each
/// `with_<name>` turns its terms into items as that lookup does
/// (`run/loop_lookups.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopLookup {
    Loop,
    Items,
    List,
    IndexedItems,
    Dict,
    Together,
    Nested,
    Sequence,
    Fileglob,
}

impl LoopLookup {
    pub const ALL: [LoopLookup; 9] = [
        LoopLookup::Loop,
        LoopLookup::Items,
        LoopLookup::List,
        LoopLookup::IndexedItems,
        LoopLookup::Dict,
        LoopLookup::Together,
        LoopLookup::Nested,
        LoopLookup::Sequence,
        LoopLookup::Fileglob,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            LoopLookup::Loop => "loop",
            LoopLookup::Items => "with_items",
            LoopLookup::List => "with_list",
            LoopLookup::IndexedItems => "with_indexed_items",
            LoopLookup::Dict => "with_dict",
            LoopLookup::Together => "with_together",
            LoopLookup::Nested => "with_nested",
            LoopLookup::Sequence => "with_sequence",
            LoopLookup::Fileglob => "with_fileglob",
        }
    }

    pub fn from_keyword(key: &str) -> Option<LoopLookup> {
        LoopLookup::ALL.into_iter().find(|l| l.keyword() == key)
    }
}

impl Task {
    /// The name shown in output: the task's name, or `module` as Ansible does.
    pub fn display_name(&self) -> String {
        match (&self.name, &self.kind) {
            (Some(n), _) => n.clone(),
            (None, TaskKind::Module { module, .. }) => (*module).to_owned(),
            // ansible-core's IncludeRole.get_name: `include_role : NAME`.
            (None, TaskKind::Block { .. }) => match &self.include {
                Some(Include::Tasks(_)) => "include_tasks".to_owned(),
                Some(Include::Role(role)) => format!("include_role : {role}"),
                None => "block".to_owned(),
            },
        }
    }

    /// Does this handler answer to `topic` (its name or a `listen` topic)?
    pub fn answers_to(&self, topic: &str) -> bool {
        self.name.as_deref() == Some(topic) || self.listen.iter().any(|l| l == topic)
    }
}

impl Task {
    /// A task with every keyword at its default.
    pub fn ad_hoc(kind: TaskKind, span: SourceSpan) -> Task {
        Task {
            name: None,
            span,
            kind,
            when: vec![],
            loop_spec: None,
            register: None,
            notify: vec![],
            notify_span: None,
            listen: vec![],
            changed_when: None,
            failed_when: None,
            ignore_errors: false,
            tags: vec![],
            sudo: None,
            become_user: None,
            no_log: false,
            vars: VarMap::new(),
            until: None,
            retries: None,
            delay: std::time::Duration::from_secs(5),
            run_once: false,
            delegate_to: None,
            delegate_facts: None,
            any_errors_fatal: None,
            ignore_unreachable: None,
            throttle: None,
            timeout: None,
            check_mode: None,
            diff: None,
            include: None,
            dynamic_file: None,
            apply: None,
            own_role: None,
            role: None,
            environment: vec![],
        }
    }
}
