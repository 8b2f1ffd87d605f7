//! `gather_facts` and `gather_subset` on a play: the implicit "Gathering
//! Facts" task (the `setup` module) that runs before the play's first
//! task, as in Ansible, where `gather_facts` defaults to true.

use serde_saphyr::Spanned;

use super::load::{boolean, span};
use super::{PlaybookError, Task, TaskKind};
use crate::facts::Subset;
use crate::vars::{Value, VarMap};

/// The play's gathering task, or `None` for `gather_facts: false`. A play
/// of convoy's own (`distribution:`, `proxy:` or `job:`) gathers only when
/// it says `gather_facts: true`: a release's hosts must meet the rollout's
/// failure budget at their first contact (a host lost while gathering
/// would leave the play before the budget counts it), and a job's play
/// has no tasks to read facts.
pub fn convert(
    file: &std::path::Path,
    gather_facts: Option<Spanned<Value>>,
    gather_subset: Option<Spanned<Value>>,
    play_span: &crate::source::SourceSpan,
    convoy_play: bool,
) -> Result<Option<Task>, PlaybookError> {
    let gather = match &gather_facts {
        None => !convoy_play,
        Some(g) => boolean(&g.value).ok_or_else(|| PlaybookError::Invalid {
            message: "`gather_facts` takes true or false".into(),
            span: span(file, &g.referenced),
        })?,
    };
    let subset = match &gather_subset {
        None => vec!["all".to_owned()],
        Some(s) => {
            let at = span(file, &s.referenced);
            let entries = match &s.value {
                Value::String(text) => text
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(t) => Ok(t.clone()),
                        _ => Err(PlaybookError::Invalid {
                            message: "`gather_subset` takes names (a string or a list of strings)"
                                .into(),
                            span: at.clone(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => {
                    return Err(PlaybookError::Invalid {
                        message: "`gather_subset` takes names (a string or a list of strings)"
                            .into(),
                        span: at,
                    });
                }
            };
            Subset::parse(&entries).map_err(|e| PlaybookError::Invalid {
                message: format!("`gather_subset`: {e}"),
                span: at.clone(),
            })?;
            entries
        }
    };
    if !gather {
        return Ok(None);
    }
    let at = gather_facts
        .as_ref()
        .map(|g| span(file, &g.referenced))
        .unwrap_or_else(|| play_span.clone());
    let mut args = VarMap::new();
    args.insert(
        "gather_subset".into(),
        Value::Array(subset.into_iter().map(Value::String).collect()),
    );
    let mut task = Task::ad_hoc(
        TaskKind::Module {
            module: "setup",
            args: Value::Object(args),
            args_span: at.clone(),
        },
        at,
    );
    task.name = Some("Gathering Facts".into());
    // Ansible's gathering runs whatever `--tags` says.
    task.tags = vec!["always".into()];
    Ok(Some(task))
}
