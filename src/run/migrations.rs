//! Migrations: converters that run once per rollout when the deploy
//! crosses into the version range they were written for (the version a host
//! ran is outside the range, the new one inside), before the first batch
//! switches. Each run is recorded on every targeted host under
//! `<root>/.convoy/migrations/`, so a resumed or repeated run skips it.

use std::time::Instant;

use super::proxy_step::ProxyRun;
use super::step::{StepResult, hooks, record};
use super::task_runner::Scope;
use super::{HostState, Runner};
use crate::playbook::{Migration, MigrationTarget, Play};
use crate::report::Event;
use crate::transport::{Script, ShellScript};

/// Runs the due migrations; `false` when one failed (nothing must switch then).
pub async fn run_due(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    play: &Play,
    hosts: &mut [&mut HostState],
    proxy: Option<&tokio::sync::Mutex<ProxyRun>>,
) -> bool {
    for migration in &play.migrations {
        let Some((crossing, version)) = due(migration, hosts) else {
            continue;
        };
        let first = crossing[0];
        let key = record_key(migration, &version);
        if already_ran(runner.forks(), hosts, &key).await {
            runner.reporter.send(Event::Note {
                message: format!(
                    "migration {} already ran for {version}: skipped",
                    migration.name
                ),
            });
            continue;
        }
        let targets: Vec<usize> = match migration.on {
            MigrationTarget::One => vec![first],
            MigrationTarget::Every => crossing,
        };
        // The parking page goes up while the data is converted, if the proxy says so.
        if !maintenance(runner, proxy, true).await {
            return false;
        }
        let title = format!("migration {} ({})", migration.name, migration.versions);
        let ok = match &migration.run {
            Some(command) => run_command(runner, scope, &title, command, hosts, &targets).await,
            None => {
                let before: Vec<bool> = hosts.iter().map(|h| h.failed).collect();
                let names: Vec<String> = targets.iter().map(|&i| hosts[i].name.clone()).collect();
                hooks(runner, scope, &migration.tasks, hosts, |h| {
                    names.contains(&h.name)
                })
                .await;
                hosts.iter().zip(before).all(|(h, was)| h.failed == was)
            }
        };
        let ok = ok && maintenance(runner, proxy, false).await;
        if !ok {
            runner.reporter.send(Event::Note {
                message: format!("{title} failed: no host is switched"),
            });
            return false;
        }
        mark(runner.forks(), hosts, &key, &runner.options.run_id).await;
    }
    true
}

/// The hosts (by index) whose move enters the migration's range, and the
/// version they move to; `None` when the migration is not due.
pub(super) fn due(migration: &Migration, hosts: &[&mut HostState]) -> Option<(Vec<usize>, String)> {
    let crossing: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            h.active()
                && h.cycle
                    .as_ref()
                    .is_some_and(|c| crosses(migration, c.found_current(), &c.plan.version))
        })
        .map(|(i, _)| i)
        .collect();
    let first = *crossing.first()?;
    let version = hosts[first].plan()?.version.clone();
    Some((crossing, version))
}

/// Does moving from `from` to `to` enter the migration's range?
fn crosses(m: &Migration, from: Option<&str>, to: &str) -> bool {
    let Ok(to) = semver::Version::parse(to.split('+').next().unwrap_or(to)) else {
        return false;
    };
    if !m.versions.matches(&to) {
        return false;
    }
    match from.and_then(|f| semver::Version::parse(f.split('+').next().unwrap_or(f)).ok()) {
        Some(from) => !m.versions.matches(&from),
        None => true,
    }
}

pub(super) fn record_key(m: &Migration, version: &str) -> String {
    let name: String = m
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}@{version}")
}

async fn already_ran(forks: super::Forks, hosts: &[&mut HostState], key: &str) -> bool {
    let answers = forks
        .each(hosts.iter(), |h| async move {
            let (Some(p), Some(conn)) = (h.plan(), h.conn.as_ref()) else {
                return false;
            };
            let script = ShellScript::new()
                .var("R", &p.root)
                .var("K", key)
                .code("[ -e \"$R/.convoy/migrations/$K\" ]");
            conn.exec(Script::new(&script).sudo(h.release_sudo().as_ref()))
                .await
                .is_ok_and(|o| o.success())
        })
        .await;
    answers.into_iter().any(|ran| ran)
}

