//! One step's window for its gate: opened once the step's reload is done
//! (a mark on each proxy host: the gate log's size, or haproxy's counters),
//! closed at the end of the hold (each proxy host's figures since its mark,
//! one round trip per host). [`super::switch`] judges the sum.

use indexmap::IndexMap;
use tokio::sync::Mutex;

use super::gate::{self, Gate, GateSource};
use super::metrics::{self, Figures};
use crate::run::Runner;
use crate::run::proxy_step::ProxyRun;
use crate::transport::ShellScript;
use crate::vars::{Value, VarMap};

/// Where a proxy host's window starts.
#[derive(Debug, Clone)]
enum Mark {
    /// Bytes of nginx's gate log already there.
    Offset(u64),
    /// haproxy's counters for the pool's servers.
    Counters(Figures),
}

pub struct Window<'g> {
    gate: &'g Gate,
    pool: String,
    /// The pool's hosts' addresses (haproxy matches its servers by them).
    addresses: Vec<String>,
    marks: IndexMap<String, Mark>,
}

/// Per proxy host: what it saw of the pool over the window.
pub type HostFigures = IndexMap<String, Figures>;

impl<'g> Window<'g> {
    pub fn gate(&self) -> &'g Gate {
        self.gate
    }

    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// Marks the start of `pool`'s window on every proxy host.
    pub async fn open(
        runner: &Runner<'_>,
        proxy: &Mutex<ProxyRun>,
        gate: &'g Gate,
        pool: &str,
    ) -> Result<Window<'g>, String> {
        let p = proxy.lock().await;
        let addresses: Vec<String> = p
            .state
            .traffic
            .as_ref()
            .and_then(|t| t.pools.get(pool))
            .map(|pool| {
                pool.hosts
                    .iter()
                    .map(|h| {
                        p.state
                            .hosts
                            .get(h)
                            .map_or(h.clone(), |a| a.address.clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut window = Window {
            gate,
            pool: pool.to_owned(),
            addresses,
            marks: IndexMap::new(),
        };
        let outputs = p
            .exec_each(runner, |host, vars, manifest| {
                window.script(runner, host, vars, manifest, None)
            })
            .await?;
        for (host, out) in outputs {
            let text = checked(&host, &out)?;
            let mark = match gate.source {
                GateSource::Nginx => Mark::Offset(text.trim().parse().map_err(|_| {
                    format!("{host}: the gate log's size is not a number: {text:?}")
                })?),
                GateSource::Haproxy { .. } => {
                    Mark::Counters(Figures::parse(&text).map_err(|e| format!("{host}: {e}"))?)
                }
            };
            window.marks.insert(host, mark);
        }
        Ok(window)
    }

    /// Each proxy host's figures since its mark.
    pub async fn close(
        &self,
        runner: &Runner<'_>,
        proxy: &Mutex<ProxyRun>,
    ) -> Result<HostFigures, String> {
        let p = proxy.lock().await;
        let outputs = p
            .exec_each(runner, |host, vars, manifest| {
                self.script(runner, host, vars, manifest, self.marks.get(host))
            })
            .await?;
        let mut figures = IndexMap::new();
        for (host, out) in outputs {
            let text = checked(&host, &out)?;
            let now = Figures::parse(&text).map_err(|e| format!("{host}: {e}"))?;
            let seen = match self.marks.get(&host) {
                Some(Mark::Counters(mark)) => now.since(mark),
                _ => now,
            };
            figures.insert(host, seen);
        }
        Ok(figures)
    }

    /// The reader for `host`: the mark's when `mark` is none, else the
    /// window's end.
    fn script(
        &self,
        runner: &Runner<'_>,
        host: &str,
        vars: &VarMap,
        manifest: &str,
        mark: Option<&Mark>,
    ) -> Result<ShellScript, String> {
        match &self.gate.source {
            GateSource::Nginx => {
                let log = gate::log_path(manifest);
                Ok(match mark {
                    None => metrics::nginx_mark(&log),
                    Some(Mark::Offset(offset)) => metrics::nginx_window(&log, *offset, &self.pool),
                    Some(Mark::Counters(_)) => metrics::nginx_window(&log, 0, &self.pool),
                })
            }
            GateSource::Haproxy { socket } => {
                let socket = runner
                    .templates
                    .render_str_deep(
                        socket,
                        &Value::Object(vars.clone()),
                        &self.gate.span.to_string(),
                    )
                    .map_err(|e| format!("{host}: the gate's `socket`: {e}"))?;
                Ok(metrics::haproxy_counters(&socket, &self.addresses))
            }
        }
    }
}

/// A reader's stdout, or its failure naming the host.
fn checked(host: &str, out: &crate::transport::ExecOutput) -> Result<String, String> {
    if out.success() {
        return Ok(out.stdout_str());
    }
    let stderr = out.stderr_str();
    Err(format!(
        "{host}: {}",
        stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("the gate's reader failed")
    ))
}
