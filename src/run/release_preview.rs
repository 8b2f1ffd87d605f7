//! `--check` for a play's release cycle: each host is asked, read-only and
//! in one round trip, what it holds (lock, artifact, releases, `current`,
//! migrations run), and every step of the cycle reports what it would do
//! there. Nothing is written on any host: no lock, no upload, no unpack, no
//! release file, no migration, no switch, no prune, no audit line. Hooks run
//! as tasks in check mode, so each module says what it would do.
//!
//! The steps carry the same names as in a real run, so a check run's
//! output reads like the run it stands for, with "would" in every line.

use base64::Engine;

use super::health_gate::health_target;
use super::rollout_switch::rollout_plan;
use super::step::{StepResult, hooks, step, transport_failure};
use super::task_runner::Scope;
use super::{HostState, Mode, Phase, Runner};
use crate::distribution::remote::{self, HostRelease};
use crate::distribution::{ReleasePlan, Source};
use crate::playbook::{Play, RolloutSpec};
use crate::report::{Event, human_bytes};
use crate::tasks::FileDiff;
use crate::transport::{Become, Connection, Script, TransportError};

/// What a host holds for a distribution, as a check run needs it.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub release: HostRelease,
    /// The deploy lock's holder line, when the host is locked.
    pub lock: Option<String>,
    /// Release directories, newest first (the order pruning uses).
    pub releases: Vec<String>,
    /// Migration records (`<name>@<version>`).
    pub migrations: Vec<String>,
    /// The current release's copy of each release template, by index in
    /// the plan's `files` (only asked for with `--diff`).
    pub current_files: Vec<Option<String>>,
}

/// Reads everything [`Survey`] holds in one round trip, changing nothing.
pub async fn survey(
    conn: &Connection,
    plan: &ReleasePlan,
    with_files: bool,
    sudo: Option<&Become>,
) -> Result<Survey, TransportError> {
    // The deploy's own probe (artifact, release, identity, current,
    // previous), then what only a check needs.
    let mut script = remote::probe_script(plan).code(SURVEY);
    if with_files {
        for (i, file) in plan.files.iter().enumerate() {
            script.push_call("current_file", [i.to_string().as_str(), &file.dest]);
        }
    }
    let script = script.code("true");
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    let text = out.stdout_str();
    let mut found = Survey {
        release: remote::parse_probe(&text),
        current_files: vec![None; plan.files.len()],
        ..Survey::default()
    };
    for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
        match key {
            "lock" => found.lock = Some(value.to_owned()),
            "dir" => found.releases.push(value.to_owned()),
            "migration" => found.migrations.push(value.to_owned()),
            _ => {
                if let Some(i) = key
                    .strip_prefix("file")
                    .and_then(|i| i.parse::<usize>().ok())
                    && i < found.current_files.len()
                {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(value)
                        .unwrap_or_default();
                    found.current_files[i] = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
    }
    Ok(found)
}

/// After the probe: the lock holder, the releases newest first, the
/// migrations run, and the current release's templates when asked for
/// (`key=value` lines; every read tolerates a missing path).
const SURVEY: &str = r#"[ -f "$R/.convoy/lock/holder" ] && printf 'lock=%s\n' "$(head -n 1 "$R/.convoy/lock/holder")"
if cd "$R/releases" 2>/dev/null; then
  for d in $(ls -1t); do case "$d" in .tmp-*) ;; *) [ -d "$d" ] && echo "dir=$d";; esac; done
  cd / || exit 0
fi
for m in "$R"/.convoy/migrations/*; do [ -f "$m" ] && echo "migration=${m##*/}"; done
current_file() { if [ -f "$R/current/$2" ]; then printf 'file%s=' "$1"; base64 < "$R/current/$2" | tr -d '\n'; echo; fi; }
"#;

