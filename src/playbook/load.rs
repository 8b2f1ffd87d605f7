//! From YAML text to checked plays and tasks.
//!
//! Plays are plain serde structs (`deny_unknown_fields`). Tasks need a
//! hand-written visitor: their keys are keywords *or* one module name, and
//! `block` nests tasks, so each key is looked at before its value is read,
//! keeping every location.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::distribution::{DistributionSpec, Hooks, ReleaseTemplate};
use super::include::{self, Inclusion};
use super::migration::RawMigration;
use super::proxy::RawProxy;
use super::rollout::RawRollout;
use super::task::{LoopLookup, LoopSpec, Task, TaskKind};
use super::{Play, Playbook, PlaybookError};
use crate::source::{SourceSpan, nearest, parse_yaml};
use crate::tasks::{self, ModuleSpec};
use crate::vars::{Value, VarMap};

/// Keywords a task may carry besides its module.
pub const TASK_KEYWORDS: &[&str] = &[
    "import_tasks",
    "import_role",
    "include_role",
    "include_tasks",
    "name",
    "when",
    "loop",
    "with_items",
    "with_list",
    "with_indexed_items",
    "with_dict",
    "with_together",
    "with_nested",
    "with_sequence",
    "with_fileglob",
    "loop_control",
    "register",
    "notify",
    "listen",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "tags",
    "become",
    "become_user",
    "become_method",
    "no_log",
    "vars",
    "args",
    "until",
    "retries",
    "delay",
    "run_once",
    "delegate_to",
    "delegate_facts",
    "any_errors_fatal",
    "ignore_unreachable",
    "throttle",
    "timeout",
    "local_action",
    "check_mode",
    "diff",
    "environment",
    "block",
    "rescue",
    "always",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlay {
    name: Option<String>,
    /// Required, except on an `import_playbook` entry.
    hosts: Option<Spanned<String>>,
    /// `- import_playbook: other.yml`: that playbook's plays in this place.
    #[serde(alias = "ansible.builtin.import_playbook")]
    import_playbook: Option<Spanned<String>>,
    #[serde(default)]
    vars: VarMap,
    #[serde(default)]
    vars_files: Vec<Spanned<String>>,
    #[serde(default)]
    vars_prompt: Vec<Spanned<super::prompt::RawPrompt>>,
    #[serde(default)]
    roles: Vec<Spanned<Value>>,
    #[serde(default)]
    pre_tasks: Vec<RawTask>,
    #[serde(default)]
    tasks: Vec<RawTask>,
    #[serde(default)]
    post_tasks: Vec<RawTask>,
    #[serde(default)]
    handlers: Vec<RawTask>,
    #[serde(rename = "become")]
    become_: Option<bool>,
    become_user: Option<String>,
    become_method: Option<Spanned<String>>,
    #[serde(default)]
    any_errors_fatal: bool,
    #[serde(default)]
    ignore_unreachable: bool,
    /// Over every task of the play that does not set its own.
    throttle: Option<Spanned<Value>>,
    timeout: Option<Spanned<Value>>,
    /// Default true, as in Ansible: see `gather.rs`.
    gather_facts: Option<Spanned<Value>>,
    gather_subset: Option<Spanned<Value>>,
    #[serde(default)]
    tags: Option<Value>,
    distribution: Option<Spanned<RawDistribution>>,
    #[serde(default)]
    hooks: RawHooks,
    rollout: Option<Spanned<RawRollout>>,
    /// Ansible's batches: see `serial.rs`.
    serial: Option<Spanned<Value>>,
    max_fail_percentage: Option<Spanned<Value>>,
    #[serde(default)]
    migrations: Vec<Spanned<RawMigration>>,
    proxy: Option<Spanned<RawProxy>>,
    once: Option<Spanned<Value>>,
    job: Option<Spanned<crate::job::RawJob>>,
    environment: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDistribution {
    name: String,
    version: Value,
    source: String,
    sha256: Option<String>,
    format: Option<String>,
    #[serde(default)]
    strip_components: u32,
    root: String,
    #[serde(default)]
    shared: Vec<String>,
    #[serde(default = "default_keep")]
    keep: Spanned<u32>,
    #[serde(default)]
    templates: Vec<Spanned<RawReleaseTemplate>>,
    owner: Option<String>,
    group: Option<String>,
}

fn default_keep() -> Spanned<u32> {
    Spanned::new(
        5,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReleaseTemplate {
    src: String,
    dest: String,
    mode: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    #[serde(default)]
    prepare: Vec<RawTask>,
    #[serde(default)]
    switch: Vec<RawTask>,
    #[serde(default)]
    confirm: Vec<RawTask>,
}

/// A task as written: its keys in order, each with its location.
pub(crate) struct RawTask {
    entries: Vec<(Spanned<String>, RawValue)>,
}

enum RawValue {
    Value(Spanned<Value>),
    Tasks(Vec<RawTask>),
    Args(Spanned<RawArgs>),
}

/// Module arguments: Ansible's free form (`command: ls -l`, `copy: src=a dest=b`) or a map.
enum RawArgs {
    Free(String),
    Map(IndexMap<Spanned<String>, Value>),
    Null,
}

impl<'de> Deserialize<'de> for RawTask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TaskVisitor;
        impl<'de> Visitor<'de> for TaskVisitor {
            type Value = RawTask;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a task (a mapping with a module key)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTask, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = match key.value.as_str() {
                        "block" | "rescue" | "always" => RawValue::Tasks(map.next_value()?),
                        k if tasks::find(k).is_some() || k == LOCAL_ACTION => {
                            RawValue::Args(map.next_value()?)
                        }
                        _ => RawValue::Value(map.next_value()?),
                    };
                    entries.push((key, value));
                }
                Ok(RawTask { entries })
            }
        }
        d.deserialize_map(TaskVisitor)
    }
}

