//! A bound on the SSH master connections alive at once, across a run.
//!
//! Each master is an `ssh -M` process with a control socket and a login
//! on its host: a fleet of 5,000 hosts must not hold 5,000 of them on the
//! controller. A command holds its host's master only while it runs;
//! between commands the master is idle. When a host needs a master and
//! the bound is reached, the least recently used idle master is closed
//! (and waited for until its process is gone, so the bound holds for
//! processes, not only for convoy's bookkeeping). Its host connects again
//! the next time it runs a command, with the same host key checks as the
//! first time: a reconnection is a new connection.
//!
//! When every master is busy, a command waits for one to go idle. That
//! cannot wait forever as long as no command waits for another host's
//! command while it holds its own master, which holds for every `exec`
//! (one command, then the master is let go). Following output (`logs -f`)
//! holds every host's master at once, so that command runs unbounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openssh::Session;
use tokio::sync::Notify;

/// The least `--max-connections` defaults to, whatever `--forks`.
pub const MIN_DEFAULT_BOUND: usize = 256;

/// The masters of one process; shared by every connection it opens.
pub struct MasterPool {
    bound: usize,
    state: Mutex<State>,
    /// A master went idle or was closed: a waiting command looks again.
    freed: Notify,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Orders uses, for least-recently-used eviction.
    clock: u64,
    /// Every master alive or being opened: what counts against the bound.
    masters: HashMap<u64, Master>,
    /// Masters of connections closed (or dropped) whose processes may not
    /// have exited yet: they count too. (A master closed to make way for
    /// another host's is not counted here: that host opens its own only
    /// once the process is gone.)
    closing: usize,
}

struct Master {
    /// `None` while it is being opened.
    session: Option<Live>,
    /// Commands running on it now; a master in use is never closed.
    in_use: usize,
    last_used: u64,
}

#[derive(Clone)]
pub(super) struct Live {
    pub session: Arc<Session>,
    /// The master's process, when it told us (to wait for it to exit).
    pid: Option<u32>,
}

impl MasterPool {
    /// At most `bound` masters at once (at least 1).
    pub fn new(bound: usize) -> Arc<MasterPool> {
        Arc::new(MasterPool {
            bound: bound.max(1),
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        })
    }

    /// The default bound for `--forks F`: five times F, and never fewer
    /// than [`MIN_DEFAULT_BOUND`]. A release cycle goes over every host in
    /// each of its phases (lock, prepare, each batch's switch, unlock), so a
    /// fleet larger than the bound reconnects nearly every host in each
    /// phase (the least recently used master is always the one the next
    /// host of the pass needs): at twice F, 50 hosts at the default 10
    /// forks paid five SSH handshakes each and ran at twice the
    /// hand-written floor's time; at five times F, 100 and 200 hosts cost
    /// 3 to 3.5 times the controller CPU per host of 50 (296 and 343 ms
    /// against 81). A floor of 256 keeps fleets of hundreds on one
    /// connection per host at any `--forks`, and still bounds a fleet of
    /// thousands (an idle master is one small ssh process and no file
    /// descriptor of convoy's).
    pub fn default_bound(forks: usize) -> usize {
        forks.max(1).saturating_mul(5).max(MIN_DEFAULT_BOUND)
    }

    /// The most masters alive at once.
    pub fn bound(&self) -> usize {
        self.bound
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves counts that are still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place in the pool for one host's connection (no master yet).
    pub(super) fn member(self: &Arc<Self>) -> Arc<Member> {
        let mut s = self.state();
        s.next_id += 1;
        Arc::new(Member {
            pool: Arc::clone(self),
            id: s.next_id,
            opening: tokio::sync::Mutex::new(()),
        })
    }
}

/// One connection's standing in the pool.
pub(super) struct Member {
    pool: Arc<MasterPool>,
    id: u64,
    /// Claims are made one at a time: a second command waits for the
    /// first one's master rather than opening its own.
    opening: tokio::sync::Mutex<()>,
}

/// What a command gets from [`Member::claim`].
pub(super) enum Claim {
    /// The host's master is alive: run on it.
    Live(Lease, Live),
    /// A place is reserved: close `evicted` (another host's idle master
    /// that made way), then open a master and [`Opening::install`] it.
    /// Owning, so it can be finished by a task of its own: a command
    /// cancelled while its master is being opened must not leave an
    /// `ssh -M` running that nobody counts.
    Open(Opening, Option<Live>),
}

impl Member {
    /// Waits until this host has a master to run a command on, or a place
    /// to open one (closing the least recently used idle master if the
    /// bound is reached).
    pub(super) async fn claim(self: &Arc<Self>) -> Claim {
        let _one = self.opening.lock().await;
        loop {
            let freed = self.pool.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a release in between is not missed.
            freed.as_mut().enable();
            match self.try_claim() {
                Some(claim) => return claim,
                None => freed.await,
            }
        }
    }

