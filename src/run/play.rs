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
        if let Some(host) = hosts.get_mut(name) {
            runner.delegates.settle_facts(host);
        }
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
    // `meta: end_host` / `end_play` end one play only.
    for h in hosts.values_mut() {
        h.ended = None;
    }
    let mut play_hosts: Vec<&mut HostState> = hosts
        .values_mut()
        .filter(|h| selected.contains(&h.name) && h.active() && !h.failed_by_fatal)
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
        role: None,
    };
    let deploying = matches!(runner.options.mode, Mode::Deploy { .. });
    // Rollback and patch only act on releases: the play's own tasks are for deploys.
    if let (None, Some(spec)) = (&play.distribution, &play.rollout) {
        // Ansible's `serial`: tasks and handlers batch by batch.
        super::serial::run(runner, &task_scope, play, spec, &mut play_hosts).await;
    } else if deploying || play.distribution.is_none() {
        // The play is one batch (`max_fail_percentage`).
        runner
            .batch_failures
            .start(play_hosts.iter().map(|h| h.name.clone()));
        if let Some(gather) = &play.gather {
            run_tasks(
                runner,
                &task_scope,
                std::slice::from_ref(gather),
                &mut play_hosts,
            )
            .await;
        }
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
            outcome =
                super::pooled_cycle::run(runner, &task_scope, play, spec, traffic, &mut active, p)
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
    // ansible-core's playbook executor: when the hosts that failed (or
    // became unreachable) in this play are as many as the play's hosts,
    // hosts failed in earlier plays included, no later play runs.
    let failed_here = play_hosts.iter().filter(|h| !h.active()).count();
    if !serial && !selected.is_empty() && failed_here == selected.len() {
        stop_after_whole_batch(runner, &play.name);
    }
    Ok(end)
}

/// Every host of a batch of `play` failed: the run ends after it.
pub(super) fn stop_after_whole_batch(runner: &Runner<'_>, play: &str) {
    if runner.fatal.load(std::sync::atomic::Ordering::Relaxed) {
        // `any_errors_fatal` already ended the run, and said so.
        return;
    }
    runner
        .batch_failed_whole
        .store(true, std::sync::atomic::Ordering::Relaxed);
    runner.reporter.send(Event::Note {
        message: format!("{play}: every host of the batch failed: no later play runs"),
    });
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
        crate::vars::merge(&mut vars, &h.gathered);
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
