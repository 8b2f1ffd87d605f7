//! What `magic_rollback` asks of a play: when a host's timer fires, the
//! host itself switches back and runs the switch hooks, with no convoy to
//! run modules, evaluate conditions or loop. So its switch hooks must be
//! plain `shell` or `command` tasks, without `when` or `loop`.

use super::{Play, PlaybookError, TaskKind};

pub fn check(play: &Play) -> Result<(), PlaybookError> {
    if play
        .rollout
        .as_ref()
        .and_then(|r| r.magic_rollback)
        .is_none()
    {
        return Ok(());
    }
    for task in &play.hooks.switch {
        let problem = match &task.kind {
            TaskKind::Block { .. } => Some("a block".to_owned()),
            TaskKind::Module { module, .. } if !matches!(*module, "shell" | "command") => {
                Some(format!("module `{module}`"))
            }
            _ if !task.when.is_empty() => Some("`when`".to_owned()),
            _ if task.loop_spec.is_some() => Some("`loop`".to_owned()),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "switch hook `{}` uses {problem}, but `magic_rollback` is on: a host whose timer fires runs its switch hooks by itself, so they must be plain `shell` or `command` tasks without `when` or `loop`",
                    task.display_name()
                ),
                span: task.span.clone(),
            });
        }
    }
    Ok(())
}
