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
//!   the include itself. convoy keeps that meaning (the tasks run as a
//!   block whose `when` gates it) but loads the file up front, so a file
//!   name that is a template, or a `loop` over the include, is refused with
//!   its location rather than run differently.
//!
//! Paths are relative to the file that names them, as Ansible finds them.

use std::path::{Path, PathBuf};

use super::PlaybookError;
use super::load::{RawTask, convert_task};
use super::task::{Task, TaskKind};
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

/// The file an inclusion names: `import_tasks: x.yml` or `import_tasks: {file: x.yml}`.
pub fn file_name(kind: Inclusion, value: &Value, at: &SourceSpan) -> Result<String, PlaybookError> {
    let name = match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map.get("file").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: at.clone(),
    };
    let name = name.ok_or_else(|| {
        invalid(format!(
            "`{}` names a tasks file: `{0}: tasks/setup.yml`",
            kind.keyword()
        ))
    })?;
    if name.contains("{{") || name.contains("{%") {
        return Err(invalid(format!(
            "`{}: {name}`: a file name that is a template is not supported; convoy loads every \
             tasks file before the run (name the file, and choose with `when`)",
            kind.keyword()
        )));
    }
    Ok(name)
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
    if task.loop_spec.is_some() && kind == Inclusion::Include {
        return Err(PlaybookError::Invalid {
            message: "a `loop` over `include_tasks` is not supported: convoy loads tasks files \
                      before the run; loop over the tasks inside the file instead"
                .into(),
            span: at.clone(),
        });
    }
    if task.loop_spec.is_some() {
        return Err(PlaybookError::Invalid {
            message: "`import_tasks` cannot loop (as in Ansible): use `include_tasks` with a \
                      loop inside the file"
                .into(),
            span: at.clone(),
        });
    }
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
    let mut tasks = raw
        .unwrap_or_default()
        .into_iter()
        .map(|t| convert_task(&path, t, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    if kind == Inclusion::Import {
        // Each imported task is skipped on its own, as Ansible evaluates
        // the import's condition at every task.
        let when = std::mem::take(&mut task.when);
        for t in &mut tasks {
            super::load::inherit_when(t, &when);
        }
    }
    if kind == Inclusion::Include {
        task.include = Some(name.to_owned());
    }
    task.kind = TaskKind::Block {
        block: tasks,
        rescue: vec![],
        always: vec![],
    };
    Ok(task)
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
    fn what_cannot_be_loaded_up_front_is_refused_with_its_location() {
        let err = load(&[(
            "site.yml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_tasks: \"{{ f }}.yml\"\n",
        )])
        .unwrap_err();
        assert!(
            err.contains("a file name that is a template is not supported"),
            "{err}"
        );
        assert!(err.contains("--> DIR/site.yml:4:"), "{err}");
        let err = load(&[
            (
                "site.yml",
                "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_tasks: a.yml\n      loop: [1, 2]\n",
            ),
            ("a.yml", "- debug: {msg: a}\n"),
        ])
        .unwrap_err();
        assert!(
            err.contains("a `loop` over `include_tasks` is not supported"),
            "{err}"
        );
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
}