impl<'de> Deserialize<'de> for RawArgs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = RawArgs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("module arguments (a mapping or a string)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawArgs, E> {
                Ok(RawArgs::Free(v.to_owned()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<RawArgs, E> {
                Ok(RawArgs::Null)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<RawArgs, E> {
                Ok(RawArgs::Null)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawArgs, A::Error> {
                let mut args = IndexMap::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    args.insert(k, map.next_value::<Value>()?);
                }
                Ok(RawArgs::Map(args))
            }
        }
        d.deserialize_any(ArgsVisitor)
    }
}

pub(super) fn load(path: &Path) -> Result<Playbook, PlaybookError> {
    let text = std::fs::read_to_string(path).map_err(|e| PlaybookError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let base_dir = base_dir(path);
    let mut plays = Vec::new();
    load_plays(path, &text, &base_dir, &mut plays, 0)?;
    Ok(Playbook { base_dir, plays })
}

/// The plays of one playbook file, `import_playbook` entries replaced by
/// the plays of the file they name (relative to this one), as Ansible
/// imports them. Task paths (templates, files) still resolve against the
/// first playbook's project directory.
fn load_plays(
    path: &Path,
    text: &str,
    base_dir: &Path,
    plays: &mut Vec<Play>,
    depth: usize,
) -> Result<(), PlaybookError> {
    let raw: Vec<Spanned<RawPlay>> = parse_yaml(path, text)?;
    for entry in raw {
        let at = span(path, &entry.referenced);
        let raw = entry.value;
        if let Some(import) = &raw.import_playbook {
            let import_at = span(path, &import.referenced);
            if raw.hosts.is_some() || !raw.tasks.is_empty() || !raw.roles.is_empty() {
                return Err(PlaybookError::Invalid {
                    message: "an `import_playbook` entry is not a play: it has no `hosts`, \
                              `tasks` or `roles` of its own"
                        .into(),
                    span: import_at,
                });
            }
            if depth >= 16 {
                return Err(PlaybookError::Invalid {
                    message: "playbooks import each other more than 16 deep (a loop?)".into(),
                    span: import_at,
                });
            }
            let file = path.parent().unwrap_or(Path::new(".")).join(&import.value);
            let text = std::fs::read_to_string(&file).map_err(|e| PlaybookError::Invalid {
                message: format!("`import_playbook`: cannot read {}: {e}", file.display()),
                span: import_at.clone(),
            })?;
            load_plays(&file, &text, base_dir, plays, depth + 1)?;
            continue;
        }
        let index = plays.len();
        plays.push(convert_play(path, base_dir, index, raw, at)?);
    }
    Ok(())
}

/// Relative paths in a playbook resolve against the project directory: the
/// playbook's own directory, or its parent when the playbook lives in
/// `playbooks/` (so `templates/` beside `playbooks/` is found, as in the repo layout).
fn base_dir(path: &Path) -> std::path::PathBuf {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        ".".into()
    } else {
        dir
    };
    match dir.file_name() {
        Some(n) if n == "playbooks" && !dir.join("templates").exists() => {
            // `playbooks/x.yml` relative to here: its parent is "", which is ".".
            match dir.parent() {
                Some(p) if p.as_os_str().is_empty() => ".".into(),
                Some(p) => p.to_path_buf(),
                None => dir,
            }
        }
        _ => dir,
    }
}

pub(super) fn span(file: &Path, s: &serde_saphyr::Location) -> SourceSpan {
    SourceSpan::from_location(file, s).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
}

fn convert_play(
    file: &Path,
    base_dir: &Path,
    index: usize,
    raw: RawPlay,
    at: SourceSpan,
) -> Result<Play, PlaybookError> {
    let Some(hosts) = raw.hosts else {
        return Err(PlaybookError::Invalid {
            message: "a play needs `hosts:` (a host pattern)".into(),
            span: at,
        });
    };
    let hosts_span = span(file, &hosts.referenced);
    if let Some(job) = &raw.job {
        // A job's work is its `run`, `tasks` or converters, claimed and
        // recorded on the host per target (exactly once); the play's tasks
        // or a release beside it would run outside that guarantee.
        let beside = [
            ("tasks", !raw.tasks.is_empty()),
            ("handlers", !raw.handlers.is_empty()),
            ("distribution", raw.distribution.is_some()),
            ("rollout", raw.rollout.is_some()),
            ("migrations", !raw.migrations.is_empty()),
            // A proxy section that routes tenants is the job's to drive:
            // its targets' states become the tenant map.
            (
                "proxy",
                raw.proxy
                    .as_ref()
                    .is_some_and(|p| !p.value.routes_tenants()),
            ),
        ];
        if let Some((key, _)) = beside.iter().find(|(_, present)| *present) {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "a play with `job:` has no `{key}`: its work is the job's `run`, `tasks` (under `job:`) or `converters`; put other work in a play of its own{}",
                    if *key == "proxy" {
                        " (a proxy section with `pools` and `tenants`, and no `traffic`, is the one a job takes: it publishes its targets' states there)"
                    } else {
                        ""
                    }
                ),
                span: span(file, &job.referenced),
            });
        }
        // Jobs run as the ssh user, untagged: keys they ignored would lie.
        let ignored = [
            ("become", raw.become_.is_some()),
            ("become_user", raw.become_user.is_some()),
            ("become_method", raw.become_method.is_some()),
            ("tags", raw.tags.is_some()),
        ];
        if let Some((key, _)) = ignored.iter().find(|(_, present)| *present) {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "a play with `job:` takes no `{key}`: a job runs as the ssh user and has no tags"
                ),
                span: span(file, &job.referenced),
            });
        }
    }
    let whole = |key: &str, v: &Option<Spanned<Value>>, unit: &str| match v {
        None => Ok(None),
        Some(v) => v
            .value
            .as_u64()
            .map(Some)
            .ok_or_else(|| PlaybookError::Invalid {
                message: format!("`{key}` must be a whole number of {unit} (0: no limit)"),
                span: span(file, &v.referenced),
            }),
    };
    let play_throttle = whole("throttle", &raw.throttle, "hosts")?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let play_timeout = whole("timeout", &raw.timeout, "seconds")?;
    let max_fail_percentage = match &raw.max_fail_percentage {
        None => None,
        Some(m) => {
            // ansible-core's `percent` field: a number, or one with `%`.
            let percent = match &m.value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().trim_end_matches('%').trim().parse::<f64>().ok(),
                _ => None,
            };
            Some(
                percent
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| PlaybookError::Invalid {
                        message: "`max_fail_percentage` is a percentage from 0 to 100 (`30` or \
                                  `\"30%\"`)"
                            .into(),
                        span: span(file, &m.referenced),
                    })?,
            )
        }
    };
    if max_fail_percentage.is_some() && raw.distribution.is_some() {
        return Err(PlaybookError::Invalid {
            message: "`max_fail_percentage` is for plays of tasks; a `distribution:`'s rollout \
                      counts failures with `rollout: {max_fail: N%}`"
                .into(),
            span: span(
                file,
                &raw.max_fail_percentage.as_ref().expect("some").referenced,
            ),
        });
    }
    if let Some(s) = &raw.serial {
        let clash = if raw.rollout.is_some() {
            Some("`rollout:`")
        } else if raw.distribution.is_some() {
            Some("`distribution:` (its rollout is `rollout:`)")
        } else {
            None
        };
        if let Some(what) = clash {
            return Err(PlaybookError::Invalid {
                message: format!("`serial` and {what} both batch the play: keep one"),
                span: span(file, &s.referenced),
            });
        }
    }
    let serial = raw
        .serial
        .map(|s| super::serial::convert(file, s))
        .transpose()?;
    let gather = super::gather::convert(
        file,
        raw.gather_facts,
        raw.gather_subset,
        &hosts_span,
        raw.job.is_some() || raw.distribution.is_some() || raw.proxy.is_some(),
    )?;
    if let Some(method) = &raw.become_method {
        sudo_only(&method.value, span(file, &method.referenced))?;
    }
    let convert_all = |tasks: Vec<RawTask>| -> Result<Vec<Task>, PlaybookError> {
        tasks
            .into_iter()
            .map(|t| convert_task(file, t, 0))
            .collect()
    };
    let role_entries: Vec<(Value, SourceSpan)> = raw
        .roles
        .into_iter()
        .map(|r| {
            let at = span(file, &r.referenced);
            (r.value, at)
        })
        .collect();
    let mut roles = super::role::load(file, &role_entries)?;
    // Roles run after pre_tasks, before tasks, in one section with them (as Ansible).
    let mut tasks = std::mem::take(&mut roles.tasks);
    tasks.extend(convert_all(raw.tasks)?);
    let mut pre_tasks = convert_all(raw.pre_tasks)?;
    let mut post_tasks = convert_all(raw.post_tasks)?;
    for list in [&mut pre_tasks, &mut tasks, &mut post_tasks] {
        place_roles(file, list, &mut roles)?;
    }
    let mut handlers = std::mem::take(&mut roles.handlers);
    handlers.extend(convert_all(raw.handlers)?);
    // Of handlers sharing a name only the last loaded answers, as in
    // Ansible (a role used twice brings its handlers twice).
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Task> = handlers
        .into_iter()
        .rev()
        .filter(|h| h.name.as_ref().is_none_or(|n| seen.insert(n.clone())))
        .collect();
    kept.reverse();
    let handlers = kept;
    let mut vars_prompt = Vec::new();
    for p in raw.vars_prompt {
        let at = span(file, &p.referenced);
        if p.value.unsafe_ {
            return Err(PlaybookError::Invalid {
                message: "`vars_prompt` with `unsafe: true` is not supported: convoy would \
                          template the answer; leave `unsafe` out and avoid `{{` in answers"
                    .into(),
                span: at,
            });
        }
        vars_prompt.push(super::prompt::Prompt {
            raw: p.value,
            span: at,
        });
    }
    let play = Play {
        name: raw.name.unwrap_or_else(|| format!("play #{}", index + 1)),
        vars_prompt,
        hosts: hosts.value,
        hosts_span,
        gather,
        vars: raw.vars,
        vars_files: raw
            .vars_files
            .into_iter()
            .map(|f| {
                let s = span(file, &f.referenced);
                (f.value, s)
            })
            .collect(),
        pre_tasks,
        tasks,
        post_tasks,
        handlers,
        role_defaults: roles.defaults,
        role_vars: roles.vars,
        sudo: raw.become_,
        become_user: raw.become_user,
        environment: match raw.environment {
            None => vec![],
            Some(env) => environment(env.value).ok_or_else(|| PlaybookError::Invalid {
                message: ENVIRONMENT_SHAPE.into(),
                span: span(file, &env.referenced),
            })?,
        },
        any_errors_fatal: raw.any_errors_fatal,
        ignore_unreachable: raw.ignore_unreachable,
        throttle: play_throttle,
        max_fail_percentage,
        timeout: play_timeout,
        tags: raw.tags.map(|t| string_list(&t)).unwrap_or_default(),
        rollout: match serial {
            Some(spec) => Some(spec),
            None => raw
                .rollout
                .map(|r| super::rollout::convert(file, r))
                .transpose()?,
        },
        migrations: raw
            .migrations
            .into_iter()
            .map(|m| super::migration::convert(file, m))
            .collect::<Result<_, _>>()?,
        proxy: raw
            .proxy
            .map(|p| super::proxy::convert(file, p))
            .transpose()?,
        once: raw
            .once
            .map(|o| super::once::convert(file, o))
            .transpose()?,
        job: match raw.job {
            None => None,
            Some(mut j) => {
                // A job's task list is loaded as any other (unknown modules
                // and bad keys refused here, with their place).
                let tasks = match j.value.take_tasks() {
                    None => None,
                    Some(t) => Some(crate::job::spec::JobTasks {
                        span: span(file, &t.referenced),
                        tasks: convert_all(t.value)?,
                    }),
                };
                Some(crate::job::spec::convert(file, base_dir, j, tasks)?)
            }
        },
        distribution: raw
            .distribution
            .map(|d| convert_distribution(file, d))
            .transpose()?,
        hooks: Hooks {
            prepare: convert_all(raw.hooks.prepare)?,
            switch: convert_all(raw.hooks.switch)?,
            confirm: convert_all(raw.hooks.confirm)?,
        },
    };
    super::notify::check(&play)?;
    if let (None, Some(rollout)) = (&play.distribution, &play.rollout) {
        // Batches of plain tasks (Ansible's `serial`) have no release to go back to.
        if let Some((key, at)) = &rollout.rollback_key {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "`{key}` needs a `distribution:` (a release to go back to); on a play of plain tasks, `rollout:` runs them batch by batch and stops on failure"
                ),
                span: at.clone(),
            });
        }
    }
    super::magic::check(&play)?;
    crate::job::spec::check_target_use(&play)?;
    Ok(play)
}