    fn try_claim(self: &Arc<Self>) -> Option<Claim> {
        let mut s = self.pool.state();
        s.clock += 1;
        let now = s.clock;
        if let Some(m) = s.masters.get_mut(&self.id) {
            // `None`: another command of this host is opening it; wait for it.
            let live = m.session.clone()?;
            m.in_use += 1;
            m.last_used = now;
            let member = Arc::clone(self);
            return Some(Claim::Live(Lease { member }, live));
        }
        let evicted = if s.masters.len() + s.closing >= self.pool.bound {
            let victim = s
                .masters
                .iter()
                .filter(|(_, m)| m.in_use == 0 && m.session.is_some())
                .min_by_key(|(_, m)| m.last_used)
                .map(|(id, _)| *id)?;
            s.masters.remove(&victim).and_then(|m| m.session)
        } else {
            None
        };
        s.masters.insert(
            self.id,
            Master {
                session: None,
                in_use: 1,
                last_used: now,
            },
        );
        let member = Arc::clone(self);
        Some(Claim::Open(
            Opening {
                member,
                installed: false,
            },
            evicted,
        ))
    }

    /// Leaves the pool; answers the master to close, if it has one, still
    /// counted against the bound until [`Member::closed`].
    fn leave(&self) -> Option<Live> {
        let mut s = self.pool.state();
        let live = s.masters.remove(&self.id).and_then(|m| m.session);
        if live.is_some() {
            s.closing += 1;
        }
        drop(s);
        self.pool.freed.notify_waiters();
        live
    }

    /// A master handed out by [`Member::leave`] has exited.
    fn closed(pool: &MasterPool) {
        let mut s = pool.state();
        s.closing = s.closing.saturating_sub(1);
        drop(s);
        pool.freed.notify_waiters();
    }

    /// The connection is closed: its master exits before its place is free.
    pub(super) async fn close(self: Arc<Self>) {
        if let Some(live) = self.leave() {
            close(live).await;
            Member::closed(&self.pool);
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // A connection dropped without `close` (its last owner let go):
        // its master is closed in the background, still counted until it is gone.
        let Some(live) = self.leave() else { return };
        let pool = Arc::clone(&self.pool);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    close(live).await;
                    Member::closed(&pool);
                });
            }
            Err(_) => {
                // The session's own Drop asks the master to exit.
                drop(live);
                Member::closed(&pool);
            }
        }
    }
}

/// A command running on its host's master; dropping it lets the master go idle.
pub(super) struct Lease {
    member: Arc<Member>,
}

impl Lease {
    /// The master died under us (its idle bound, a dropped link): takes it
    /// out, to close it before a new one is opened in its place (other
    /// commands of this host wait for that one meanwhile).
    pub(super) fn take(&self) -> Option<Live> {
        let mut s = self.member.pool.state();
        s.masters.get_mut(&self.member.id)?.session.take()
    }

    /// The new master in the place of the one taken.
    pub(super) fn put(&self, fresh: Live) {
        if let Some(m) = self.member.pool.state().masters.get_mut(&self.member.id) {
            m.session = Some(fresh);
        }
        self.member.pool.freed.notify_waiters();
    }

    /// No new master could be opened: the place is given back.
    pub(super) fn give_up(&self) {
        self.member.pool.state().masters.remove(&self.member.id);
        self.member.pool.freed.notify_waiters();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let pool = &self.member.pool;
        {
            let mut s = pool.state();
            s.clock += 1;
            let now = s.clock;
            let id = self.member.id;
            if let Some(m) = s.masters.get_mut(&id) {
                m.in_use = m.in_use.saturating_sub(1);
                m.last_used = now;
                // Taken out to be replaced, and the replacing was
                // abandoned: nobody is opening it, so nobody may wait for it.
                if m.in_use == 0 && m.session.is_none() {
                    s.masters.remove(&id);
                }
            }
        }
        pool.freed.notify_waiters();
    }
}

/// A reserved place whose master is being opened; dropped without
/// [`Opening::install`] (the connection failed), the place is given back.
pub(super) struct Opening {
    member: Arc<Member>,
    installed: bool,
}

impl Opening {
    /// The master is open: it takes the reserved place, in use by the
    /// command that opened it.
    pub(super) fn install(mut self, session: Session, pid: Option<u32>) -> (Lease, Live) {
        let live = Live::new(session, pid);
        self.installed = true;
        let member = Arc::clone(&self.member);
        if let Some(m) = member.pool.state().masters.get_mut(&member.id) {
            m.session = Some(live.clone());
        }
        member.pool.freed.notify_waiters();
        (Lease { member }, live)
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if self.installed {
            return;
        }
        // Nothing was opened: there is nothing to wait for.
        self.member.pool.state().masters.remove(&self.member.id);
        self.member.pool.freed.notify_waiters();
    }
}

