//! `pause`: wait a number of seconds or minutes, or for the operator to
//! press enter, as Ansible's `pause` action: never "changed", once per play
//! (ansible-core bypasses the host loop: the first host runs it, see
//! [`super::once_per_play`]), in check mode too.
//!
//! A prompt without a duration waits for a line only when stdin is a
//! terminal; otherwise it goes on at once, as ansible-core does ("Not
//! waiting for response to prompt as stdin is not interactive"). With a
//! duration, the prompt is shown and the input ignored.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Action, ActionContext, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "pause",
    args: &["seconds", "minutes", "prompt", "echo"],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Pause::from_args(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    seconds: Option<Value>,
    minutes: Option<Value>,
    prompt: Option<String>,
    echo: Option<Value>,
}

struct Pause {
    /// How long, when a duration is given; `minutes` says how to report it.
    wait: Option<(u64, bool)>,
    prompt: Option<String>,
}

impl Pause {
    fn from_args(a: Args) -> Result<Self, String> {
        if let Some(echo) = &a.echo
            && super::file::lenient::as_bool(echo).is_none()
        {
            return Err(format!("`echo` must be a boolean, not {echo}"));
        }
        let wait = match (&a.seconds, &a.minutes) {
            (Some(_), Some(_)) => {
                return Err("parameters are mutually exclusive: minutes|seconds".into());
            }
            (Some(s), None) => Some((whole("seconds", s)?.max(1), false)),
            (None, Some(m)) => Some(((whole("minutes", m)? * 60).max(1), true)),
            (None, None) => None,
        };
        Ok(Self {
            wait,
            prompt: a.prompt,
        })
    }
}

/// Python's `int()` of the value, as ansible-core converts these: a
/// number is truncated, a string must be an integer.
fn whole(name: &str, v: &Value) -> Result<u64, String> {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.map(|n| n.max(0) as u64)
        .ok_or_else(|| format!("`{name}` must be an integer, not {v}"))
}

impl Action for Pause {
    fn run<'a>(
        &'a self,
        _ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let started = Instant::now();
            let mut outcome = Outcome::ok();
            let mut input = String::new();
            match self.wait {
                Some((seconds, _)) => {
                    if let Some(prompt) = &self.prompt {
                        eprintln!("{prompt}");
                    }
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                }
                None if std::io::stdin().is_terminal() => {
                    let prompt = self
                        .prompt
                        .clone()
                        .unwrap_or_else(|| "Press enter to continue".into());
                    eprint!("{prompt}: ");
                    input = tokio::task::spawn_blocking(|| {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line).map(|_| line)
                    })
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default()
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                }
                None => {
                    outcome = outcome
                        .with_msg("Not waiting for response to prompt as stdin is not interactive");
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            let stdout = match self.wait {
                Some((_, true)) => format!("Paused for {} minutes", round2(elapsed / 60.0)),
                _ => format!("Paused for {} seconds", round2(elapsed)),
            };
            Ok(outcome
                .with("rc", 0)
                .with("delta", elapsed as u64)
                .with("stdout", stdout)
                .with("stderr", "")
                .with("user_input", input))
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(v: serde_json::Value) -> Result<Pause, String> {
        Pause::from_args(parse_args(v)?)
    }

    #[test]
    fn durations_as_ansible_core_reads_them() {
        assert_eq!(
            build(serde_json::json!({"seconds": 3})).unwrap().wait,
            Some((3, false))
        );
        assert_eq!(
            build(serde_json::json!({"seconds": "2"})).unwrap().wait,
            Some((2, false))
        );
        assert_eq!(
            build(serde_json::json!({"seconds": 0})).unwrap().wait,
            Some((1, false))
        );
        assert_eq!(
            build(serde_json::json!({"seconds": 1.9})).unwrap().wait,
            Some((1, false))
        );
        assert_eq!(
            build(serde_json::json!({"minutes": 2})).unwrap().wait,
            Some((120, true))
        );
        assert_eq!(
            build(serde_json::json!({"prompt": "go?"})).unwrap().wait,
            None
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(build(serde_json::json!({"seconds": 1, "minutes": 1})).is_err());
        assert!(build(serde_json::json!({"seconds": "soon"})).is_err());
        assert!(build(serde_json::json!({"echo": "perhaps"})).is_err());
        assert!(build(serde_json::json!({"second": 1})).is_err());
    }
}
