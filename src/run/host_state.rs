use std::sync::Arc;

use indexmap::IndexSet;

use super::host_cycle::HostCycle;
use crate::report::HostStats;
use crate::transport::Connection;
use crate::vars::VarMap;

/// One host's state across the whole run.
pub struct HostState {
    pub name: String,
    /// Inventory variables, merged once.
    pub inventory_vars: VarMap,
    /// `set_fact` results and registered variables; they outlive the play, as in Ansible.
    pub facts: VarMap,
    /// Gathered facts (`ansible_facts` and the `ansible_X` injected beside
    /// it): above inventory variables, below the play's, as in Ansible.
    pub gathered: VarMap,
    /// Shared with the deploy lock's renewal while the run holds the lock.
    pub conn: Option<Arc<Connection>>,
    /// Why the host could not be reached; it takes no further part.
    pub unreachable: Option<String>,
    /// A task failed (not ignored): the host takes no further part.
    pub failed: bool,
    /// Failed by another host's failure under `any_errors_fatal`, not by a
    /// task of its own: a `rescue` it enters counts it neither failed nor
    /// rescued, as in ansible-core (`mark_host_failed`); rescued or not, it
    /// takes no part in later plays (ansible-core keeps it among the run's
    /// failed hosts).
    pub failed_by_fatal: bool,
    pub stats: HostStats,
    /// Its part in the current play's release cycle (kept until the next
    /// cycle: later plays' proxy tiers read the version it runs).
    pub cycle: Option<HostCycle>,
    /// Handler topics notified during the current play.
    pub notified: IndexSet<String>,
    /// A `meta: end_host` / `end_play` ended the current play here: the
    /// host runs nothing more in it, yet has not failed.
    pub ended: Option<Ended>,
}

/// Which `meta` direction ended a host's play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Host,
    /// The whole play: later `serial` batches do not start either.
    Play,
}

impl HostState {
    pub fn new(name: String, inventory_vars: VarMap) -> Self {
        Self {
            name,
            inventory_vars,
            facts: VarMap::new(),
            gathered: VarMap::new(),
            conn: None,
            unreachable: None,
            failed: false,
            failed_by_fatal: false,
            stats: HostStats::default(),
            cycle: None,
            notified: IndexSet::new(),
            ended: None,
        }
    }

    pub fn active(&self) -> bool {
        !self.failed && self.unreachable.is_none()
    }

    /// Active and its play not ended by `meta`: it runs the play's next task.
    pub fn in_play(&self) -> bool {
        self.active() && self.ended.is_none()
    }

    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.stats.bytes_sent = conn.bytes_sent();
            self.stats.round_trips = conn.round_trips();
            // The renewal has let go by now (locks are released before
            // the run closes); were it not, the last owner drops it.
            if let Ok(conn) = Arc::try_unwrap(conn) {
                conn.close().await;
            }
        }
    }
}
