//! `import_tasks` and `include_tasks`: task lists kept in their own files.
//!
//! Ansible projects split long task lists into files. Both keywords are
//! resolved when the playbook is loaded, so their tasks are checked (and
//! their templates rendered for every host) before the first connection
//! like any other:
//!
//! - `import_tasks` is static in Ansible too: the file's tasks take the
//!   import's place, each inheriting its keywords; its `when` is added to
//!   every task's own, so each is evaluated (and skipped) per task.
//! - `include_tasks` is dynamic in Ansible: its `when` is evaluated once, on
//!   the include itself (per item with a `loop`), and each host includes
//!   the file once per item. A file named plainly is still loaded (and
//!   checked) with the playbook; its tasks run per item at run time
//!   (`run/dynamic_include.rs`). A file name that is a template can only be
//!   known on the host's turn: it is kept as a [`DynamicFile`] and loaded
//!   then, with the same checks, an error failing the hosts that include it
//!   (as ansible-core fails them).
//!
//! Paths are relative to the file that names them, as Ansible finds them.

use std::path::{Path, PathBuf};

use super::PlaybookError;
use super::load::{RawTask, convert_task};
use super::task::{Include, Task, TaskKind};
use crate::source::{SourceSpan, parse_yaml};
use crate::vars::Value;

/// Files included within files beyond this depth are surely a loop.
const MAX_DEPTH: usize = 32;

/// Which of the two keywords.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Inclusion {
    Import,
    Include,
}

impl Inclusion {
    pub fn from_key(key: &str) -> Option<Inclusion> {
        match key.strip_prefix("ansible.builtin.").unwrap_or(key) {
            "import_tasks" => Some(Inclusion::Import),
            "include_tasks" => Some(Inclusion::Include),
            _ => None,
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            Inclusion::Import => "import_tasks",
            Inclusion::Include => "include_tasks",
        }
    }
}

/// An `include_tasks` whose file name is a template: rendered for each host
/// (and item) when the run reaches it, then loaded as any tasks file.
#[derive(Debug, Clone)]
pub struct DynamicFile {
    /// The name as written.
    pub template: String,
    /// The file that names it: a relative name is found beside it.
    pub including_file: PathBuf,
    /// How many tasks files included the one that names it.
    pub depth: usize,
    /// The include's `apply:`, wrapped around the tasks once loaded.
    pub apply: Option<Box<Task>>,
}

impl DynamicFile {
    /// The tasks of the file `name` (the template rendered) names, loaded
    /// and checked as a file named plainly is at load time. A role inside
    /// is refused: its handlers and defaults would have to join a play
    /// already running.
    pub fn load(
        &self,
        play: &super::Play,
        name: &str,
        at: &SourceSpan,
    ) -> Result<Vec<Task>, PlaybookError> {
        let tasks = load_tasks(
            Inclusion::Include,
            &self.including_file,
            name,
            at,
            self.depth,
        )?;
        super::notify::check_loaded(play, &tasks)?;
        let tasks = match &self.apply {
            Some(apply) => super::apply::wrap(apply, tasks),
            None => tasks,
        };
        if let Some(role) = find_role(&tasks) {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "`import_role`/`include_role` in {name}, a tasks file whose name is a \
                     template: convoy puts a role's handlers and defaults in the play before \
                     it runs; name the tasks file plainly (and choose with `when`)"
                ),
                span: role.span.clone(),
            });
        }
        Ok(tasks)
    }
}

/// The first task (down every block) that is a role inclusion.
fn find_role(tasks: &[Task]) -> Option<&Task> {
    tasks.iter().find_map(|t| {
        if t.role.is_some() {
            return Some(t);
        }
        match &t.kind {
            TaskKind::Block {
                block,
                rescue,
                always,
            } => find_role(block)
                .or_else(|| find_role(rescue))
                .or_else(|| find_role(always)),
            TaskKind::Module { .. } => None,
        }
    })
}

