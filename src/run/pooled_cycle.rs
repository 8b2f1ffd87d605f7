//! A play's release cycle when its proxy section has pools: the release
//! goes to the idle pool, then the traffic moves to it ([`crate::traffic`]).

use super::proxy_step::ProxyRun;
use super::release_cycle::{self, CycleEnd};
use super::task_runner::Scope;
use super::{HostState, Mode, Runner};
use crate::playbook::Play;
use crate::report::Event;

/// A release cycle with pools: where traffic goes is read from the proxy
/// hosts; a deploy (or patch) releases to the idle pool only, then moves
/// the traffic to it in its steps once every host there is switched and
/// healthy; a rollback moves the traffic back and touches no app host.
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    spec: &crate::playbook::DistributionSpec,
    traffic: &crate::traffic::TrafficSpec,
    hosts: &mut Vec<&mut HostState>,
    proxy: &tokio::sync::Mutex<ProxyRun>,
) -> Result<CycleEnd, String> {
    let note = |message: String| runner.reporter.send(Event::Note { message });
    if let Err(e) = proxy.lock().await.read_traffic(runner).await {
        note(format!(
            "{e}; the play's release cycle and proxy update were skipped"
        ));
        return Ok(CycleEnd::Stopped);
    }
    let now = proxy.lock().await.state.traffic.clone().expect("pools");
    note(format!("traffic now: {}", now.summary()));
    if let Mode::Rollback { to: Some(version) } = &runner.options.mode {
        return Err(format!(
            "rollback --to {version}: a play with pools rolls back by switching the traffic to the other pool (traffic: {}); no release is switched on a host",
            now.summary()
        ));
    }
    if let Mode::Rollback { .. } = runner.options.mode {
        return match crate::traffic::switch::back(runner, proxy).await? {
            true => Ok(CycleEnd::Completed),
            false => Ok(CycleEnd::Stopped),
        };
    }
    if now.split() {
        let pool = now.idle();
        return Err(format!(
            "pool {pool} takes part of the traffic ({}): a release would go to a pool that serves; `convoy rollback` first (or finish the steps)",
            now.summary()
        ));
    }
    let idle = now.idle().to_owned();
    let pool_hosts = now.pools[&idle].hosts.clone();
    hosts.retain(|h| pool_hosts.contains(&h.name));
    if hosts.is_empty() {
        return Err(format!(
            "pool {idle} (the idle one, which a release goes to) has no host in this play"
        ));
    }
    note(format!(
        "releasing to the idle pool {idle} ({}); {} keeps serving",
        pool_hosts.join(", "),
        now.live
    ));
    let end = release_cycle::run(runner, scope, play, spec, hosts, Some(proxy)).await?;
    if !matches!(end, CycleEnd::Completed | CycleEnd::Checked) || runner.interrupt.is_set() {
        note(format!(
            "traffic stays on {}: the release to {idle} did not complete",
            now.live
        ));
        return Ok(end);
    }
    let version = hosts
        .iter()
        .find_map(|h| h.plan().map(|p| p.version.clone()))
        .unwrap_or_default();
    use crate::traffic::switch::Taken;
    Ok(
        match crate::traffic::switch::take(runner, proxy, traffic, &idle, &version).await {
            Taken::All => end,
            Taken::Stopped => CycleEnd::Stopped,
            // A failed traffic gate: the traffic went back to the pool that served.
            Taken::SentBack { complete: true } => CycleEnd::RolledBack,
            Taken::SentBack { complete: false } => CycleEnd::RollbackIncomplete,
        },
    )
}
