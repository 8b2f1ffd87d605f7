//! Running playbooks: plays in order, each task on every active host of the
//! play at once (bounded by `--forks`), Ansible's "linear" strategy.
//!
//! Workers never print: they send events to the reporter. Hosts keep their
//! state (connection, facts, registered results, failure) for the whole run.

mod batch_pause;
pub(crate) mod connect;
pub(crate) mod context;
pub mod control;
pub mod control_client;
pub mod control_socket;
mod delegation;
mod dynamic_include;
pub mod escalation;
mod fail_percentage;
mod fan_out;
mod health_gate;
mod host_cycle;
mod host_state;
mod interrupt;
mod lock;
mod lock_holder;
mod lock_renewal;
mod loop_items;
mod loop_lookups;
mod meta_direction;
mod migrations;
pub(crate) mod once_lock;
mod play;
mod pooled_cycle;
pub mod preflight;
pub(crate) mod proxy_step;
mod release_cycle;
mod release_preview;
mod rollout_switch;
mod serial;
mod start_at;
mod step;
mod switch_hooks;
mod tags;
mod task_list;
mod task_runner;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;

pub use control::{ControlCommand, RunControl};
pub use escalation::BecomeError;
pub use fan_out::Forks;
pub use host_state::HostState;
pub use interrupt::Interrupt;
pub use start_at::StartAt;
pub use tags::TagFilter;
pub use task_list::{TaskListEnd, TaskListPlace, run_task_list};

use crate::distribution::ArtifactCache;
use crate::inventory::Inventory;
use crate::playbook::Playbook;
use crate::report::{Event, Recap, Reporter};
use crate::template::Templates;
use crate::vars::VarMap;

/// Settings of one run, already checked.
pub struct RunOptions {
    pub limit: Option<String>,
    pub extra_vars: VarMap,
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    pub tags: TagFilter,
    /// `-F` for every ssh connection (`--ssh-config`).
    pub ssh_config: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    /// `-u`: the ssh user where no variable names one (above ansible.cfg's `remote_user`).
    pub remote_user: Option<String>,
    pub connect_timeout: std::time::Duration,
    pub mode: Mode,
    /// Answer `pause: confirm` with continue (for runs without a terminal).
    pub yes: bool,
    /// Also take over a stale deploy lock (not renewed for `LockTiming::stale_after`).
    pub force_unlock: bool,
    /// Names this run in locks, the journal and the hosts' audit logs.
    pub run_id: String,
    /// Continuing an interrupted run (`convoy resume`).
    pub resume: Option<Resume>,
    /// Recorded in release metadata on the hosts.
    pub playbook_name: String,
    /// `--once NAME`: the whole run in one instance only.
    pub once: Option<crate::playbook::OnceSpec>,
    /// `--start-at-task NAME`.
    pub start_at: Option<StartAt>,
    /// The SSH masters alive at once (`--max-connections`), shared by
    /// every connection the command opens.
    pub masters: std::sync::Arc<crate::transport::MasterPool>,
    /// sudo's password from the command line (`-K`, `--become-password-file`);
    /// a host's `ansible_become_password` overrides it.
    pub become_password: Option<crate::transport::BecomePassword>,
}

/// What a run does with plays that have a `distribution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Tasks, then the release cycle up to `phase`.
    Deploy { phase: Phase },
    /// Switch back to the previous release, or the one named.
    Rollback { to: Option<String> },
    /// A new release from the current one with some files replaced.
    Patch { files: Vec<(String, Vec<u8>)> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Ship and unpack everywhere; switch nothing.
    Prepare,
    /// Prepare, switch and confirm.
    All,
}

/// How the run ended, for the exit code.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub failed_hosts: usize,
    pub unreachable_hosts: usize,
    /// Every host the run targeted.
    pub hosts: usize,
    pub interrupted: bool,
    /// A refusal found on the hosts before anything changed (exit 3).
    pub refused: Option<String>,
    /// How each release cycle ended (completed, stopped, rolled_back, prepared).
    pub cycles: Vec<&'static str>,
    /// The operator stopped the rollout or rolled it back (`convoy ctl`, or
    /// the answer at `pause: confirm`).
    pub by_operator: bool,
}