/// The check run of a play's release cycle.
pub async fn run(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    hosts: &mut Vec<&mut HostState>,
    proxy: Option<&tokio::sync::Mutex<super::proxy_step::ProxyRun>>,
) -> Result<(), String> {
    let diff = runner.options.diff;
    let name = hosts
        .iter()
        .find_map(|h| h.plan())
        .map(|p| format!("{} {}", p.name, p.version))
        .unwrap_or_default();
    // The lock and the host's state, read once; a held lock is what a real
    // run would stop at, so it fails the host here.
    let answers = std::sync::Mutex::new(std::collections::HashMap::new());
    {
        let answers = &answers;
        step(runner, "lock", hosts, |host, plan| async move {
            let conn = host.conn.as_ref().expect("connected by step");
            let sudo = host.release_sudo();
            let result = match survey(conn, &plan, diff, sudo.as_ref()).await {
                Err(e) => transport_failure(host, e),
                Ok(found) => {
                    let result = match &found.lock {
                        Some(holder) => StepResult::failed(format!(
                            "locked by {holder}: a real run would be refused here"
                        )),
                        None => StepResult::ok("lock is free; would lock"),
                    };
                    if let Some(cycle) = host.cycle.as_mut() {
                        cycle.found = Some(found.release.clone());
                    }
                    answers
                        .lock()
                        .expect("not poisoned")
                        .insert(host.name.clone(), found);
                    result
                }
            };
            (host, result)
        })
        .await;
    }
    let surveys = answers.into_inner().expect("not poisoned");
    let surveys = &surveys;
    match &runner.options.mode {
        Mode::Deploy { phase } => {
            step(
                runner,
                &format!("prepare {name}"),
                hosts,
                |host, plan| async move {
                    let found = surveys.get(&host.name).cloned().unwrap_or_default();
                    host.publish_release(found.release.current.as_deref());
                    (host, would_prepare(&plan, &found))
                },
            )
            .await;
            hooks(runner, scope, &play.hooks.prepare, hosts, |_| true).await;
            if *phase == Phase::Prepare {
                return Ok(());
            }
            would_migrate(runner, play, hosts, surveys);
            would_switch(runner, scope, play, hosts, &format!("switch {name}")).await;
            would_update_proxy(runner, proxy, hosts).await;
            step(
                runner,
                &format!("confirm {name}"),
                hosts,
                |host, plan| async move {
                    let found = surveys.get(&host.name).cloned().unwrap_or_default();
                    (host, would_prune(&plan, &found))
                },
            )
            .await;
            hooks(runner, scope, &play.hooks.confirm, hosts, |_| true).await;
        }
        Mode::Rollback { to } => {
            let mut missing = Vec::new();
            for host in hosts.iter_mut() {
                let (Some(cycle), Some(found)) = (host.cycle.as_mut(), surveys.get(&host.name))
                else {
                    continue;
                };
                let has = |v: &str| found.releases.iter().any(|r| r == v);
                let previous = found.release.previous.as_deref();
                match super::release_cycle::rollback_target(
                    &host.name,
                    to.as_deref(),
                    previous,
                    has,
                ) {
                    Ok(t) => cycle.plan.version = t,
                    Err(why) => missing.push(why),
                }
            }
            super::release_cycle::refuse_missing_targets(&missing)?;
            would_switch(runner, scope, play, hosts, "rollback").await;
            would_update_proxy(runner, proxy, hosts).await;
        }
        Mode::Patch { files } => {
            let count = files.len();
            step(runner, "patch", hosts, |host, plan| async move {
                let found = surveys.get(&host.name).cloned().unwrap_or_default();
                let result = match &found.release.current {
                    None => StepResult::failed(format!(
                        "{}/current does not exist: deploy before patching",
                        plan.root
                    )),
                    Some(current) => StepResult::changed(format!(
                        "would make a release from {current} with {count} file(s) replaced, then switch to it"
                    )),
                };
                (host, result)
            })
            .await;
        }
    }
    runner.reporter.send(Event::Note {
        message: format!("check mode: nothing was changed on any host ({name})"),
    });
    Ok(())
}

/// What prepare would do on a host that holds `found`.
fn would_prepare(plan: &ReleasePlan, found: &Survey) -> StepResult {
    let state = &found.release;
    if state.release_present && state.release_identity.as_deref() == Some(plan.identity.as_str()) {
        return StepResult::ok(format!("release {} in place", plan.version));
    }
    if state.release_present && state.current.as_deref() == Some(plan.version.as_str()) {
        return StepResult::failed(format!(
            "release {} is live in {} but differs from this run's (artifact or release files changed); give it a new version",
            plan.version, plan.root
        ));
    }
    let fetch = match (&plan.source, state.artifact_present) {
        (_, true) => "artifact already held (0 B to send)".to_owned(),
        (Source::Push(a), false) => format!("would send {}", human_bytes(a.size)),
        (Source::Pull { url, .. }, false) => format!("would pull {url}"),
    };
    let mut msg = format!(
        "{fetch}; would unpack {} into {}",
        plan.version,
        plan.release_path()
    );
    if !plan.shared.is_empty() {
        msg.push_str(&format!("; would link shared {}", plan.shared.join(", ")));
    }
    if !plan.files.is_empty() {
        let names: Vec<&str> = plan.files.iter().map(|f| f.dest.as_str()).collect();
        msg.push_str(&format!("; would render {}", names.join(", ")));
    }
    let diffs = plan
        .files
        .iter()
        .zip(&found.current_files)
        .filter(|(file, before)| before.as_deref() != Some(file.content.as_str()))
        .map(|(file, before)| FileDiff {
            path: format!("{}/{}", plan.release_path(), file.dest),
            before: before.clone().unwrap_or_default(),
            after: file.content.clone(),
        })
        .collect();
    StepResult::changed(msg).with_diffs(diffs)
}

