//! `vars_prompt`: play variables asked of the operator. All of a
//! playbook's questions are asked before the run starts (ansible-core asks
//! at each play's start): a deploy then never stops half-way waiting for an
//! answer. A variable given with `-e` is not asked, as in ansible-core.
//! Without a terminal the default is used; a question with no default is
//! an error before any host is contacted (ansible-core would go on with
//! the variable empty).

use std::io::IsTerminal;

use serde::Deserialize;

use super::{Playbook, PlaybookError};
use crate::source::SourceSpan;
use crate::vars::{Value, VarMap};

/// One entry of `vars_prompt`, every key checked (`encrypt`, `salt`...
/// are refused as unknown keys: convoy does not hash answers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrompt {
    pub name: String,
    pub prompt: Option<String>,
    pub default: Option<Value>,
    #[serde(default = "yes")]
    pub private: bool,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default, rename = "unsafe")]
    pub unsafe_: bool,
}

fn yes() -> bool {
    true
}

/// A question and where it was written.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub raw: RawPrompt,
    pub span: SourceSpan,
}

/// Asks every play's questions (or takes their defaults) and sets the
/// answers as the plays' variables.
pub fn answer_all(playbook: &mut Playbook, extra_vars: &VarMap) -> Result<(), PlaybookError> {
    let terminal = std::io::stdin().is_terminal();
    for play in &mut playbook.plays {
        for prompt in std::mem::take(&mut play.vars_prompt) {
            let raw = &prompt.raw;
            if extra_vars.contains_key(&raw.name) {
                continue;
            }
            let value = if terminal {
                ask(raw).map_err(|message| PlaybookError::Invalid {
                    message,
                    span: prompt.span.clone(),
                })?
            } else {
                match &raw.default {
                    Some(default) => default.clone(),
                    None => {
                        return Err(PlaybookError::Invalid {
                            message: format!(
                                "vars_prompt `{}` needs an answer and stdin is not a terminal: \
                                 give it with `-e {}=...` or a `default:`",
                                raw.name, raw.name
                            ),
                            span: prompt.span.clone(),
                        });
                    }
                }
            };
            play.vars.insert(raw.name.clone(), value);
        }
    }
    Ok(())
}

/// The operator's answer: the default on an empty line, asked twice when
/// `confirm` (until both agree, as ansible-core).
fn ask(raw: &RawPrompt) -> Result<Value, String> {
    let question = raw.prompt.clone().unwrap_or_else(|| raw.name.clone());
    let question = match &raw.default {
        Some(d) => format!("{question} [{}]: ", crate::python_text::str(d)),
        None => format!("{question}: "),
    };
    loop {
        let answer = crate::terminal::ask(&question, raw.private).map_err(|e| e.to_string())?;
        if raw.confirm {
            let again = crate::terminal::ask(&format!("confirm {question}"), raw.private)
                .map_err(|e| e.to_string())?;
            if again != answer {
                eprintln!("***** VALUES ENTERED DO NOT MATCH ****");
                continue;
            }
        }
        return Ok(match (&raw.default, answer.is_empty()) {
            (Some(default), true) => default.clone(),
            _ => Value::String(answer),
        });
    }
}