impl RunSummary {
    /// One word for the journal's `run_end`.
    pub fn outcome(&self) -> &'static str {
        if self.interrupted {
            "interrupted"
        } else if self.refused.is_some() {
            "refused"
        } else if self.hosts > 0 && self.unreachable_hosts == self.hosts {
            // No host was reached: a rollout "completed" on none of them.
            "unreachable"
        } else if let Some(worst) = [
            "rollback_incomplete",
            "rolled_back",
            "stopped",
            "completed",
            "prepared",
            "checked",
        ]
        .into_iter()
        .find(|w| self.cycles.contains(w))
        {
            // A rollout's own end says more than its hosts' counts.
            worst
        } else if self.failed_hosts > 0 {
            "failed"
        } else if self.unreachable_hosts > 0 {
            "unreachable"
        } else {
            "completed"
        }
    }
}

/// Everything shared by the hosts of a run.
pub struct Runner<'a> {
    pub inventory: &'a Inventory,
    pub playbook: &'a Playbook,
    pub templates: Arc<Templates>,
    pub options: &'a RunOptions,
    pub reporter: Reporter,
    pub interrupt: Interrupt,
    /// Requests from `convoy ctl`, read at batch boundaries.
    pub control: RunControl,
    pub control_dir: PathBuf,
    /// Local artifacts, hashed once per run.
    pub artifacts: Arc<ArtifactCache>,
    /// Connections of delegated tasks (`delegate_to`), one per host.
    pub delegates: delegation::Delegates,
    /// A task under `any_errors_fatal` failed: no later play runs.
    pub fatal: std::sync::atomic::AtomicBool,
    /// Every host of a play's batch failed: no later play runs, as
    /// ansible-core's playbook executor breaks its plays loop then.
    pub batch_failed_whole: std::sync::atomic::AtomicBool,
    /// The current batch's failures, for `max_fail_percentage`.
    pub batch_failures: fail_percentage::BatchFailures,
}

impl Runner<'_> {
    /// The run's bound on hosts worked on at once.
    pub fn forks(&self) -> Forks {
        Forks::new(self.options.forks)
    }

    pub async fn run(&self) -> RunSummary {
        let started = Instant::now();
        let mut hosts: IndexMap<String, HostState> = IndexMap::new();
        let mut refused = None;
        let mut cycles = Vec::new();
        let mut proxy_failures = 0;
        let mut once = None;
        if let (Some(spec), Some(first)) = (&self.options.once, self.playbook.plays.first()) {
            match once_lock::take(self, &first.hosts, spec, &mut hosts).await {
                Ok(gate) => once = Some(gate),
                Err(message) => refused = Some(message),
            }
        }
        let skipped = matches!(once, Some(once_lock::OnceGate::Skip));
        for play in &self.playbook.plays {
            if refused.is_some() || skipped {
                break;
            }
            if self.interrupt.is_set()
                || self.control.halted()
                || self.fatal.load(std::sync::atomic::Ordering::Relaxed)
                || self
                    .batch_failed_whole
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                break;
            }
            match play::run_play(self, play, &mut hosts).await {
                Ok(end) => {
                    cycles.extend(end.cycle.map(|c| c.as_str()));
                    proxy_failures += usize::from(end.proxy_failed);
                }
                Err(message) => {
                    refused = Some(message);
                    break;
                }
            }
        }
        if let Some(once_lock::OnceGate::Held(lock)) = once {
            lock.release(self).await;
        }
        if self.control.halted() {
            // `convoy ctl stop` (or rollback, whose own outcome ranks higher).
            cycles.push("stopped");
        }
        let mut recap = Recap {
            elapsed: started.elapsed(),
            interrupted: self.interrupt.is_set(),
            ..Recap::default()
        };
        let mut summary = RunSummary {
            interrupted: recap.interrupted,
            refused,
            cycles,
            failed_hosts: proxy_failures,
            by_operator: self.control.halted(),
            ..RunSummary::default()
        };
        // Every master connection is closed at once: one round trip each.
        self.delegates.close().await;
        let mut hosts: Vec<(String, HostState)> = hosts.into_iter().collect();
        self.forks()
            .each(hosts.iter_mut(), |(_, host)| host.close())
            .await;
        summary.hosts = hosts.len();
        for (name, host) in hosts {
            // A host failed by another's `any_errors_fatal` fails the run, as
            // in ansible-core, though its recap counts no failure.
            summary.failed_hosts += usize::from(host.stats.failed > 0 || host.failed_by_fatal);
            summary.unreachable_hosts += usize::from(host.stats.unreachable > 0);
            recap.hosts.insert(name, host.stats);
        }
        self.reporter.send(Event::Recap(recap));
        summary
    }
}