fn convert_distribution(
    file: &Path,
    raw: Spanned<RawDistribution>,
) -> Result<DistributionSpec, PlaybookError> {
    let at = span(file, &raw.referenced);
    let d = raw.value;
    let invalid = |message: String, span: SourceSpan| PlaybookError::Invalid { message, span };
    if d.keep.value < 1 {
        return Err(invalid(
            "`keep` must be at least 1 (the current release and the one before it always stay)"
                .into(),
            span(file, &d.keep.referenced),
        ));
    }
    for path in &d.shared {
        if path.starts_with('/') || path.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(invalid(
                format!("shared path `{path}` must be relative, without `..`"),
                at.clone(),
            ));
        }
    }
    Ok(DistributionSpec {
        name: d.name,
        version: scalar_string(&d.version)
            .ok_or_else(|| invalid("`version` must be a string".into(), at.clone()))?,
        source: d.source,
        sha256: d.sha256,
        format: d.format,
        strip_components: d.strip_components,
        root: d.root,
        shared: d.shared,
        keep: d.keep.value,
        templates: d
            .templates
            .into_iter()
            .map(|t| ReleaseTemplate {
                src: t.value.src,
                dest: t.value.dest,
                mode: t.value.mode,
            })
            .collect(),
        owner: d.owner,
        group: d.group,
        span: at,
    })
}