async fn mark(forks: super::Forks, hosts: &[&mut HostState], key: &str, run_id: &str) {
    forks
        .each(hosts.iter(), |h| async move {
            let (Some(p), Some(conn)) = (h.plan(), h.conn.as_ref()) else {
                return;
            };
            let script = ShellScript::new()
                .var("R", &p.root)
                .var("K", key)
                .var("ID", run_id)
                .code(
                    "mkdir -p -- \"$R/.convoy/migrations\" && printf 'run=%s\\n' \"$ID\" > \"$R/.convoy/migrations/$K\"",
                );
            let _ = conn.exec(Script::new(&script).sudo(h.release_sudo().as_ref())).await;
        })
        .await;
}

/// Runs `command` in the new release's directory on the target hosts.
#[allow(clippy::too_many_arguments)]
async fn run_command(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    title: &str,
    command: &str,
    hosts: &mut [&mut HostState],
    targets: &[usize],
) -> bool {
    runner.reporter.send(Event::TaskStart {
        task: title.to_owned(),
        hosts: targets.len(),
        handler: false,
    });
    let results = runner
        .forks()
        .each(
            hosts
                .iter()
                .enumerate()
                .filter(|(i, _)| targets.contains(i)),
            |(i, h)| async move {
                let started = Instant::now();
                let (Some(p), Some(conn)) = (h.plan(), h.conn.as_ref()) else {
                    return (i, StepResult::failed("not connected"), started);
                };
                // The command is a template, like every string of a play.
                let vars = crate::run::context::as_value(scope.scope.context(h, &scope.vars));
                let command = match runner
                    .templates
                    .render_str_deep(command, &vars, "migration")
                {
                    Ok(c) => c,
                    Err(e) => return (i, StepResult::failed(e.to_string()), started),
                };
                // The migration's `run:` is the user's own shell code.
                let script = ShellScript::new()
                    .var("D", p.release_path())
                    .code("cd -- \"$D\" || exit")
                    .user_code(&command);
                let result = match conn
                    .exec(Script::new(&script).sudo(h.release_sudo().as_ref()))
                    .await
                {
                    Ok(out) if out.success() => {
                        StepResult::changed(format!("ran in {}", p.release_path()))
                    }
                    Ok(out) => StepResult::failed(format!(
                        "exited {}: {}",
                        out.status,
                        out.stderr_str()
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or("")
                            .trim()
                    )),
                    Err(e) => StepResult::failed(e.to_string()),
                };
                (i, result, started)
            },
        )
        .await;
    let mut ok = true;
    for (i, result, started) in results {
        ok &= result.status != crate::report::Status::Failed;
        record(runner, hosts[i], title, result, started);
    }
    ok
}

/// Switches the maintenance page on or off (when the proxy tier asks for it
/// during migrations); `false` when the proxy could not be updated.
async fn maintenance(
    runner: &Runner<'_>,
    proxy: Option<&tokio::sync::Mutex<ProxyRun>>,
    on: bool,
) -> bool {
    let Some(p) = proxy else { return true };
    let mut p = p.lock().await;
    if !p.maintenance_during_migrations() {
        return true;
    }
    p.state.maintenance = on;
    let label = if on {
        "proxy: maintenance page on"
    } else {
        "proxy: maintenance page off"
    };
    let applied = p.apply(runner, label).await;
    if applied && on {
        // A reload is graceful: requests already with the app finish, and old
        // proxy workers answer a moment longer. Give them the drain timeout
        // before the data is touched.
        tokio::time::sleep(p.drain_timeout()).await;
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(range: &str) -> Migration {
        Migration {
            name: "convert".into(),
            versions: semver::VersionReq::parse(range).unwrap(),
            run: Some("true".into()),
            tasks: vec![],
            on: MigrationTarget::One,
        }
    }

    #[test]
    fn runs_only_when_entering_the_range() {
        let m = migration(">=2.0.0, <3.0.0");
        assert!(crosses(&m, Some("1.4.0"), "2.1.0"));
        assert!(crosses(&m, None, "2.1.0"));
        assert!(!crosses(&m, Some("2.1.0"), "2.2.0"));
        assert!(!crosses(&m, Some("1.0.0"), "3.0.0"));
        assert!(crosses(&m, Some("1.0.0"), "2.0.0+patch.1"));
    }
}
