//! One play: select its hosts, run its tasks linearly, then its handlers.

use indexmap::IndexMap;
use serde_json::json;

use super::context::PlayScope;
use super::once_lock::{self, OnceGate};
use super::proxy_step::ProxyRun;
use super::release_cycle::{self, CycleEnd};
use super::task_runner::{Scope, run_handlers, run_tasks};
use super::{HostState, Mode, Runner};

use crate::playbook::Play;
use crate::report::Event;
use crate::vars::{Value, VarMap};

/// How a play ended, beyond its hosts' results.
#[derive(Debug, Default)]
pub struct PlayEnd {
    /// How its release cycle ended, if it has one that ran.
    pub cycle: Option<CycleEnd>,
    /// Its proxy tier could not be reached or updated.
    pub proxy_failed: bool,
}

/// Runs one play. `Err` is a refusal made before any host changed.
pub async fn run_play(
    runner: &Runner<'_>,
    play: &Play,
    hosts: &mut IndexMap<String, HostState>,
) -> Result<PlayEnd, String> {
    let inventory = runner.inventory;
    // Patterns were checked before the run started; here they only select.
    let mut selected: Vec<String> = inventory
        .select(&play.hosts)
        .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
        .unwrap_or_default();
    if let Some(limit) = &runner.options.limit {
        let allowed: Vec<String> = inventory
            .select(limit)
            .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
            .unwrap_or_default();
        selected.retain(|h| allowed.contains(h));
    }
    for name in &selected {
        hosts
            .entry(name.clone())
            .or_insert_with(|| HostState::new(name.clone(), inventory.host_vars(name)));
    }
    runner.reporter.send(Event::PlayStart {
        play: play.name.clone(),
        hosts: selected.clone(),
    });
    let gate = match &play.once {
        Some(spec) => Some(once_lock::take(runner, &play.hosts, spec, hosts).await?),
        None => None,
    };
    if let Some(OnceGate::Skip) = gate {
        return Ok(PlayEnd::default());
    }
    let end = run_body(runner, play, hosts, &selected).await;
    if let Some(OnceGate::Held(lock)) = gate {
        lock.release(runner).await;
    }
    end
}

/// The play proper, on its selected hosts (its `once:` lock, if any, held).
async fn run_body(
    runner: &Runner<'_>,
    play: &Play,
    hosts: &mut IndexMap<String, HostState>,
    selected: &[String],
) -> Result<PlayEnd, String> {
    let mut end = PlayEnd::default();

    let scope = PlayScope {
        role_defaults: play.role_defaults.clone(),
        play_vars: play.vars.clone(),
        vars_files: load_vars_files(runner, play),
        role_vars: play.role_vars.clone(),
        extra_vars: runner.options.extra_vars.clone(),
        magic: magic_vars(runner, selected, hosts),
    };
    let mut play_hosts: Vec<&mut HostState> = hosts
        .values_mut()
        .filter(|h| selected.contains(&h.name) && h.active())
        .collect();
    for h in play_hosts.iter_mut() {
        h.notified.clear();
    }
    let task_scope = Scope {
        play,
        scope: &scope,
        tags: play.tags.clone(),
        vars: VarMap::new(),
        handler: false,
        blocks: Default::default(),
    };
    let deploying = matches!(runner.options.mode, Mode::Deploy { .. });
    // Rollback and patch only act on releases: the play's own tasks are for deploys.
    if let (None, Some(spec)) = (&play.distribution, &play.rollout) {
        // Ansible's `serial`: tasks and handlers batch by batch.
        super::serial::run(runner, &task_scope, play, spec, &mut play_hosts).await;
    } else if deploying || play.distribution.is_none() {
        // Ansible flushes the handlers pre_tasks notified before `tasks`.
        if !play.pre_tasks.is_empty() {
            run_tasks(runner, &task_scope, &play.pre_tasks, &mut play_hosts).await;
            run_handlers(runner, &task_scope, &mut play_hosts).await;
        }
        run_tasks(runner, &task_scope, &play.tasks, &mut play_hosts).await;
    }
    // The proxy tier, connected once for the play.
    let proxy = match &play.proxy {
        Some(spec) if !runner.interrupt.is_set() => {
            match ProxyRun::open(runner, play, &scope, spec, &play_hosts).await {
                Ok(p) => Some(tokio::sync::Mutex::new(p)),
                Err(e) => {
                    runner.reporter.send(Event::Note {
                        message: format!(
                            "{e}; the play's release cycle and proxy update were skipped"
                        ),
                    });
                    end.proxy_failed = true;
                    return Ok(end);
                }
            }
        }
        _ => None,
    };
    let mut outcome = Ok(None);
    let traffic = play.proxy.as_ref().and_then(|s| s.traffic.as_ref());
    match (&play.distribution, &proxy, traffic) {
        (Some(spec), Some(p), Some(traffic)) if !runner.interrupt.is_set() => {
            let mut active: Vec<&mut HostState> = play_hosts
                .iter_mut()
                .filter(|h| h.active())
                .map(|h| &mut **h)
                .collect();
            outcome = pooled_cycle(runner, &task_scope, play, spec, traffic, &mut active, p)
                .await
                .map(Some);
        }
        (Some(spec), _, _) if !runner.interrupt.is_set() => {
            let mut active: Vec<&mut HostState> = play_hosts
                .iter_mut()
                .filter(|h| h.active())
                .map(|h| &mut **h)
                .collect();
            outcome =
                release_cycle::run(runner, &task_scope, play, spec, &mut active, proxy.as_ref())
                    .await
                    .map(Some);
        }
        // A play with only a proxy section: bring the proxy tier to the fleet as it stands.
        (None, Some(p), _) => {
            if traffic.is_some()
                && let Err(e) = p.lock().await.read_traffic(runner).await
            {
                runner.reporter.send(Event::Note { message: e });
            } else {
                p.lock().await.apply(runner, "proxy").await;
            }
        }
        _ => {}
    }
    if let Some(p) = proxy {
        end.proxy_failed = p.into_inner().close().await;
    }
    end.cycle = outcome?;

    // Handlers: once each, in definition order, on the hosts that notified them.
    run_handlers(runner, &task_scope, &mut play_hosts).await;
    let serial = play.distribution.is_none() && play.rollout.is_some();
    if !serial && (deploying || play.distribution.is_none()) && !play.post_tasks.is_empty() {
        run_tasks(runner, &task_scope, &play.post_tasks, &mut play_hosts).await;
        run_handlers(runner, &task_scope, &mut play_hosts).await;
    }
    Ok(end)
}

