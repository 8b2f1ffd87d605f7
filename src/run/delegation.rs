//! `delegate_to` / `local_action`: a task that runs with its own host's
//! variables on another host's connection, as ansible-core's task executor
//! does. The run keeps one connection per host: a delegated host already
//! connected for its own tasks lends that connection, and one opened for a
//! delegation serves every later task on that host.

use std::collections::HashMap;
use std::sync::Arc;

use super::context::PlayScope;
use super::{HostState, Runner, connect, task_runner};
use crate::transport::{Connection, TransportError};
use crate::vars::{Value, VarMap, merge};

/// Names ansible-core takes for the control machine when the inventory
/// does not list them (`C.LOCALHOST`): its implicit `localhost`.
const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The run's connections to delegated hosts, and the facts
/// (`delegate_facts: true`) waiting for hosts the current tasks do not hold.
#[derive(Default)]
pub struct Delegates {
    conns: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    pending: std::sync::Mutex<HashMap<String, DelegatedFacts>>,
}

/// Facts a task set for a host it was delegated to.
#[derive(Default)]
struct DelegatedFacts {
    facts: VarMap,
    gathered: VarMap,
}

/// Where one call of a delegated task runs.
pub struct Delegated {
    pub name: String,
    pub conn: Arc<Connection>,
    /// The delegated host's context (inventory, play and task variables),
    /// which its connection and `ansible_become*` variables come from.
    pub ctx: VarMap,
}

impl Delegates {
    /// The shared connection to `host`, if a delegation opened one.
    pub async fn shared(&self, host: &str) -> Option<Arc<Connection>> {
        self.conns.lock().await.get(host).cloned()
    }

    /// Lends a play host's own connection to the tasks delegated to it.
    pub async fn offer(&self, host: &str, conn: &Arc<Connection>) {
        self.conns
            .lock()
            .await
            .entry(host.to_owned())
            .or_insert_with(|| conn.clone());
    }

    /// The connection for `name` (rendered from `delegate_to`), opened on
    /// first use from that host's variables under the play's and the task's.
    pub async fn connect(
        &self,
        runner: &Runner<'_>,
        scope: &PlayScope,
        task_vars: &VarMap,
        name: &str,
        origin: &str,
    ) -> Result<Delegated, TransportError> {
        let ctx = scope.context(&delegated_state(runner, name), task_vars);
        // Held while opening: hosts delegating to the same machine at once
        // wait for the one connection rather than open their own.
        let mut conns = self.conns.lock().await;
        let conn = match conns.get(name) {
            Some(conn) => conn.clone(),
            None => {
                let conn_vars = task_runner::render_map(runner, &ctx, origin);
                let conn = Arc::new(
                    connect::open(name, &conn_vars, runner.options, &runner.control_dir).await?,
                );
                conns.insert(name.to_owned(), conn.clone());
                conn
            }
        };
        Ok(Delegated {
            name: name.to_owned(),
            conn,
            ctx,
        })
    }

    /// Keeps `delegate_facts` results for `host` until its state is at hand.
    pub fn defer_facts(&self, host: &str, facts: &VarMap, gathered: &VarMap) {
        let mut pending = self.pending.lock().expect("facts lock");
        let entry = pending.entry(host.to_owned()).or_default();
        merge(&mut entry.facts, facts);
        merge(&mut entry.gathered, gathered);
    }

    /// Gives `host` the facts delegated to it so far.
    pub fn settle_facts(&self, host: &mut HostState) {
        let Some(delegated) = self.pending.lock().expect("facts lock").remove(&host.name) else {
            return;
        };
        merge(&mut host.facts, &delegated.facts);
        if !delegated.gathered.is_empty() {
            let injected = crate::facts::injected(&host.gathered, &delegated.gathered);
            merge(&mut host.gathered, &injected);
        }
    }

    /// Closes the connections only delegations held; those a host lent go
    /// back to it, to be closed (and counted) with the host.
    pub async fn close(&self) {
        let conns: Vec<Arc<Connection>> = self.conns.lock().await.drain().map(|(_, c)| c).collect();
        for conn in conns {
            if let Ok(conn) = Arc::try_unwrap(conn) {
                conn.close().await;
            }
        }
    }
}

/// What the run knows of a delegated host: its inventory variables, or the
/// implicit localhost's (`ansible_connection: local`) for the control
/// machine's names; a name the inventory lacks is reached by that name.
fn delegated_state(runner: &Runner<'_>, name: &str) -> HostState {
    let mut vars = runner.inventory.host_vars(name);
    if vars.is_empty() && LOCAL_NAMES.contains(&name) {
        vars = runner.inventory.host_vars("localhost");
        vars.insert("inventory_hostname".into(), Value::String(name.to_owned()));
    }
    HostState::new(name.to_owned(), vars)
}
