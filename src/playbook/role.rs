//! `roles:`: Ansible's reusable units, loaded with the playbook.
//!
//! A role `NAME` is a directory found as ansible-core finds it: `roles/NAME`
//! beside the playbook, then each directory of `roles_path` in the
//! `ansible.cfg` in use (see `ansible_cfg`), then `NAME` beside the playbook. Of its parts convoy reads:
//!
//! - `tasks/main.yml`: run after `pre_tasks` (and their handlers), before
//!   `tasks`; the role's `when` is added to each task, as Ansible inherits it;
//! - `handlers/main.yml`: handlers of the play;
//! - `defaults/main.yml`: the lowest precedence of all, under the inventory;
//! - `vars/main.yml`: above the play's `vars_files`, as Ansible's role vars;
//! - `templates/` and `files/`: where the role's `template:` and `copy:`
//!   tasks find a relative `src` first;
//! - `meta/main.yml` `dependencies`: roles run before it (each role once).
//!
//! Role parameters (`- role: web` with `vars:` or other keys) are the role's
//! block vars. Defaults and role vars are visible to the whole play, as
//! with Ansible's default `private_role_vars = false`.

use std::path::{Path, PathBuf};

use super::PlaybookError;
use super::load::{RawTask, convert_task};
use super::task::{Task, TaskKind};
use crate::source::{SourceSpan, parse_yaml};
use crate::vars::{Value, VarMap};

/// Keys of a role entry that are keywords, not parameters.
const ENTRY_KEYWORDS: &[&str] = &[
    "role",
    "name",
    "when",
    "tags",
    "vars",
    "become",
    "become_user",
    "environment",
    "tasks_from",
    "vars_from",
    "defaults_from",
    "handlers_from",
    "allow_duplicates",
    "rolespec_validate",
    "public",
];

/// One role's own `defaults/` and `vars/` files. Every role's join the
/// play's (Ansible's default `private_role_vars = false`); in the role's
/// own tasks and handlers its own rank above the other roles', as
/// ansible-core's VariableManager puts the task's role last.
#[derive(Debug, Default, PartialEq)]
pub struct RoleVars {
    pub defaults: VarMap,
    pub vars: VarMap,
}

/// What a play's roles contribute.
#[derive(Default)]
pub struct Roles {
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub defaults: VarMap,
    pub vars: VarMap,
    /// Roles already loaded (a dependency named twice runs once).
    loaded: Vec<String>,
}

/// Loads the `roles:` of a play of `playbook`, in order.
pub fn load(playbook: &Path, entries: &[(Value, SourceSpan)]) -> Result<Roles, PlaybookError> {
    let mut roles = Roles::default();
    for (entry, at) in entries {
        load_entry(playbook, entry, at, &mut roles, 0, false)?;
    }
    Ok(roles)
}

/// `import_role`/`include_role: {name: NAME, tasks_from: FILE}` in a task
/// list: the role's tasks (its dependencies' first) for that place; its
/// handlers join the play's, in `roles`. Unlike a `roles:` entry it runs
/// again even when the role already ran. Its defaults and vars (its
/// dependencies' too) join the play's when `public` (`import_role`,
/// `include_role` with `public: true`); else only the role's own tasks
/// and handlers see them, as ansible-core keeps an `include_role`'s
/// private.
pub fn import(
    playbook: &Path,
    spec: &Value,
    at: &SourceSpan,
    roles: &mut Roles,
    public: bool,
) -> Result<Vec<Task>, PlaybookError> {
    let before = std::mem::take(&mut roles.tasks);
    let handlers_before = roles.handlers.len();
    let defaults = std::mem::take(&mut roles.defaults);
    let vars = std::mem::take(&mut roles.vars);
    let result = load_entry(playbook, spec, at, roles, 0, true);
    let mut imported = std::mem::replace(&mut roles.tasks, before);
    // What this role and its dependencies define, over the play's so far.
    let own = RoleVars {
        defaults: std::mem::replace(&mut roles.defaults, defaults),
        vars: std::mem::replace(&mut roles.vars, vars),
    };
    result?;
    if public {
        crate::vars::merge(&mut roles.defaults, &own.defaults);
        crate::vars::merge(&mut roles.vars, &own.vars);
    } else {
        let own = std::sync::Arc::new(own);
        if let Some(block) = imported.last_mut() {
            block.own_role = Some(own.clone());
        }
        for handler in &mut roles.handlers[handlers_before..] {
            handler.own_role = Some(own.clone());
        }
    }
    Ok(imported)
}