/// Whether a file name is a template (known only at run time).
pub fn is_template(name: &str) -> bool {
    name.contains("{{") || name.contains("{%")
}

/// The file an inclusion names (`import_tasks: x.yml`, `import_tasks:
/// {file: x.yml}`), and an include's `apply` block.
pub fn arguments(
    kind: Inclusion,
    value: &Value,
    at: &SourceSpan,
) -> Result<(String, Option<Task>), PlaybookError> {
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: at.clone(),
    };
    let mut apply = None;
    let name = match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), kind) {
                    ("file", _) => {}
                    ("apply", Inclusion::Include) => apply = Some(super::apply::parse(v, at)?),
                    (other, _) => {
                        return Err(invalid(format!(
                            "`{}` takes `file`{}, not `{other}`",
                            kind.keyword(),
                            if kind == Inclusion::Include {
                                " and `apply`"
                            } else {
                                ""
                            }
                        )));
                    }
                }
            }
            map.get("file").and_then(Value::as_str).map(str::to_owned)
        }
        _ => None,
    };
    let name = name.ok_or_else(|| {
        invalid(format!(
            "`{}` names a tasks file: `{0}: tasks/setup.yml`",
            kind.keyword()
        ))
    })?;
    if kind == Inclusion::Import && is_template(&name) {
        return Err(invalid(format!(
            "`import_tasks: {name}`: an import is static, its file name cannot be a template \
             (as in Ansible, which has no host variables yet); use `include_tasks`"
        )));
    }
    Ok((name, apply))
}

/// `task` (which carried the inclusion's keywords) holding the file's tasks.
pub fn resolve(
    kind: Inclusion,
    including_file: &Path,
    name: &str,
    mut task: Task,
    at: &SourceSpan,
    depth: usize,
) -> Result<Task, PlaybookError> {
    if task.loop_spec.is_some() && kind == Inclusion::Import {
        return Err(PlaybookError::Invalid {
            message: "`import_tasks` cannot loop (as in Ansible): use `include_tasks` with a \
                      loop inside the file"
                .into(),
            span: at.clone(),
        });
    }
    if kind == Inclusion::Include && is_template(name) {
        task.include = Some(Include::Tasks(name.to_owned()));
        task.dynamic_file = Some(DynamicFile {
            template: name.to_owned(),
            including_file: including_file.to_owned(),
            depth,
            apply: task.apply.take(),
        });
        return Ok(task);
    }
    let mut tasks = load_tasks(kind, including_file, name, at, depth)?;
    if let Some(apply) = task.apply.take() {
        tasks = super::apply::wrap(&apply, tasks);
    }
    if kind == Inclusion::Import {
        // Each imported task is skipped on its own, as Ansible evaluates
        // the import's condition at every task.
        let when = std::mem::take(&mut task.when);
        for t in &mut tasks {
            super::load::inherit_when(t, &when);
        }
    }
    if kind == Inclusion::Include {
        task.include = Some(Include::Tasks(name.to_owned()));
    }
    task.kind = TaskKind::Block {
        block: tasks,
        rescue: vec![],
        always: vec![],
    };
    Ok(task)
}

/// The tasks of the file `name`, found beside `including_file`.
fn load_tasks(
    kind: Inclusion,
    including_file: &Path,
    name: &str,
    at: &SourceSpan,
    depth: usize,
) -> Result<Vec<Task>, PlaybookError> {
    if depth >= MAX_DEPTH {
        return Err(PlaybookError::Invalid {
            message: format!("tasks files include each other more than {MAX_DEPTH} deep (a loop?)"),
            span: at.clone(),
        });
    }
    let path = locate(including_file, name);
    let text = std::fs::read_to_string(&path).map_err(|e| PlaybookError::Invalid {
        message: format!("`{}`: cannot read {}: {e}", kind.keyword(), path.display()),
        span: at.clone(),
    })?;
    let raw: Option<Vec<RawTask>> = parse_yaml(&path, &text)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|t| convert_task(&path, t, depth + 1))
        .collect()
}

