use std::time::Duration;

use serde::Serialize;

use super::Recap;
use crate::tasks::FileDiff;

/// Something the executor did, for the renderers.
#[derive(Debug, Clone)]
pub enum Event {
    PlayStart {
        play: String,
        hosts: Vec<String>,
    },
    TaskStart {
        task: String,
        hosts: usize,
        handler: bool,
    },
    HostStart {
        host: String,
    },
    HostResult(Box<HostResult>),
    /// A run begins (first line of the journal).
    RunStart {
        run_id: String,
        playbook: String,
        argv: Vec<String>,
    },
    /// The batches of a play's rollout, decided before the first switch.
    RolloutPlanned {
        play: String,
        plan: crate::rollout::RolloutPlan,
    },
    /// A batch finished switching and its health gate.
    BatchEnd {
        play: String,
        index: usize,
        failed: Vec<String>,
    },
    /// The run is over: completed, stopped, rolled_back, interrupted, failed, refused.
    RunEnd {
        outcome: String,
        exit_code: i32,
    },
    /// The switched hosts of a failed rollout start going back.
    Rollback {
        play: String,
        hosts: Vec<String>,
    },
    /// A rollout batch starts switching.
    BatchStart {
        index: usize,
        total: usize,
        hosts: Vec<String>,
        canary: bool,
    },
    /// Something the operator must know that is not a task result (a plan, a budget exceeded, a rollback).
    Note {
        message: String,
    },
    /// A `convoy ctl` command received over the control socket, with the
    /// run's answer (recorded for refusals too: who tried is worth knowing).
    Control {
        command: String,
        uid: Option<u32>,
        done: bool,
        answer: String,
    },
    Recap(Recap),
}

/// One task's result on one host (and one loop item).
#[derive(Debug, Clone)]
pub struct HostResult {
    pub host: String,
    /// The host a delegated task ran on (`delegate_to`), as labelled in
    /// the output: `[h1 -> h2]`.
    pub delegated_to: Option<String>,
    pub task: String,
    pub status: Status,
    pub msg: Option<String>,
    pub item: Option<String>,
    pub duration: Duration,
    pub diffs: Vec<FileDiff>,
    /// Failed, but `ignore_errors` let the host carry on.
    pub ignored: bool,
    /// stdout/stderr, shown with -v.
    pub output: Option<String>,
    /// A command's exit status, for grouping hosts by answer (`convoy exec`).
    pub rc: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipping",
            Status::Unreachable => "unreachable",
        }
    }
}

impl HostResult {
    /// The one-line text shown for a result, the same in every text renderer.
    pub fn line(&self) -> String {
        let mut line = match &self.delegated_to {
            Some(to) => format!("{}: [{} -> {to}]", self.status.as_str(), self.host),
            None => format!("{}: [{}]", self.status.as_str(), self.host),
        };
        if let Some(item) = &self.item {
            line.push_str(&format!(" => (item={item})"));
        }
        if let Some(msg) = &self.msg
            && (matches!(self.status, Status::Failed | Status::Unreachable) || !msg.is_empty())
        {
            line.push_str(&format!(": {msg}"));
        }
        if self.ignored {
            line.push_str(" ...ignoring");
        }
        line
    }
}

impl Event {
    /// The event with every ansible-vault secret decrypted so far replaced
    /// by `********`, in whatever it shows: messages, items, output,
    /// diffs, task names. Every renderer (screen, json, journal) gets
    /// events through here, so none can print a secret.
    pub fn redacted(self) -> Event {
        let r = |s: String| match crate::vault::redact(&s) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(o) => o,
        };
        match self {
            Event::HostResult(mut result) => {
                result.task = r(result.task);
                result.msg = result.msg.map(r);
                result.item = result.item.map(r);
                result.output = result.output.map(r);
                for diff in &mut result.diffs {
                    diff.before = r(std::mem::take(&mut diff.before));
                    diff.after = r(std::mem::take(&mut diff.after));
                }
                Event::HostResult(result)
            }
            Event::TaskStart {
                task,
                hosts,
                handler,
            } => Event::TaskStart {
                task: r(task),
                hosts,
                handler,
            },
            Event::PlayStart { play, hosts } => Event::PlayStart {
                play: r(play),
                hosts,
            },
            Event::Note { message } => Event::Note {
                message: r(message),
            },
            other => other,
        }
    }
}