fn load_entry(
    playbook: &Path,
    entry: &Value,
    at: &SourceSpan,
    roles: &mut Roles,
    depth: usize,
    explicit: bool,
) -> Result<(), PlaybookError> {
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: at.clone(),
    };
    if depth > 16 {
        return Err(invalid(
            "role dependencies nest more than 16 deep (a loop?)".into(),
        ));
    }
    let (name, keys) = match entry {
        Value::String(name) => (name.clone(), VarMap::new()),
        Value::Object(map) => {
            let name = map
                .get("role")
                .or_else(|| map.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("a role entry needs `role: NAME`".into()))?;
            (name.to_owned(), map.clone())
        }
        _ => return Err(invalid("a role is a name or a mapping with `role:`".into())),
    };
    let mut params: VarMap = keys
        .iter()
        .filter(|(k, _)| !ENTRY_KEYWORDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(Value::Object(vars)) = keys.get("vars") {
        crate::vars::merge(&mut params, vars);
    }
    // Ansible runs a role once per play unless its parameters differ.
    let identity = format!("{name} {}", Value::Object(params.clone()));
    if roles.loaded.contains(&identity) && !explicit {
        return Ok(());
    }
    roles.loaded.push(identity);
    let dir = find(playbook, &name).ok_or_else(|| {
        invalid(format!(
            "role `{name}` not found: looked in roles/{name} beside the playbook, the \
             roles_path of ansible.cfg, and {name} beside the playbook"
        ))
    })?;

    if let Some(Value::Array(deps)) = read_map(&dir.join("meta/main.yml"))?.get("dependencies") {
        for dep in deps.clone() {
            load_entry(playbook, &dep, at, roles, depth + 1, false)?;
        }
    }
    let own = std::sync::Arc::new(RoleVars {
        defaults: read_map(&dir.join(part_file(&keys, "defaults")))?,
        vars: read_map(&dir.join(part_file(&keys, "vars")))?,
    });
    crate::vars::merge(&mut roles.defaults, &own.defaults);
    crate::vars::merge(&mut roles.vars, &own.vars);

    let when: Vec<String> = match keys.get("when") {
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(v) => vec![value_text(v)],
        None => vec![],
    };
    let mut tasks = read_tasks(&dir, &part_file(&keys, "tasks"))?;
    let mut handlers = read_tasks(&dir, &part_file(&keys, "handlers"))?;
    // The role's `when` holds for each of its tasks and handlers, as inherited in Ansible.
    for task in tasks.iter_mut().chain(handlers.iter_mut()) {
        super::load::inherit_when(task, &when);
    }
    let mut block = Task::ad_hoc(
        TaskKind::Block {
            block: tasks,
            rescue: vec![],
            always: vec![],
        },
        at.clone(),
    );
    block.name = Some(format!("role {name}"));
    block.own_role = Some(own.clone());
    let block_params = params.clone();
    block.vars = params;
    block.tags = match keys.get("tags") {
        Some(Value::Array(items)) => items.iter().map(value_text).collect(),
        Some(v) => vec![value_text(v)],
        None => vec![],
    };
    block.sudo = keys.get("become").and_then(Value::as_bool);
    block.become_user = keys
        .get("become_user")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(env) = keys.get("environment") {
        block.environment =
            super::load::environment(env.clone()).ok_or_else(|| PlaybookError::Invalid {
                message: super::load::ENVIRONMENT_SHAPE.into(),
                span: at.clone(),
            })?;
    }
    roles.tasks.push(block);
    // A handler runs outside the role's block but with the role's
    // parameters, as the role's tasks do (`vhost` of `- role: web` with
    // `vhost: www` is `www` in its handlers too); its own vars still win,
    // as a task's win over its block's.
    for handler in &mut handlers {
        handler.own_role = Some(own.clone());
        let mut vars = block_params.clone();
        crate::vars::merge(&mut vars, &handler.vars);
        handler.vars = vars;
    }
    roles.handlers.extend(handlers);
    Ok(())
}