impl Live {
    pub(super) fn new(session: Session, pid: Option<u32>) -> Live {
        Live {
            session: Arc::new(session),
            pid,
        }
    }
}

/// Closes a master and waits (a little) until its process has exited: the
/// bound is on processes and sockets, not on convoy's counts.
pub(super) async fn close(master: Live) {
    match Arc::try_unwrap(master.session) {
        Ok(session) => {
            let _ = session.close().await;
        }
        // Still held by a command that just ended: dropping it asks the master to exit.
        Err(shared) => drop(shared),
    }
    let Some(pid) = master.pid else { return };
    let proc = format!("/proc/{pid}");
    let gone = || !std::path::Path::new(&proc).exists() || zombie(&proc);
    for _ in 0..400 {
        if gone() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Asked to exit 2 s ago and still there (a loaded machine, a host that
    // stopped answering): the bound is on processes, so it is ended rather
    // than left to finish beside the master that replaces it.
    // kill(1): the rare slow path is not worth an unsafe block.
    let _ = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await;
    for _ in 0..1000 {
        if gone() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn zombie(proc: &str) -> bool {
    std::fs::read_to_string(format!("{proc}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The pid of the master behind `ctl` (it says so when asked).
pub(super) async fn master_pid(ctl: &std::path::Path) -> Option<u32> {
    let mut conn = openssh_mux_client::Connection::connect(ctl).await.ok()?;
    conn.send_alive_check().await.ok().map(|pid| pid.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session object for a master that does not exist: the pool only
    /// counts and closes them (closing one that is not there fails quietly).
    fn fake() -> Session {
        Session::resume_mux(std::path::Path::new("/nonexistent/cvy-test").into(), None)
    }

    fn alive(pool: &MasterPool) -> usize {
        pool.state().masters.len()
    }

    fn opened(claim: Claim) -> Lease {
        match claim {
            Claim::Open(place, _) => place.install(fake(), None).0,
            Claim::Live(..) => panic!("expected to open a master"),
        }
    }

    #[tokio::test]
    async fn the_least_recently_used_idle_master_makes_way_and_busy_ones_never_do() {
        let pool = MasterPool::new(2);
        let (a, b, c) = (pool.member(), pool.member(), pool.member());
        drop(opened(a.claim().await));
        let b_busy = opened(b.claim().await);
        // Full: c's master takes a's place (idle), not b's (in use).
        drop(opened(c.claim().await));
        assert_eq!(alive(&pool), 2);
        assert!(!pool.state().masters.contains_key(&a.id));
        // a again: b is busy and c idle, so c makes way.
        let a_busy = opened(a.claim().await);
        assert!(!pool.state().masters.contains_key(&c.id));
        // c now: both masters are in use, so it waits, never going over the bound.
        let waiting = tokio::time::timeout(Duration::from_millis(100), c.claim()).await;
        assert!(waiting.is_err(), "a third master was opened over the bound");
        assert_eq!(alive(&pool), 2);
        // b's command ends: c opens in b's place.
        let (c_claim, ()) = tokio::join!(c.claim(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(b_busy);
        });
        drop(opened(c_claim));
        assert!(!pool.state().masters.contains_key(&b.id));
        assert_eq!(alive(&pool), 2);
        // a's own master is live: a second command of a runs on it.
        assert!(matches!(a.claim().await, Claim::Live(..)));
        drop(a_busy);
    }

    #[test]
    fn the_default_bound_is_five_times_forks_and_at_least_the_floor() {
        assert_eq!(MasterPool::default_bound(10), MIN_DEFAULT_BOUND);
        assert_eq!(MasterPool::default_bound(0), MIN_DEFAULT_BOUND);
        assert_eq!(MasterPool::default_bound(100), 500);
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_opening_gives_its_place_back() {
        let pool = MasterPool::new(1);
        let (a, b) = (pool.member(), pool.member());
        match a.claim().await {
            Claim::Open(place, _) => drop(place),
            Claim::Live(..) => panic!("nothing was open"),
        }
        assert_eq!(alive(&pool), 0);
        // A command cancelled while it waits for a place takes none.
        let held = opened(a.claim().await);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.claim())
                .await
                .is_err()
        );
        drop(held);
        drop(opened(b.claim().await));
        assert_eq!(alive(&pool), 1);
        drop(b);
        // Its master counts until it has been closed (in the background).
        tokio::time::timeout(Duration::from_secs(5), async {
            while alive(&pool) + pool.state().closing > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("a dropped connection keeps its place");
    }
}
