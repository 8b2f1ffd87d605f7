//! What happens between two batches, for a release's rollout and for a
//! plain play's batches alike: nothing, a wait (cut short by Ctrl-C or a
//! `convoy ctl` request, which the caller then acts on), or a question to
//! the operator.

use std::io::IsTerminal;
use std::time::Instant;

use super::Runner;
use crate::playbook::Pause;
use crate::report::Event;

/// What the operator (or the wait) decided before the next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Continue,
    RollBack,
    Stop,
}

/// Between batches `next` (0-based) and the one before, of `total`.
/// `may_roll_back`: the question offers a rollback (a release's rollout
/// has one; a plain play's batches do not).
pub async fn between(
    runner: &Runner<'_>,
    pause: &Pause,
    next: usize,
    total: usize,
    may_roll_back: bool,
) -> Decision {
    match pause {
        Pause::None => Decision::Continue,
        Pause::For(d) => {
            runner.reporter.send(Event::Note {
                message: format!(
                    "pausing {} before batch {}/{total}",
                    humantime::format_duration(*d),
                    next + 1
                ),
            });
            let until = Instant::now() + *d;
            // A `convoy ctl` request is acted on at once, not after the wait.
            while Instant::now() < until
                && !runner.interrupt.is_set()
                && !runner.control.has_pending()
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Decision::Continue
        }
        Pause::Confirm if runner.options.yes => Decision::Continue,
        Pause::Confirm => {
            let choices = if may_roll_back {
                "[c]ontinue / [r]ollback / [s]top"
            } else {
                "[c]ontinue / [s]top"
            };
            let question = format!(
                "batch {next}/{total} done. continue with batch {}? {choices}: ",
                next + 1
            );
            tokio::task::spawn_blocking(move || ask(&question, may_roll_back))
                .await
                .unwrap_or(Decision::Stop)
        }
    }
}

/// Asks on the terminal (pre-flight made sure there is one, or --yes).
fn ask(question: &str, may_roll_back: bool) -> Decision {
    use std::io::Write;
    if !std::io::stdin().is_terminal() {
        return Decision::Stop;
    }
    loop {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return Decision::Stop;
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "c" | "continue" | "y" | "yes" => return Decision::Continue,
            "r" | "rollback" if may_roll_back => return Decision::RollBack,
            "s" | "stop" | "n" | "no" => return Decision::Stop,
            _ => {}
        }
    }
}