/// The file of a role's `part` (tasks, handlers, vars, defaults): the one
/// `<part>_from` names (`.yml` added when it has no extension), else
/// `main.yml`, as ansible-core's `_from` arguments choose them.
fn part_file(keys: &VarMap, part: &str) -> String {
    match keys.get(&format!("{part}_from")).and_then(Value::as_str) {
        Some(file) if file.ends_with(".yml") || file.ends_with(".yaml") => format!("{part}/{file}"),
        Some(file) => format!("{part}/{file}.yml"),
        None => format!("{part}/main.yml"),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The role's directory, searched as ansible-core searches it: `roles/`
/// beside the playbook, `roles_path` of the ansible.cfg in use (else
/// Ansible's default path), then beside the playbook.
fn find(playbook: &Path, name: &str) -> Option<PathBuf> {
    let base = playbook.parent().unwrap_or(Path::new("."));
    let mut candidates = vec![base.join("roles").join(name)];
    let mut roles_path = crate::ansible_cfg::AnsibleCfg::find().roles_path;
    if roles_path.is_empty() {
        if let Some(home) = std::env::var_os("HOME") {
            roles_path.push(Path::new(&home).join(".ansible/roles"));
        }
        roles_path.push("/usr/share/ansible/roles".into());
        roles_path.push("/etc/ansible/roles".into());
    }
    candidates.extend(roles_path.into_iter().map(|d| d.join(name)));
    candidates.push(base.join(name));
    candidates.into_iter().find(|d| d.is_dir())
}

fn read_map(path: &Path) -> Result<VarMap, PlaybookError> {
    if !path.is_file() {
        return Ok(VarMap::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| PlaybookError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let map: Option<VarMap> = parse_yaml(path, &text)?;
    Ok(map.unwrap_or_default())
}

/// A role's task list, with `template:`/`copy:` sources found in the role first.
fn read_tasks(dir: &Path, rel: &str) -> Result<Vec<Task>, PlaybookError> {
    let path = dir.join(rel);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| PlaybookError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let raw: Option<Vec<RawTask>> = parse_yaml(&path, &text)?;
    let mut tasks = raw
        .unwrap_or_default()
        .into_iter()
        .map(|t| convert_task(&path, t, 0))
        .collect::<Result<Vec<_>, _>>()?;
    for task in &mut tasks {
        in_role(task, dir);
    }
    Ok(tasks)
}

/// Points a role task's relative `src` at the role's `templates/` or `files/`
/// when the file is there, as Ansible searches the role first.
fn in_role(task: &mut Task, dir: &Path) {
    match &mut task.kind {
        TaskKind::Block {
            block,
            rescue,
            always,
        } => {
            for t in block.iter_mut().chain(rescue).chain(always) {
                in_role(t, dir);
            }
        }
        TaskKind::Module { module, args, .. } => {
            let folder = match *module {
                "script" => return crate::tasks::script_in_role(args, &dir.join("files")),
                "template" => "templates",
                "copy" => "files",
                _ => return,
            };
            if let Some(Value::String(src)) = args.get_mut("src")
                && !src.contains("{{")
                && !Path::new(src.as_str()).is_absolute()
            {
                let candidate = dir.join(folder).join(src.as_str());
                if candidate.is_file() {
                    *src = candidate.display().to_string();
                }
            }
        }
    }
}
