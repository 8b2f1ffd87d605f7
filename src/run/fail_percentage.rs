//! `max_fail_percentage`, as ansible-core's linear strategy applies it:
//! after every task, when the hosts of the current batch that failed
//! (for good: a failure a `rescue` may still catch does not count yet)
//! are more than the percentage of the batch's size, every other host of
//! the batch fails too, and the play and the run end (ansible-core's
//! `RUN_FAILED_BREAK_PLAY`). Counted per batch: each `serial` batch
//! starts from none, as ansible-core clears its failed hosts per batch.

use std::collections::HashSet;
use std::sync::Mutex;

/// The current batch's failures, shared by every task of the batch.
#[derive(Default)]
pub struct BatchFailures(Mutex<State>);

#[derive(Default)]
struct State {
    hosts: Vec<String>,
    failed: HashSet<String>,
    /// Hosts to fail when their task list is next looked at (they were not
    /// among the hosts of the task that broke the limit).
    doomed: HashSet<String>,
}

impl BatchFailures {
    /// A batch of `hosts` starts.
    pub fn start(&self, hosts: impl IntoIterator<Item = String>) {
        *self.0.lock().expect("batch failures") = State {
            hosts: hosts.into_iter().collect(),
            ..State::default()
        };
    }

    /// `host` failed, and no rescue can take it back.
    pub fn failed(&self, host: &str) {
        self.0
            .lock()
            .expect("batch failures")
            .failed
            .insert(host.to_owned());
    }

    /// Whether the failures exceed `percent` of the batch.
    pub fn exceed(&self, percent: f64) -> bool {
        let state = self.0.lock().expect("batch failures");
        !state.hosts.is_empty()
            && state.failed.len() as f64 / state.hosts.len() as f64 > percent / 100.0
    }

    /// The limit was broken at a task of `marked` hosts (failed there):
    /// every other host of the batch that has not failed is to fail too.
    pub fn doom_the_rest(&self, marked: &[String]) {
        let mut state = self.0.lock().expect("batch failures");
        let rest: Vec<String> = state
            .hosts
            .iter()
            .filter(|h| !state.failed.contains(*h) && !marked.contains(h))
            .cloned()
            .collect();
        state.failed.extend(marked.iter().cloned());
        state.doomed.extend(rest);
    }

    /// Whether `host` is to fail now (once: a later `always` still runs).
    pub fn take_doomed(&self, host: &str) -> bool {
        self.0.lock().expect("batch failures").doomed.remove(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> BatchFailures {
        let b = BatchFailures::default();
        b.start((1..=n).map(|i| format!("h{i}")));
        b
    }

    #[test]
    fn more_than_the_percentage_breaks_the_limit_equal_does_not() {
        let b = batch(2);
        b.failed("h1");
        assert!(!b.exceed(50.0));
        assert!(b.exceed(49.0));
        assert!(b.exceed(0.0));
        let b = batch(4);
        assert!(!b.exceed(0.0));
    }

    #[test]
    fn the_rest_of_the_batch_is_doomed_once() {
        let b = batch(3);
        b.failed("h1");
        b.doom_the_rest(&["h2".to_owned()]);
        assert!(!b.take_doomed("h1") && !b.take_doomed("h2"));
        assert!(b.take_doomed("h3"));
        assert!(!b.take_doomed("h3"));
        b.start(["h4".to_owned()]);
        assert!(!b.exceed(0.0));
    }
}
