//! Control of a running run from elsewhere (`convoy ctl RUN pause |
//! continue | stop | rollback`): one shared state that the control socket
//! writes requests into and the batch loops read at every batch boundary.
//!
//! Requests are only acted on between batches, so a batch in flight always
//! settles (its switch, hooks and health gate) before the run pauses, stops
//! or rolls back: no host is left between two releases. Whoever asked waits
//! for the loop's answer ("paused after batch 1/3"), so `ctl` reports what
//! the run did, not what it was told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::Interrupt;

/// What an operator can ask of a running run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlCommand {
    /// Let the batch in flight settle, then wait before the next one.
    Pause,
    /// Go on after a pause.
    Continue,
    /// End after the batch in flight; hosts stay where they are.
    Stop,
    /// Start the fleet rollback: every host switched in this run goes back.
    Rollback,
}

impl ControlCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlCommand::Pause => "pause",
            ControlCommand::Continue => "continue",
            ControlCommand::Stop => "stop",
            ControlCommand::Rollback => "rollback",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        [Self::Pause, Self::Continue, Self::Stop, Self::Rollback]
            .into_iter()
            .find(|c| c.as_str() == word)
    }
}

/// The answer to a request: what the run did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlAnswer {
    /// `false`: nothing was done (refused, or the run ended first).
    pub done: bool,
    pub message: String,
}

impl ControlAnswer {
    fn done(message: String) -> Self {
        Self {
            done: true,
            message,
        }
    }

    fn refused(message: String) -> Self {
        Self {
            done: false,
            message,
        }
    }
}

/// What a batch loop does at a batch boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlOrder {
    Go,
    Stop,
    RollBack,
}

/// The requests and the pause of one run, shared by the control socket and
/// the batch loops (cheap to clone).
#[derive(Clone, Default)]
pub struct RunControl {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    pending: Option<Pending>,
    paused: bool,
    /// Set when no batch boundary is left: requests are answered at once.
    ended: Option<String>,
    /// A `stop` or `rollback` was acted on: no later play starts either.
    halted: bool,
}

struct Pending {
    command: ControlCommand,
    waiters: Vec<oneshot::Sender<ControlAnswer>>,
}

impl RunControl {
    /// Hands `command` to the run and waits for its answer, which comes at
    /// the next batch boundary (at once for `continue`).
    pub async fn request(&self, command: ControlCommand) -> ControlAnswer {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.lock().expect("control state");
            if let Some(outcome) = &state.ended {
                return ControlAnswer::refused(format!(
                    "the run has no batch left to start ({outcome}); nothing done"
                ));
            }
            if command == ControlCommand::Continue && !state.paused {
                return match state.pending.take() {
                    Some(p) if p.command == ControlCommand::Pause => {
                        answer_all(
                            p.waiters,
                            ControlAnswer::refused("pause withdrawn by `continue`".into()),
                        );
                        ControlAnswer::done("pause withdrawn before it took effect".into())
                    }
                    other => {
                        state.pending = other;
                        ControlAnswer::refused("not paused: nothing to continue".into())
                    }
                };
            }
            match state.pending.as_mut() {
                Some(p) if p.command == command => p.waiters.push(tx),
                _ => {
                    if let Some(old) = state.pending.take() {
                        let word = command.as_str();
                        answer_all(
                            old.waiters,
                            ControlAnswer::refused(format!("superseded by `{word}`")),
                        );
                    }
                    state.pending = Some(Pending {
                        command,
                        waiters: vec![tx],
                    });
                }
            }
        }
        self.wake.notify_waiters();
        rx.await.unwrap_or_else(|_| {
            ControlAnswer::refused("the run ended before it acted on it".into())
        })
    }

    /// A request is waiting for the next batch boundary (a timed pause
    /// between batches ends early for it).
    pub fn has_pending(&self) -> bool {
        self.state.lock().expect("control state").pending.is_some()
    }

    /// At a batch boundary: acts on the pending request, waits while paused
    /// (Ctrl-C ends the wait: the caller then sees the interrupt). `done` and
    /// `total` say where the run is; `rollback` is `None` when the play has
    /// nothing to roll back, else what a rollback will do.
    pub async fn boundary(
        &self,
        done: usize,
        total: usize,
        rollback: Option<&str>,
        interrupt: &Interrupt,
    ) -> ControlOrder {
        let at = if done == 0 {
            format!("before batch 1/{total}")
        } else {
            format!("after batch {done}/{total}")
        };
        loop {
            let wake = self.wake.notified();
            let (order, paused) = {
                let mut state = self.state.lock().expect("control state");
                let pending = state.pending.take();
                let order = pending.map(|p| act(&mut state, p, &at, done, total, rollback));
                (order, state.paused)
            };
            match order {
                Some(Some(order)) => return order,
                Some(None) => continue,
                None if !paused || interrupt.is_set() => return ControlOrder::Go,
                None => {
                    // Woken by a request, or every so often to see Ctrl-C.
                    let _ = tokio::time::timeout(Duration::from_millis(200), wake).await;
                }
            }
        }
    }

    /// The operator stopped the run or rolled it back: later plays do not start.
    pub fn halted(&self) -> bool {
        self.state.lock().expect("control state").halted
    }

    /// The operator answered `stop` or `rollback` at `pause: confirm`: the
    /// same act as `convoy ctl stop|rollback`, recorded in the same place.
    pub fn halt(&self) {
        self.state.lock().expect("control state").halted = true;
    }

    /// The run has passed its last batch boundary: what is still pending
    /// (and what comes later) is answered with `outcome`.
    pub fn end(&self, outcome: &str) {
        let mut state = self.state.lock().expect("control state");
        state.ended = Some(outcome.to_owned());
        if let Some(p) = state.pending.take() {
            answer_all(
                p.waiters,
                ControlAnswer::refused(format!(
                    "the run ended ({outcome}) before another batch boundary; nothing done"
                )),
            );
        }
    }
}

