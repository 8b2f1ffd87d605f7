//! A step judged by its gate: the window opened once the step serves, the
//! figures read at the end of its hold and judged; a step that fails sends
//! every request back to the pool that served before (one apply of the
//! proxy tier, [`super::switch::back`]) and fails the run, saying what was
//! measured.

use tokio::sync::Mutex;

use super::gate::Gate;
use super::metrics::Figures;
use super::window::Window;
use crate::report::{Event, HostResult, Status};
use crate::run::Runner;
use crate::run::proxy_step::ProxyRun;

/// The gate failed (or could not read its figures): the traffic was sent
/// back and the run fails.
#[derive(Debug)]
pub struct SentBack {
    /// The pool that served before has every request again (the switch
    /// back was applied).
    pub complete: bool,
}

fn note(runner: &Runner<'_>, message: String) {
    runner.reporter.send(Event::Note { message });
}

/// Opens the window of the step `label` for `pool`: `None` in check mode
/// (the run says what the gate would judge).
pub async fn open<'g>(
    runner: &Runner<'_>,
    proxy: &Mutex<ProxyRun>,
    gate: &'g Gate,
    pool: &str,
    label: &str,
) -> Result<Option<Window<'g>>, SentBack> {
    if runner.options.check {
        note(
            runner,
            format!("{label}: the gate would judge {pool} over the hold: {gate}"),
        );
        return Ok(None);
    }
    match Window::open(runner, proxy, gate, pool).await {
        Ok(window) => Ok(Some(window)),
        Err(e) => Err(send_back(
            runner,
            proxy,
            label,
            format!("the gate cannot read what the proxy saw: {e}"),
        )
        .await),
    }
}

/// Judges the step `label` from its window; `Err` when it failed and
/// the traffic was sent back.
pub async fn judge(
    runner: &Runner<'_>,
    proxy: &Mutex<ProxyRun>,
    window: Window<'_>,
    label: &str,
) -> Result<(), SentBack> {
    let started = std::time::Instant::now();
    let task = format!("{label}: gate");
    let hosts = match window.close(runner, proxy).await {
        Ok(hosts) => hosts,
        Err(e) => {
            return Err(send_back(
                runner,
                proxy,
                label,
                format!("the gate cannot read what the proxy saw: {e}"),
            )
            .await);
        }
    };
    let mut sum = Figures::default();
    for f in hosts.values() {
        sum.merge(f);
    }
    let gate = window.gate();
    let pool = window.pool();
    let verdict = gate.judge(pool, &sum);
    runner.reporter.send(Event::TaskStart {
        task: task.clone(),
        hosts: hosts.len(),
        handler: false,
    });
    for (host, f) in &hosts {
        let mut msg = format!("{pool}: {} requests, {} 5xx", f.requests, f.errors);
        for (q, _) in &gate.latency {
            if let Some(t) = f.percentile(*q) {
                msg.push_str(&format!(", p{q} {}", super::gate::millis(t)));
            }
        }
        runner.reporter.send(Event::HostResult(Box::new(HostResult {
            host: host.clone(),
            delegated_to: None,
            task: task.clone(),
            status: if verdict.passed() {
                Status::Ok
            } else {
                Status::Failed
            },
            msg: Some(msg),
            item: None,
            duration: started.elapsed(),
            diffs: vec![],
            ignored: false,
            output: None,
            rc: None,
        })));
    }
    if verdict.passed() {
        note(
            runner,
            format!("{label}: gate passed: {}", verdict.measured.join("; ")),
        );
        return Ok(());
    }
    Err(send_back(runner, proxy, label, verdict.failed.join("; ")).await)
}

/// Every request back to the pool that served before, and the run failed,
/// saying `why` and where the traffic is now.
async fn send_back(
    runner: &Runner<'_>,
    proxy: &Mutex<ProxyRun>,
    label: &str,
    why: String,
) -> SentBack {
    note(
        runner,
        format!("{label}: gate failed; sending every request back"),
    );
    let back = super::switch::back(runner, proxy).await;
    let mut p = proxy.lock().await;
    p.fail();
    let now = p
        .state
        .traffic
        .as_ref()
        .map(|t| {
            let version = t.pools.get(&t.live).and_then(|p| p.version.clone());
            format!("{} ({})", t.live, version.unwrap_or_default())
        })
        .unwrap_or_default();
    let summary = p
        .state
        .traffic
        .as_ref()
        .map(super::TrafficState::summary)
        .unwrap_or_default();
    let complete = matches!(back, Ok(true));
    let end = match back {
        Ok(true) => format!("traffic is back on {now}"),
        Ok(false) => format!("sending it back failed: the proxy serves {summary}"),
        Err(e) => e,
    };
    note(runner, format!("{label}: gate failed: {why}; {end}"));
    SentBack { complete }
}
