//! The one way a step reaches many hosts: at most `--forks` at once.
//!
//! A fleet may have thousands of hosts; an unbounded `join_all` would open
//! a connection (and an sshd session, and a remote shell) to every one of
//! them at the same moment. Every fan-out of the run goes through
//! [`Forks::each`], so the bound is decided in one place.

use std::future::Future;

use futures::StreamExt;

/// The run's bound on hosts worked on at once (`--forks`, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forks(usize);

impl Forks {
    pub fn new(forks: usize) -> Self {
        Self(forks.max(1))
    }

    /// Runs `work` on each item, at most this many at once, started in the
    /// items' order; the results come back in the items' order.
    pub async fn each<I, F, Fut>(self, items: I, work: F) -> Vec<Fut::Output>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut,
        Fut: Future,
    {
        futures::stream::iter(items)
            .map(work)
            .buffered(self.0)
            .collect()
            .await
    }

    /// Runs already-made futures, at most this many at once; the results
    /// come back in order. (For callers whose work borrows in ways a
    /// closure passed to [`Forks::each`] cannot express.)
    pub async fn all<I>(self, futures: I) -> Vec<<I::Item as Future>::Output>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        futures::stream::iter(futures)
            .buffered(self.0)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn never_more_than_forks_at_once_and_results_in_order() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let out = Forks::new(3)
            .each(0..20u64, |i| {
                let (running, peak) = (&running, &peak);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Later items finish first: order must still be kept.
                    tokio::time::sleep(std::time::Duration::from_millis(20 - i)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                }
            })
            .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }
}