/// Converts one task of `file`; `depth` counts the tasks files that
/// included it (see `include`).
pub(super) fn convert_task(file: &Path, raw: RawTask, depth: usize) -> Result<Task, PlaybookError> {
    let start = raw
        .entries
        .first()
        .map(|(k, _)| span(file, &k.referenced))
        .unwrap_or_else(|| SourceSpan::new(file, 1, 1));
    let placeholder = TaskKind::Block {
        block: vec![],
        rescue: vec![],
        always: vec![],
    };
    let mut task = Task::ad_hoc(placeholder, start.clone());
    let mut module: Option<(&'static ModuleSpec, Spanned<RawArgs>, SourceSpan)> = None;
    let mut extra_args: Option<VarMap> = None;
    let mut loop_items: Option<(LoopLookup, Value)> = None;
    let mut loop_control: Option<(Value, SourceSpan)> = None;
    let mut has_block = false;
    let (mut block, mut rescue, mut always) = (vec![], vec![], vec![]);
    let mut inclusion: Option<(Inclusion, String, SourceSpan)> = None;
    let mut role_ref: Option<(Inclusion, Value, SourceSpan)> = None;
    let mut local_delegate = false;
    // The task keywords written, for those an `include_*` task refuses.
    let mut keywords: Vec<(String, SourceSpan)> = Vec::new();

    for (key, value) in raw.entries {
        let key_span = span(file, &key.referenced);
        let value = match value {
            RawValue::Tasks(tasks) => {
                let tasks = tasks
                    .into_iter()
                    .map(|t| convert_task(file, t, depth))
                    .collect::<Result<Vec<_>, _>>()?;
                match key.value.as_str() {
                    "block" => {
                        has_block = true;
                        block = tasks;
                    }
                    "rescue" => rescue = tasks,
                    _ => always = tasks,
                }
                continue;
            }
            RawValue::Args(args) => {
                let (spec, args) = if key.value == LOCAL_ACTION {
                    // Ansible's mod_args: `local_action` implies
                    // `delegate_to: localhost`, over one written beside it.
                    local_delegate = true;
                    local_action(file, args, &key_span)?
                } else {
                    let spec = tasks::find(&key.value).expect("visitor checked the module");
                    (spec, args)
                };
                if let Some((other, _, _)) = &module {
                    return Err(PlaybookError::Invalid {
                        message: format!(
                            "a task runs one module, this one names `{}` and `{}`",
                            other.name, spec.name
                        ),
                        span: key_span,
                    });
                }
                module = Some((spec, args, key_span));
                continue;
            }
            RawValue::Value(v) => v,
        };
        let at = span(file, &value.referenced);
        let v = value.value;
        let invalid = |message: String| PlaybookError::Invalid {
            message,
            span: at.clone(),
        };
        if let Some(kind) = Inclusion::from_key(&key.value) {
            let (name, apply) = include::arguments(kind, &v, &at)?;
            task.apply = apply.map(Box::new);
            inclusion = Some((kind, name, key_span));
            continue;
        }
        if let Some(kind) = role_inclusion(&key.value) {
            role_ref = Some((kind, v, key_span));
            continue;
        }
        keywords.push((key.value.clone(), key_span.clone()));
        match key.value.as_str() {
            "name" => {
                task.name = Some(
                    scalar_string(&v).ok_or_else(|| invalid("`name` must be a string".into()))?,
                )
            }
            "when" => task.when = conditions(&v),
            key if LoopLookup::from_keyword(key).is_some() => {
                let lookup = LoopLookup::from_keyword(key).expect("matched above");
                if let Some((first, _)) = &loop_items {
                    return Err(invalid(format!(
                        "a task loops once: `{}` and `{key}` both given",
                        first.keyword()
                    )));
                }
                loop_items = Some((lookup, v));
            }
            "loop_control" => loop_control = Some((v, at.clone())),
            "register" => {
                task.register = Some(
                    identifier(&v)
                        .ok_or_else(|| invalid("`register` must be a variable name".into()))?,
                )
            }
            "notify" => {
                task.notify = string_list(&v);
                task.notify_span = Some(at.clone());
            }
            "listen" => task.listen = string_list(&v),
            "changed_when" => task.changed_when = Some(conditions(&v)),
            "failed_when" => task.failed_when = Some(conditions(&v)),
            "ignore_errors" => {
                task.ignore_errors = boolean(&v)
                    .ok_or_else(|| invalid("`ignore_errors` must be true or false".into()))?
            }
            "tags" => task.tags = string_list(&v),
            "become" => {
                task.sudo = Some(
                    boolean(&v).ok_or_else(|| invalid("`become` must be true or false".into()))?,
                )
            }
            "become_user" => task.become_user = scalar_string(&v),
            "become_method" => sudo_only(&scalar_string(&v).unwrap_or_default(), at.clone())?,
            "no_log" => {
                task.no_log =
                    boolean(&v).ok_or_else(|| invalid("`no_log` must be true or false".into()))?
            }
            "vars" => match v {
                Value::Object(m) => task.vars = m,
                _ => return Err(invalid("`vars` must be a mapping".into())),
            },
            "args" => match v {
                Value::Object(m) => extra_args = Some(m),
                _ => return Err(invalid("`args` must be a mapping".into())),
            },
            "until" => task.until = scalar_string(&v),
            "retries" => {
                task.retries = Some(
                    v.as_u64()
                        .ok_or_else(|| invalid("`retries` must be a number".into()))?
                        as u32,
                )
            }
            "delay" => {
                task.delay = duration(&v).ok_or_else(|| {
                    invalid("`delay` must be seconds or a duration like `5s`".into())
                })?
            }
            "run_once" => {
                task.run_once =
                    boolean(&v).ok_or_else(|| invalid("`run_once` must be true or false".into()))?
            }
            "delegate_to" => {
                task.delegate_to = Some(
                    scalar_string(&v)
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| invalid("`delegate_to` must be a host name".into()))?,
                )
            }
            "delegate_facts" => {
                task.delegate_facts = Some(
                    boolean(&v)
                        .ok_or_else(|| invalid("`delegate_facts` must be true or false".into()))?,
                )
            }
            "any_errors_fatal" => {
                task.any_errors_fatal =
                    Some(boolean(&v).ok_or_else(|| {
                        invalid("`any_errors_fatal` must be true or false".into())
                    })?)
            }
            "ignore_unreachable" => {
                task.ignore_unreachable =
                    Some(boolean(&v).ok_or_else(|| {
                        invalid("`ignore_unreachable` must be true or false".into())
                    })?)
            }
            "throttle" => {
                task.throttle = Some(
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            invalid(
                                "`throttle` must be a whole number of hosts (0: no limit)".into(),
                            )
                        })?,
                )
            }
            "timeout" => {
                task.timeout = Some(v.as_u64().ok_or_else(|| {
                    invalid("`timeout` must be a whole number of seconds (0: none)".into())
                })?)
            }
            "check_mode" => {
                task.check_mode = Some(
                    boolean(&v)
                        .ok_or_else(|| invalid("`check_mode` must be true or false".into()))?,
                )
            }
            "environment" => {
                task.environment =
                    environment(v).ok_or_else(|| invalid(ENVIRONMENT_SHAPE.into()))?
            }
            "diff" => {
                task.diff = Some(
                    boolean(&v).ok_or_else(|| invalid("`diff` must be true or false".into()))?,
                )
            }
            other => {
                let candidates = TASK_KEYWORDS.iter().copied().chain(tasks::names());
                return Err(PlaybookError::UnknownKey {
                    key: other.to_owned(),
                    context: "task: neither a task keyword nor a module".into(),
                    suggestion: nearest(other, candidates).map(str::to_owned),
                    span: key_span,
                });
            }
        }
    }

    if let Some((lookup, items)) = loop_items {
        task.loop_spec = Some(loop_spec(lookup, items, loop_control)?);
    }
    if local_delegate {
        task.delegate_to = Some("localhost".into());
    }
    let dynamic = match (&inclusion, &role_ref) {
        (Some((Inclusion::Include, _, _)), _) => Some("include_tasks"),
        (_, Some((Inclusion::Include, _, _))) => Some("include_role"),
        _ => None,
    };
    if let Some(action) = dynamic
        && let Some((key, at)) = keywords.iter().find(|(k, _)| !include_keyword(k))
    {
        return Err(PlaybookError::Invalid {
            message: format!(
                "`{key}` is not a keyword of `{action}` (ansible-core refuses it too: an \
                 include takes only {}); put it on the tasks it includes, or use the \
                 static `{}`",
                INCLUDE_KEYWORDS.join(", "),
                action.replace("include", "import")
            ),
            span: at.clone(),
        });
    }
    if let Some((kind, spec, at)) = role_ref {
        if module.is_some() || has_block {
            return Err(PlaybookError::Invalid {
                message: "a task with `import_role`/`include_role` runs no module and no block"
                    .into(),
                span: at,
            });
        }
        if kind == Inclusion::Import && task.loop_spec.is_some() {
            return Err(PlaybookError::Invalid {
                message: "`import_role` cannot loop (as in Ansible): use `include_role`".into(),
                span: at,
            });
        }
        let spec = match spec {
            Value::String(name) => serde_json::json!({ "role": name }),
            Value::Object(mut map) => {
                if let Some(name) = map.remove("name") {
                    map.insert("role".into(), name);
                }
                if let Some(apply) = role_arguments(kind, &map, &at)? {
                    task.apply = Some(Box::new(apply));
                }
                map.remove("apply");
                Value::Object(map)
            }
            _ => {
                return Err(PlaybookError::Invalid {
                    message: "`import_role`/`include_role` takes `name:` (and `tasks_from:`)"
                        .into(),
                    span: at,
                });
            }
        };
        if let Some(name) = spec.get("role").and_then(Value::as_str)
            && include::is_template(name)
        {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "`{}` with a role name that is a template (`{name}`) is not supported: \
                     convoy puts a role's handlers, defaults and vars in the play when it \
                     loads it; name the role (and choose with `when`), or include a tasks \
                     file named by a template",
                    if kind == Inclusion::Include {
                        "include_role"
                    } else {
                        "import_role"
                    }
                ),
                span: at,
            });
        }
        if kind == Inclusion::Include {
            task.include = spec
                .get("role")
                .and_then(Value::as_str)
                .map(|n| super::task::Include::Role(n.to_owned()));
        }
        task.role = Some(spec);
        task.kind = TaskKind::Block {
            block: vec![],
            rescue: vec![],
            always: vec![],
        };
        return Ok(task);
    }
    if let Some((kind, name, at)) = inclusion {
        if module.is_some() || has_block {
            return Err(PlaybookError::Invalid {
                message: "a task with `import_tasks`/`include_tasks` runs no module and no block"
                    .into(),
                span: at,
            });
        }
        let mut task = include::resolve(kind, file, &name, task, &at, depth)?;
        let mut kind = std::mem::replace(
            &mut task.kind,
            TaskKind::Block {
                block: vec![],
                rescue: vec![],
                always: vec![],
            },
        );
        if let TaskKind::Block { block, .. } = &mut kind {
            pass_delegation_down(&task, block.iter_mut());
        }
        task.kind = kind;
        return Ok(task);
    }

    task.kind = match (module, has_block) {
        (Some((spec, args, key_span)), false) => {
            let args_span = span(file, &args.referenced);
            let args = module_args(spec, args.value, extra_args, &key_span)?;
            if tasks::once_per_play(spec.name) {
                task.run_once = true;
            }
            TaskKind::Module {
                module: spec.name,
                args,
                args_span,
            }
        }
        (None, true) => {
            // Ansible does not gate a block with its `when`: every task
            // inside inherits the condition and is skipped on its own.
            let when = std::mem::take(&mut task.when);
            for child in block.iter_mut().chain(&mut rescue).chain(&mut always) {
                inherit_when(child, &when);
            }
            pass_delegation_down(
                &task,
                block.iter_mut().chain(&mut rescue).chain(&mut always),
            );
            TaskKind::Block {
                block,
                rescue,
                always,
            }
        }
        (Some((_, _, key_span)), true) => {
            return Err(PlaybookError::Invalid {
                message: "a task has either a module or a `block`, not both".into(),
                span: key_span,
            });
        }
        (None, false) => {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "task{} names no module (one of: {})",
                    task.name
                        .as_ref()
                        .map(|n| format!(" \"{n}\""))
                        .unwrap_or_default(),
                    tasks::names().collect::<Vec<_>>().join(", ")
                ),
                span: start,
            });
        }
    };
    Ok(task)
}