/// A release cycle with pools: where traffic goes is read from the proxy
/// hosts; a deploy (or patch) releases to the idle pool only, then moves
/// the traffic to it in its steps once every host there is switched and
/// healthy; a rollback moves the traffic back and touches no app host.
async fn pooled_cycle(
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
    if crate::traffic::switch::take(runner, proxy, traffic, &idle, &version).await {
        Ok(end)
    } else {
        Ok(CycleEnd::Stopped)
    }
}

/// `vars_files`, read once per play (their names were checked before the run).
fn load_vars_files(runner: &Runner<'_>, play: &Play) -> VarMap {
    let mut vars = VarMap::new();
    for (file, _) in &play.vars_files {
        let path = runner.playbook.base_dir.join(file);
        if let Ok(map) = super::super::vars_file::load(&path) {
            crate::vars::merge(&mut vars, &map);
        }
    }
    vars
}

/// The play's magic variables. The fleet-sized ones (`groups`, `hostvars`,
/// `ansible_play_hosts`) are handed to the templates here, once for the play.
fn magic_vars(
    runner: &Runner<'_>,
    selected: &[String],
    hosts: &IndexMap<String, HostState>,
) -> VarMap {
    let inventory = runner.inventory;
    let groups: serde_json::Map<String, Value> = inventory
        .groups()
        .into_iter()
        .map(|(g, hs)| (g, json!(hs)))
        .collect();
    // Every inventory host, as in Ansible, not only those a play has run
    // on yet: a template may read a database host's vars from a web play.
    let mut hostvars: serde_json::Map<String, Value> = inventory
        .hosts()
        .filter(|h| !hosts.contains_key(&h.name))
        .map(|h| (h.name.clone(), Value::Object(inventory.host_vars(&h.name))))
        .collect();
    hostvars.extend(hosts.values().map(|h| {
        let mut vars = h.inventory_vars.clone();
        crate::vars::merge(&mut vars, &h.facts);
        (h.name.clone(), Value::Object(vars))
    }));
    // The fleet-sized ones are shared by every template of the play rather
    // than copied into each host's variables.
    runner.templates.share(json!({
        "groups": groups,
        "hostvars": hostvars,
        "ansible_play_hosts": selected,
    }));
    let mut magic = VarMap::new();
    magic.insert("ansible_check_mode".into(), json!(runner.options.check));
    magic.insert("ansible_diff_mode".into(), json!(runner.options.diff));
    magic.insert(
        "playbook_dir".into(),
        json!(runner.playbook.base_dir.display().to_string()),
    );
    magic
}