impl RunSummary {
    /// The operator ended the rollout before it completed, with no host
    /// failing: `convoy ctl stop|rollback`, or `[s]top` at `pause: confirm`
    /// (a failed rollout that stopped or rolled back has failed hosts).
    ///
    /// Decided by who ended it, not by how it ended: a failure budget spent
    /// on unreachable hosts also ends `stopped`, with no failed host, and is
    /// exit 4, not the operator's 130.
    pub fn ended_by_operator(&self) -> bool {
        self.by_operator && self.failed_hosts == 0
    }
}

/// The exit code for a finished run: interrupted beats failed beats unreachable.
/// A rollout the operator stopped or rolled back is not a success: the
/// fleet is half-switched or back where it was, and a CI deploy step must
/// not go green on it; it exits like Ctrl-C (130), which is the same act
/// (the batch in flight settles, nothing new starts) from another terminal.
pub fn exit_code(summary: &RunSummary) -> i32 {
    use crate::error::*;
    if summary.interrupted {
        EXIT_INTERRUPTED
    } else if summary.refused.is_some() {
        EXIT_BAD_INPUT
    } else if summary.failed_hosts > 0 {
        EXIT_FAILED
    } else if summary.ended_by_operator() {
        EXIT_INTERRUPTED
    } else if summary.unreachable_hosts > 0 {
        EXIT_UNREACHABLE
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_the_operator_stopped_or_rolled_back_is_not_a_success() {
        for end in ["stopped", "rolled_back"] {
            let by_operator = RunSummary {
                hosts: 3,
                cycles: vec![end],
                by_operator: true,
                ..RunSummary::default()
            };
            assert_eq!(exit_code(&by_operator), crate::error::EXIT_INTERRUPTED);
            let failed = RunSummary {
                failed_hosts: 1,
                ..by_operator
            };
            assert_eq!(exit_code(&failed), crate::error::EXIT_FAILED);
        }
        let done = RunSummary {
            hosts: 3,
            cycles: vec!["completed"],
            ..RunSummary::default()
        };
        assert_eq!(exit_code(&done), crate::error::EXIT_OK);
    }

    #[test]
    fn a_failure_budget_spent_on_unreachable_hosts_is_not_the_operators_stop() {
        let summary = RunSummary {
            hosts: 2,
            unreachable_hosts: 2,
            cycles: vec!["stopped"],
            ..RunSummary::default()
        };
        assert_eq!(exit_code(&summary), crate::error::EXIT_UNREACHABLE);
    }

    #[test]
    fn a_run_that_reached_no_host_is_unreachable() {
        let summary = RunSummary {
            hosts: 2,
            unreachable_hosts: 2,
            cycles: vec!["completed"],
            ..RunSummary::default()
        };
        assert_eq!(summary.outcome(), "unreachable");
        assert_eq!(exit_code(&summary), crate::error::EXIT_UNREACHABLE);
        let some = RunSummary {
            unreachable_hosts: 1,
            ..summary
        };
        assert_eq!(some.outcome(), "completed");
    }
}

/// A run id: sortable by time, unique enough across operators.
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{stamp}-{:04x}", rand::random::<u16>())
}

/// What a resumed run takes from the interrupted run's journal.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub run_id: String,
    /// Per play name: its batches, and how many of them finished.
    pub plays: std::collections::HashMap<String, ResumedPlay>,
}

#[derive(Debug, Clone)]
pub struct ResumedPlay {
    pub plan: crate::rollout::RolloutPlan,
    pub batches_done: usize,
}