const LOCAL_ACTION: &str = "local_action";

/// The keywords ansible-core's `include_tasks` and `include_role` take
/// (TaskInclude.VALID_INCLUDE_KEYWORDS, `with_*` for its `loop_with`);
/// any other is an error there, not something the included tasks inherit.
const INCLUDE_KEYWORDS: &[&str] = &[
    "name",
    "when",
    "loop",
    "loop_control",
    "vars",
    "args",
    "tags",
    "register",
    "ignore_errors",
    "no_log",
    "run_once",
    "timeout",
];

fn include_keyword(key: &str) -> bool {
    INCLUDE_KEYWORDS.contains(&key) || LoopLookup::from_keyword(key).is_some()
}

/// `local_action: MODULE ARGS` or `local_action: {module: MODULE, ARG: ...}`:
/// the module and its arguments.
fn local_action(
    file: &Path,
    args: Spanned<RawArgs>,
    key_span: &SourceSpan,
) -> Result<(&'static ModuleSpec, Spanned<RawArgs>), PlaybookError> {
    let at = span(file, &args.referenced);
    let unknown = |name: &str, at: SourceSpan| PlaybookError::UnknownKey {
        key: name.to_owned(),
        context: "`local_action`: not a module".into(),
        suggestion: nearest(name, tasks::names()).map(str::to_owned),
        span: at,
    };
    let named = |name: &str| tasks::find(name).filter(|s| s.name != "meta");
    let (spec, rest) = match args.value {
        RawArgs::Free(text) => {
            let text = text.trim_start();
            let (name, rest) = text
                .split_once(char::is_whitespace)
                .map(|(n, r)| (n, r.trim_start()))
                .unwrap_or((text, ""));
            let spec = named(name).ok_or_else(|| unknown(name, at.clone()))?;
            let rest = if rest.is_empty() {
                RawArgs::Null
            } else {
                RawArgs::Free(rest.to_owned())
            };
            (spec, rest)
        }
        RawArgs::Map(mut map) => {
            let Some(module_key) = map.keys().find(|k| k.value == "module").cloned() else {
                return Err(PlaybookError::Invalid {
                    message: "`local_action` as a mapping names its module under `module:`".into(),
                    span: key_span.clone(),
                });
            };
            let name = map.shift_remove(&module_key).unwrap_or_default();
            let name = name.as_str().unwrap_or_default().to_owned();
            let spec =
                named(&name).ok_or_else(|| unknown(&name, span(file, &module_key.referenced)))?;
            (spec, RawArgs::Map(map))
        }
        RawArgs::Null => {
            return Err(PlaybookError::Invalid {
                message: "`local_action` names a module and its arguments".into(),
                span: key_span.clone(),
            });
        }
    };
    Ok((
        spec,
        Spanned {
            value: rest,
            referenced: args.referenced,
            defined: args.defined,
        },
    ))
}