/// Relative to the file that names it, as Ansible finds a playbook's (no
/// `tasks/` fallback there: that is a role's layout).
fn locate(including_file: &Path, name: &str) -> PathBuf {
    including_file.parent().unwrap_or(Path::new(".")).join(name)
}

#[cfg(test)]
mod tests {
    use crate::playbook::{Playbook, TaskKind};

    fn load(files: &[(&str, &str)]) -> Result<Playbook, String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let result = Playbook::load(&dir.path().join("site.yml"));
        result.map_err(|e| {
            e.to_string()
                .replace(&dir.path().display().to_string(), "DIR")
        })
    }

    #[test]
    fn import_puts_its_when_on_every_task() {
        let playbook = load(&[
            (
                "site.yml",
                "- hosts: all\n  gather_facts: false\n  tasks:\n    - import_tasks: t/a.yml\n      when: x\n",
            ),
            ("t/a.yml", "- debug: {msg: a}\n  when: y\n- import_tasks: b.yml\n"),
            ("t/b.yml", "- debug: {msg: b}\n"),
        ])
        .unwrap();
        let TaskKind::Block { block, .. } = &playbook.plays[0].tasks[0].kind else {
            panic!("an import is a block");
        };
        assert!(playbook.plays[0].tasks[0].when.is_empty());
        assert_eq!(block[0].when, ["x", "y"]);
        // The nested import (relative to t/a.yml) passes x on to its task.
        let TaskKind::Block { block: nested, .. } = &block[1].kind else {
            panic!("a nested import is a block");
        };
        assert!(block[1].when.is_empty());
        assert_eq!(nested[0].when, ["x"]);
    }

    #[test]
    fn what_an_import_cannot_do_is_refused_with_its_location() {
        let err = load(&[(
            "site.yml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - import_tasks: \"{{ f }}.yml\"\n",
        )])
        .unwrap_err();
        assert!(
            err.contains("an import is static, its file name cannot be a template"),
            "{err}"
        );
        assert!(err.contains("--> DIR/site.yml:4:"), "{err}");
        let err = load(&[
            (
                "site.yml",
                "- hosts: all\n  gather_facts: false\n  tasks:\n    - import_tasks: a.yml\n      loop: [1, 2]\n",
            ),
            ("a.yml", "- debug: {msg: a}\n"),
        ])
        .unwrap_err();
        assert!(err.contains("`import_tasks` cannot loop"), "{err}");
        let err = load(&[(
            "site.yml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - import_tasks: nope.yml\n",
        )])
        .unwrap_err();
        assert!(
            err.contains("`import_tasks`: cannot read DIR/nope.yml"),
            "{err}"
        );
    }

    #[test]
    fn a_looped_include_is_loaded_up_front_and_a_templated_one_at_run_time() {
        let playbook = load(&[
            (
                "site.yml",
                "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_tasks: t/a.yml\n      loop: [1, 2]\n    - include_tasks: \"t/{{ f }}.yml\"\n",
            ),
            ("t/a.yml", "- debug: {msg: a}\n"),
        ])
        .unwrap();
        let [looped, templated] = &playbook.plays[0].tasks[..] else {
            panic!("two includes");
        };
        let TaskKind::Block { block, .. } = &looped.kind else {
            panic!("an include is a block");
        };
        assert_eq!(block.len(), 1);
        assert!(looped.loop_spec.is_some() && looped.dynamic_file.is_none());
        let dynamic = templated.dynamic_file.as_ref().expect("kept for the run");
        assert_eq!(dynamic.template, "t/{{ f }}.yml");
        let TaskKind::Block { block, .. } = &templated.kind else {
            panic!("an include is a block");
        };
        assert!(block.is_empty());
    }
}