/// Reports, per migration, the hosts it would run on.
fn would_migrate(
    runner: &Runner<'_>,
    play: &Play,
    hosts: &[&mut HostState],
    surveys: &std::collections::HashMap<String, Survey>,
) {
    for migration in &play.migrations {
        let Some((targets, version)) = super::migrations::due(migration, hosts) else {
            continue;
        };
        let key = super::migrations::record_key(migration, &version);
        let ran = hosts.iter().any(|h| {
            surveys
                .get(&h.name)
                .is_some_and(|s| s.migrations.contains(&key))
        });
        let title = format!("migration {} ({})", migration.name, migration.versions);
        if ran {
            runner.reporter.send(Event::Note {
                message: format!("{title} already ran for {version}: would skip it"),
            });
            continue;
        }
        runner.reporter.send(Event::TaskStart {
            task: title.clone(),
            hosts: targets.len(),
            handler: false,
        });
        for &i in &targets {
            let host = &hosts[i];
            runner
                .reporter
                .send(Event::HostResult(Box::new(crate::report::HostResult {
                    host: host.name.clone(),
                    delegated_to: None,
                    task: title.clone(),
                    status: crate::report::Status::Changed,
                    msg: Some(format!("would run for {version}")),
                    item: None,
                    duration: std::time::Duration::ZERO,
                    diffs: vec![],
                    ignored: false,
                    output: None,
                    rc: None,
                })));
        }
    }
}

/// Reports the switch batch by batch, runs the switch hooks (in check
/// mode) on the hosts that would change, and says what the health gate
/// would check.
async fn would_switch(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    hosts: &mut Vec<&mut HostState>,
    label: &str,
) {
    let default = RolloutSpec::default();
    let spec = play.rollout.as_ref().unwrap_or(&default);
    let plan = rollout_plan(runner, spec, hosts);
    let total = plan.batches.len();
    for (index, batch) in plan.batches.iter().enumerate() {
        runner.reporter.send(Event::BatchStart {
            index: index + 1,
            total,
            hosts: batch.hosts.clone(),
            canary: batch.canary,
        });
        let mut in_batch: Vec<&mut HostState> = hosts
            .iter_mut()
            .filter(|h| batch.hosts.contains(&h.name))
            .map(|h| &mut **h)
            .collect();
        let results = step(runner, label, &mut in_batch, |host, plan| async move {
            let from = host.running();
            let result = if from.as_deref() == Some(plan.version.as_str()) {
                StepResult::ok(format!("current is {}", plan.version))
            } else {
                host.publish_release(from.as_deref());
                StepResult::changed(format!(
                    "would switch current {} -> {} (batch {}/{total})",
                    from.as_deref().unwrap_or("(none)"),
                    plan.version,
                    index + 1
                ))
            };
            (host, result)
        })
        .await;
        let changing: Vec<String> = results
            .into_iter()
            .filter(|(_, s)| *s == crate::report::Status::Changed)
            .map(|(n, _)| n)
            .collect();
        hooks(runner, scope, &play.hooks.switch, &mut in_batch, |h| {
            changing.contains(&h.name)
        })
        .await;
        if let Some(health) = &spec.health {
            step(runner, "health", &mut in_batch, |host, _plan| async move {
                let vars = super::context::as_value(scope.scope.context(host, &scope.vars));
                let result = match health_target(runner, health, &vars) {
                    Ok(target) => StepResult::ok(format!("would wait for {target}")),
                    Err(e) => StepResult::failed(e),
                };
                (host, result)
            })
            .await;
        }
    }
}

/// The proxy tier as it would be once every host runs its new release.
async fn would_update_proxy(
    runner: &Runner<'_>,
    proxy: Option<&tokio::sync::Mutex<super::proxy_step::ProxyRun>>,
    hosts: &[&mut HostState],
) {
    let Some(proxy) = proxy else { return };
    let mut proxy = proxy.lock().await;
    for host in hosts.iter() {
        let version = host.plan().map(|p| p.version.clone());
        let healthy = host.active();
        proxy.set(std::slice::from_ref(&host.name), |h| {
            h.version = version.clone().or(h.version.clone());
            h.in_service = healthy;
            h.switched = true;
            h.draining = false;
        });
    }
    proxy
        .apply(runner, "proxy: every host on its new release")
        .await;
}

/// What confirm's pruning would remove: releases beyond `keep`, never the
/// new current nor the one it replaces (the same rule as the host's script).
fn would_prune(plan: &ReleasePlan, found: &Survey) -> StepResult {
    let mut order: Vec<&str> = vec![plan.version.as_str()];
    order.extend(
        found
            .releases
            .iter()
            .map(String::as_str)
            .filter(|v| *v != plan.version),
    );
    let mut kept: Vec<&str> = vec![plan.version.as_str()];
    if let Some(cur) = found.release.current.as_deref()
        && cur != plan.version
        && found.releases.iter().any(|r| r == cur)
    {
        kept.push(cur);
    }
    let mut removed = Vec::new();
    for v in order {
        if kept.contains(&v) {
            continue;
        }
        if kept.len() < plan.keep.max(1) as usize {
            kept.push(v);
        } else {
            removed.push(v);
        }
    }
    if removed.is_empty() {
        StepResult::ok(format!("keeping at most {} releases", plan.keep))
    } else {
        StepResult::changed(format!("would prune {}", removed.join(", ")))
    }
}