/// The arguments of `import_role`/`include_role` other than the role's
/// name, checked as ansible-core checks them (IncludeRole.VALID_ARGS):
/// an unknown one is refused, naming it. Returns the `apply` block.
fn role_arguments(
    kind: Inclusion,
    map: &crate::vars::VarMap,
    at: &SourceSpan,
) -> Result<Option<Task>, PlaybookError> {
    let action = match kind {
        Inclusion::Include => "include_role",
        Inclusion::Import => "import_role",
    };
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: at.clone(),
    };
    let mut apply = None;
    for (key, v) in map {
        match key.as_str() {
            "role" | "tasks_from" | "vars_from" | "defaults_from" | "handlers_from"
            | "allow_duplicates" | "rolespec_validate" => {}
            "public" => {
                if boolean(v).is_none() {
                    return Err(invalid(format!(
                        "`{action}`: `public` must be true or false"
                    )));
                }
            }
            "apply" if kind == Inclusion::Include => {
                apply = Some(super::apply::parse(v, at)?);
            }
            other => {
                return Err(invalid(format!(
                    "`{other}` is not an option of `{action}` (ansible-core refuses it too): it \
                     takes name, tasks_from, vars_from, defaults_from, handlers_from, public, \
                     allow_duplicates, rolespec_validate{}",
                    if kind == Inclusion::Include {
                        " and apply"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    Ok(apply)
}

/// `import_role` / `include_role` (also `ansible.builtin.`).
fn role_inclusion(key: &str) -> Option<Inclusion> {
    match key.strip_prefix("ansible.builtin.").unwrap_or(key) {
        "import_role" => Some(Inclusion::Import),
        "include_role" => Some(Inclusion::Include),
        _ => None,
    }
}

/// Puts the roles that `import_role`/`include_role` tasks name in their
/// place, down every block; their handlers, defaults and vars go to `roles`.
fn place_roles(
    file: &Path,
    tasks: &mut [Task],
    roles: &mut super::role::Roles,
) -> Result<(), PlaybookError> {
    for task in tasks {
        let TaskKind::Block {
            block,
            rescue,
            always,
        } = &mut task.kind
        else {
            continue;
        };
        if let Some(spec) = task.role.take() {
            // An include_role's defaults and vars are its own unless
            // `public: true`; an import_role's join the play's.
            let public =
                task.include.is_none() || spec.get("public").and_then(boolean) == Some(true);
            let handlers_before = roles.handlers.len();
            let mut tasks = super::role::import(file, &spec, &task.span, roles, public)?;
            // The role's handlers run with the including task's vars, as
            // their parent in ansible-core is that task.
            for handler in &mut roles.handlers[handlers_before..] {
                let mut vars = task.vars.clone();
                crate::vars::merge(&mut vars, &handler.vars);
                handler.vars = vars;
            }
            if let Some(apply) = task.apply.take() {
                tasks = super::apply::wrap(&apply, tasks);
            }
            pass_delegation_down(task, tasks.iter_mut());
            let TaskKind::Block { block, .. } = &mut task.kind else {
                unreachable!("matched above")
            };
            *block = tasks;
            if task.include.is_none() {
                // import_role is static: its `when` holds for each task.
                let when = std::mem::take(&mut task.when);
                for child in block.iter_mut() {
                    inherit_when(child, &when);
                }
            }
            continue;
        }
        place_roles(file, block, roles)?;
        place_roles(file, rescue, roles)?;
        place_roles(file, always, roles)?;
    }
    Ok(())
}

/// `delegate_to` and `delegate_facts` on a block, an include or a role
/// task (`parent`): every task in `children` that does not say otherwise
/// takes them, down every block, as ansible-core's tasks inherit them from
/// their parents.
fn pass_delegation_down<'a>(parent: &Task, children: impl Iterator<Item = &'a mut Task>) {
    fn inherit(task: &mut Task, to: &Option<String>, facts: Option<bool>) {
        if task.delegate_to.is_none() {
            task.delegate_to = to.clone();
        }
        if task.delegate_facts.is_none() {
            task.delegate_facts = facts;
        }
        if let TaskKind::Block {
            block,
            rescue,
            always,
        } = &mut task.kind
        {
            for child in block.iter_mut().chain(rescue).chain(always) {
                inherit(child, to, facts);
            }
        }
    }
    if parent.delegate_to.is_none() && parent.delegate_facts.is_none() {
        return;
    }
    for child in children {
        inherit(child, &parent.delegate_to, parent.delegate_facts);
    }
}

/// Adds `when` (an enclosing block's) in front of the conditions of `task`,
/// down to the tasks that run: a block passes it on, an `include_tasks`
/// keeps it (evaluated once, on the include).
pub(super) fn inherit_when(task: &mut Task, when: &[String]) {
    if when.is_empty() {
        return;
    }
    match &mut task.kind {
        TaskKind::Block {
            block,
            rescue,
            always,
        } if task.include.is_none() => {
            for child in block.iter_mut().chain(rescue).chain(always) {
                inherit_when(child, when);
            }
        }
        _ => {
            let mut all = when.to_vec();
            all.append(&mut task.when);
            task.when = all;
        }
    }
}

/// `become_method`: convoy becomes with sudo only; another method is
/// refused rather than silently run through sudo.
fn sudo_only(method: &str, at: SourceSpan) -> Result<(), PlaybookError> {
    if method == "sudo" {
        return Ok(());
    }
    Err(PlaybookError::Invalid {
        message: format!(
            "`become_method: {method}` is not supported: convoy becomes another user with sudo only"
        ),
        span: at,
    })
}

/// Keys of `loop_control`, as Ansible's `LoopControl` has them.
const LOOP_CONTROL_KEYS: &[&str] = &[
    "loop_var",
    "index_var",
    "label",
    "pause",
    "extended",
    "extended_allitems",
];

/// `loop` and its `loop_control`, every key checked: a key accepted and
/// ignored would leave its variable undefined at run time.
fn loop_spec(
    lookup: LoopLookup,
    items: Value,
    control: Option<(Value, SourceSpan)>,
) -> Result<LoopSpec, PlaybookError> {
    let mut spec = LoopSpec {
        items,
        lookup,
        loop_var: "item".into(),
        label: None,
        index_var: None,
        extended: false,
        extended_allitems: true,
        pause: Duration::ZERO,
    };
    let Some((control, at)) = control else {
        return Ok(spec);
    };
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: at.clone(),
    };
    let Value::Object(control) = control else {
        return Err(invalid("`loop_control` must be a mapping".into()));
    };
    for (key, value) in control {
        match key.as_str() {
            "loop_var" | "index_var" => {
                let name = identifier(&value).ok_or_else(|| {
                    invalid(format!("`loop_control.{key}` must be a variable name"))
                })?;
                if key == "loop_var" {
                    spec.loop_var = name;
                } else {
                    spec.index_var = Some(name);
                }
            }
            "label" => spec.label = scalar_string(&value),
            "pause" => {
                spec.pause = duration(&value).ok_or_else(|| {
                    invalid("`loop_control.pause` must be seconds or a duration like `5s`".into())
                })?
            }
            "extended" | "extended_allitems" => {
                let on = boolean(&value).ok_or_else(|| {
                    invalid(format!("`loop_control.{key}` must be true or false"))
                })?;
                if key == "extended" {
                    spec.extended = on;
                } else {
                    spec.extended_allitems = on;
                }
            }
            other => {
                return Err(PlaybookError::UnknownKey {
                    key: other.to_owned(),
                    context: "`loop_control`".into(),
                    suggestion: nearest(other, LOOP_CONTROL_KEYS.iter().copied())
                        .map(str::to_owned),
                    span: at,
                });
            }
        }
    }
    Ok(spec)
}

/// Normalises module arguments to a map and checks their names.
fn module_args(
    spec: &ModuleSpec,
    raw: RawArgs,
    extra: Option<VarMap>,
    key_span: &SourceSpan,
) -> Result<Value, PlaybookError> {
    let mut args = VarMap::new();
    let mut spans: Vec<(String, SourceSpan)> = vec![];
    match raw {
        RawArgs::Null => {}
        RawArgs::Free(text) if spec.free_form => {
            args.insert("_raw_params".into(), Value::String(text));
        }
        RawArgs::Free(text) => {
            for word in super::kv_args::split(&text) {
                let Some((k, v)) = word.split_once('=') else {
                    return Err(PlaybookError::Invalid {
                        message: format!(
                            "module `{}` takes key=value arguments, `{word}` is not one",
                            spec.name
                        ),
                        span: key_span.clone(),
                    });
                };
                args.insert(k.to_owned(), Value::String(v.to_owned()));
                spans.push((k.to_owned(), key_span.clone()));
            }
        }
        RawArgs::Map(map) => {
            for (k, v) in map {
                let s = SourceSpan::from_location(&key_span.file, &k.referenced)
                    .unwrap_or_else(|| key_span.clone());
                spans.push((k.value.clone(), s));
                args.insert(k.value, v);
            }
        }
    }
    for (k, v) in extra.unwrap_or_default() {
        spans.push((k.clone(), key_span.clone()));
        args.insert(k, v);
    }
    for (name, at) in spans {
        if !spec.any_name && !spec.args.contains(&name.as_str()) {
            return Err(PlaybookError::UnknownKey {
                suggestion: nearest(&name, spec.args.iter().copied()).map(str::to_owned),
                key: name,
                context: format!("arguments of module `{}`", spec.name),
                span: at,
            });
        }
    }
    let args = Value::Object(args);
    // Arguments without a template are what every host will get: the
    // module's own checks (`seconds` and `minutes` together) fail here,
    // before any host is contacted, rather than on each host.
    if !holds_template(&args)
        && let Err(message) = (spec.build)(args.clone())
    {
        return Err(PlaybookError::Invalid {
            message: format!("module `{}`: {message}", spec.name),
            span: key_span.clone(),
        });
    }
    Ok(args)
}

/// Whether any string in `v` is template text (rendered per host).
/// What `environment:` may be, said where it is not.
pub(super) const ENVIRONMENT_SHAPE: &str = "`environment` must be a mapping of variable names to values, a template that renders to one, or a list of those";

/// `environment:` as Ansible's list-valued keyword takes it: a mapping or a
/// template is a list of one; the entries render per host at run time.
pub(super) fn environment(v: Value) -> Option<Vec<Value>> {
    let entry = |v: &Value| matches!(v, Value::Object(_) | Value::String(_));
    match v {
        Value::Null => Some(vec![]),
        Value::Array(items) if items.iter().all(entry) => Some(items),
        v if entry(&v) => Some(vec![v]),
        _ => None,
    }
}

fn holds_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%") || s.contains("{#"),
        Value::Array(items) => items.iter().any(holds_template),
        Value::Object(map) => map.values().any(holds_template),
        _ => false,
    }
}

pub(super) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn identifier(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(str::to_owned)
}

/// `when:`-style conditions: a string, a bool, or a list of them.
pub(super) fn conditions(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(conditions).collect(),
        Value::Null => vec![],
        other => scalar_string(other).into_iter().collect(),
    }
}

/// A string or a list of strings (tags, notify); comma-separated strings split like Ansible's tags.
pub(super) fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(scalar_string).collect(),
        Value::Null => vec![],
        other => scalar_string(other).into_iter().collect(),
    }
}

pub(super) fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Some(true),
            "no" | "false" | "off" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

fn duration(v: &Value) -> Option<Duration> {
    match v {
        Value::Number(n) => n.as_f64().map(Duration::from_secs_f64),
        Value::String(s) => humantime::parse_duration(s).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `convoy run playbooks/deploy.yml` (the README's own
    /// command) got an empty project directory, and the run journal could
    /// not be written ("cannot make an empty path absolute").
    #[test]
    fn a_relative_playbook_in_playbooks_resolves_to_the_current_directory() {
        assert_eq!(base_dir(Path::new("playbooks/deploy.yml")), Path::new("."));
        assert_eq!(base_dir(Path::new("deploy.yml")), Path::new("."));
        assert_eq!(
            base_dir(Path::new("/srv/project/playbooks/deploy.yml")),
            Path::new("/srv/project")
        );
    }
}
