//! `include_tasks: {file: F, apply: {...}}` and `include_role: {name: R,
//! apply: {...}}`: keywords an include gives the tasks it includes (its
//! own keywords select the include itself only). ansible-core makes
//! `apply` a block around the included tasks; so does convoy, with the
//! block keywords convoy's blocks carry. Any other key is refused, naming
//! it, rather than dropped.

use super::PlaybookError;
use super::load::{
    ENVIRONMENT_SHAPE, boolean, conditions, environment, inherit_when, scalar_string, string_list,
};
use super::task::{Task, TaskKind};
use crate::source::SourceSpan;
use crate::vars::Value;

/// The block keywords `apply` takes.
const APPLY_KEYWORDS: &[&str] = &[
    "tags",
    "when",
    "become",
    "become_user",
    "vars",
    "environment",
    "no_log",
    "check_mode",
    "diff",
    "any_errors_fatal",
    "ignore_unreachable",
];

/// The block `apply` makes (its `block` still empty), checked here.
pub fn parse(value: &Value, at: &SourceSpan) -> Result<Task, PlaybookError> {
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: at.clone(),
    };
    let Value::Object(map) = value else {
        return Err(invalid(
            "`apply` must be a mapping of block keywords".into(),
        ));
    };
    let mut block = Task::ad_hoc(
        TaskKind::Block {
            block: vec![],
            rescue: vec![],
            always: vec![],
        },
        at.clone(),
    );
    let flag = |key: &str, v: &Value| {
        boolean(v).ok_or_else(|| invalid(format!("`apply.{key}` must be true or false")))
    };
    for (key, v) in map {
        match key.as_str() {
            "tags" => block.tags = string_list(v),
            "when" => block.when = conditions(v),
            "become" => block.sudo = Some(flag(key, v)?),
            "become_user" => block.become_user = scalar_string(v),
            "vars" => match v {
                Value::Object(m) => block.vars = m.clone(),
                _ => return Err(invalid("`apply.vars` must be a mapping".into())),
            },
            "environment" => {
                block.environment =
                    environment(v.clone()).ok_or_else(|| invalid(ENVIRONMENT_SHAPE.into()))?
            }
            "no_log" => block.no_log = flag(key, v)?,
            "check_mode" => block.check_mode = Some(flag(key, v)?),
            "diff" => block.diff = Some(flag(key, v)?),
            "any_errors_fatal" => block.any_errors_fatal = Some(flag(key, v)?),
            "ignore_unreachable" => block.ignore_unreachable = Some(flag(key, v)?),
            other => {
                return Err(invalid(format!(
                    "`apply.{other}` is not supported: `apply` takes {}",
                    APPLY_KEYWORDS.join(", ")
                )));
            }
        }
    }
    Ok(block)
}

/// `tasks` inside the block `apply` made: its `when` goes to each task,
/// as a block's does.
pub fn wrap(apply: &Task, mut tasks: Vec<Task>) -> Vec<Task> {
    let mut block = apply.clone();
    let when = std::mem::take(&mut block.when);
    for task in &mut tasks {
        inherit_when(task, &when);
    }
    block.kind = TaskKind::Block {
        block: tasks,
        rescue: vec![],
        always: vec![],
    };
    vec![block]
}
