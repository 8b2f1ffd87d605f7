//! Keeping a live run's deploy locks fresh. A lock's age is the time since
//! its holder last renewed it, so "stale" means "its run stopped renewing
//! it", not "its run started long ago": a rollout paused for hours keeps
//! its lock, and `--force-unlock` takes only a silent one.
//!
//! One task per locked host touches the lock over the run's own
//! connection (a new channel on its master; a new login if the master was
//! closed to keep within `--max-connections`) at once (marking
//! it `complete`: this run holds all its locks) and then every
//! [`LockTiming::renew_every`]; a host that cannot be reached for a while
//! simply misses renewals. The tasks end when the run releases its locks
//! (or with the process).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::distribution::lock::{self, Renewed};
use crate::report::{Event, Reporter};
use crate::transport::{Become, Connection};

/// How often a live run renews its locks, and how long a lock may go
/// without renewal before it counts as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    pub renew_every: Duration,
    pub stale_after: Duration,
}

impl LockTiming {
    /// 30 s between renewals; stale after 5 min, ten missed renewals: a
    /// holder whose link drops for a minute or two keeps its lock, and one
    /// that died is taken over (with `--force-unlock`) minutes later, not
    /// an hour later.
    pub const DEFAULT: LockTiming = LockTiming {
        renew_every: Duration::from_secs(30),
        stale_after: Duration::from_secs(300),
    };

    /// The defaults, or `CONVOY_LOCK_RENEW_SECS` / `CONVOY_LOCK_STALE_SECS`
    /// (undocumented in `--help`: they exist so the tests need not wait
    /// minutes).
    pub fn from_env() -> LockTiming {
        let secs = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
        };
        LockTiming {
            renew_every: secs("CONVOY_LOCK_RENEW_SECS").unwrap_or(Self::DEFAULT.renew_every),
            stale_after: secs("CONVOY_LOCK_STALE_SECS").unwrap_or(Self::DEFAULT.stale_after),
        }
    }
}

/// When a run's first renewal is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRenewal {
    /// At once: nothing else marks the lock `complete`.
    Now,
    /// One period after the start: the run's own scripts mark it.
    Later,
}

/// One locked host, as the renewal needs it.
pub struct RenewalTarget {
    pub host: String,
    pub conn: Arc<Connection>,
    pub root: String,
    /// The host's release escalation.
    pub sudo: Option<Become>,
    /// Set when the run may have released this lock itself (see
    /// `HostCycle::releasing`): a lock found gone then ends the renewal quietly.
    pub releasing: Arc<std::sync::atomic::AtomicBool>,
}

/// The running renewal of one run's locks; [`LockRenewal::stop`] ends it
/// (dropping it does too).
pub struct LockRenewal {
    tasks: JoinSet<()>,
}

impl LockRenewal {
    /// Starts renewing `holder_line`'s lock on every target; `lock` names
    /// it in the note of a lost lock ("deploy lock", "once NAME lock").
    /// At most `at_once` renewals are in flight (the run's --forks): each
    /// is a remote command, with its pipes and a session on the master, and
    /// every target's first one is due at the same moment.
    ///
    /// With `first` [`FirstRenewal::Now`] the first renewal is at once (it
    /// marks the lock `complete`); with [`FirstRenewal::Later`] the run's
    /// next script on each host carries the mark
    /// ([`crate::distribution::lock::complete_mark`]) and the first renewal
    /// is one period later: a run shorter than that renews nothing, and
    /// pays no round trip for it.
    pub fn start(
        targets: Vec<RenewalTarget>,
        holder_line: String,
        every: Duration,
        reporter: Reporter,
        lock: String,
        at_once: usize,
        first: FirstRenewal,
    ) -> LockRenewal {
        let mut tasks = JoinSet::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(at_once.max(1)));
        for target in targets {
            let (line, reporter, lock) = (holder_line.clone(), reporter.clone(), lock.clone());
            let slots = Arc::clone(&slots);
            tasks.spawn(async move {
                let start = match first {
                    FirstRenewal::Now => tokio::time::Instant::now(),
                    FirstRenewal::Later => tokio::time::Instant::now() + every,
                };
                let mut ticks = tokio::time::interval_at(start, every);
                // A renewal that took long (link down) is not followed by a burst.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // The first renewal marks the lock `complete` (unless a
                // script of the run did), which tells an older run waiting
                // for it to give up.
                loop {
                    ticks.tick().await;
                    let Ok(slot) = slots.acquire().await else { return };
                    let answer = lock::renew(&target.conn, &target.root, &line, target.sudo.as_ref()).await;
                    drop(slot);
                    if let Ok(Ok(Renewed::Lost { holder })) = answer {
                        if holder.is_empty()
                            && target.releasing.load(std::sync::atomic::Ordering::SeqCst)
                        {
                            return;
                        }
                        let now = if holder.is_empty() {
                            "it was removed".to_owned()
                        } else {
                            format!("it is now held by {holder}")
                        };
                        reporter.send(Event::Note {
                            message: format!(
                                "{}: this run lost its {lock} ({now}); another run may change this host",
                                target.host
                            ),
                        });
                        return;
                    }
                    // Unreachable or refused: try again next time; the
                    // lock only goes stale after many missed renewals.
                }
            });
        }
        LockRenewal { tasks }
    }

    /// A run that holds no lock renews nothing.
    pub fn none() -> LockRenewal {
        LockRenewal {
            tasks: JoinSet::new(),
        }
    }

    /// Stops renewing, and waits until no renewal is in flight (so none
    /// runs after the lock is released).
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}