/// One request at a boundary; `None`: keep waiting or look again.
fn act(
    state: &mut State,
    pending: Pending,
    at: &str,
    done: usize,
    total: usize,
    rollback: Option<&str>,
) -> Option<ControlOrder> {
    let (answer, order) = match pending.command {
        ControlCommand::Pause if state.paused => {
            (ControlAnswer::refused(format!("already paused {at}")), None)
        }
        ControlCommand::Pause => {
            state.paused = true;
            (ControlAnswer::done(format!("paused {at}")), None)
        }
        ControlCommand::Continue => {
            state.paused = false;
            (
                ControlAnswer::done(format!("continuing with batch {}/{total}", done + 1)),
                Some(ControlOrder::Go),
            )
        }
        ControlCommand::Stop => {
            state.paused = false;
            (
                ControlAnswer::done(format!(
                    "stopped {at}; {} batch(es) not started, hosts stay where they are",
                    total - done
                )),
                Some(ControlOrder::Stop),
            )
        }
        ControlCommand::Rollback => match rollback {
            Some(what) => {
                state.paused = false;
                (
                    ControlAnswer::done(format!("rolling back {at}: {what}")),
                    Some(ControlOrder::RollBack),
                )
            }
            None => (
                ControlAnswer::refused(format!(
                    "nothing to roll back: this play has no release (no `distribution:`); still {}",
                    if state.paused { "paused" } else { "running" }
                )),
                None,
            ),
        },
    };
    state.halted |= matches!(order, Some(ControlOrder::Stop | ControlOrder::RollBack));
    answer_all(pending.waiters, answer);
    order
}

fn answer_all(waiters: Vec<oneshot::Sender<ControlAnswer>>, answer: ControlAnswer) {
    for w in waiters {
        let _ = w.send(answer.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pause_waits_at_the_boundary_until_continue() {
        let control = RunControl::default();
        let interrupt = Interrupt::default();
        let asker = tokio::spawn({
            let c = control.clone();
            async move { c.request(ControlCommand::Pause).await }
        });
        while !control.has_pending() {
            tokio::task::yield_now().await;
        }
        let loop_side = tokio::spawn({
            let (c, i) = (control.clone(), interrupt.clone());
            async move { c.boundary(1, 3, Some("back"), &i).await }
        });
        let answer = asker.await.unwrap();
        assert_eq!(answer, ControlAnswer::done("paused after batch 1/3".into()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!loop_side.is_finished(), "the boundary did not wait");
        let answer = control.request(ControlCommand::Continue).await;
        assert_eq!(answer.message, "continuing with batch 2/3");
        assert_eq!(loop_side.await.unwrap(), ControlOrder::Go);
    }

    #[tokio::test]
    async fn rollback_is_refused_where_there_is_no_release() {
        let control = RunControl::default();
        let asker = tokio::spawn({
            let c = control.clone();
            async move { c.request(ControlCommand::Rollback).await }
        });
        while !control.has_pending() {
            tokio::task::yield_now().await;
        }
        let order = control.boundary(0, 2, None, &Interrupt::default()).await;
        assert_eq!(order, ControlOrder::Go);
        let answer = asker.await.unwrap();
        assert!(!answer.done, "{answer:?}");
        assert!(
            answer.message.starts_with("nothing to roll back"),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn continue_without_pause_and_requests_after_the_end_are_refused() {
        let control = RunControl::default();
        let answer = control.request(ControlCommand::Continue).await;
        assert_eq!(
            answer,
            ControlAnswer::refused("not paused: nothing to continue".into())
        );
        control.end("completed");
        let answer = control.request(ControlCommand::Stop).await;
        assert!(!answer.done);
        assert!(answer.message.contains("(completed)"), "{answer:?}");
    }
}
