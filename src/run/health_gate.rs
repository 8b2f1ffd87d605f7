//! A batch's health gate: each host must become healthy in time (and stay
//! so for the soak), or it fails and counts against the failure budget.
//! The same gate for a release's switch, its rollback and a plain play's
//! batches; its strings are rendered per host, so `release.version` names
//! the version the host was just switched to, in either direction.

use std::time::Instant;

use super::HostState;
use super::Runner;
use super::step::{StepResult, record};
use super::task_runner::Scope;
use crate::playbook::HealthSpec;
use crate::report::Event;
use crate::rollout::{HealthGate, HealthTarget};

/// Checks `spec` on the hosts `take_part` selects, at most `--forks` at
/// once; each host's time counts from when its own check starts.
pub async fn check(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    spec: &HealthSpec,
    hosts: &mut [&mut HostState],
    take_part: impl Fn(&HostState) -> bool,
) {
    let gate = HealthGate {
        timeout: spec.timeout,
        interval: spec.interval,
        soak: spec.soak,
    };
    let targets: Vec<Option<Result<HealthTarget, String>>> = hosts
        .iter()
        .map(|host| {
            take_part(host).then(|| {
                let vars = super::context::as_value(scope.scope.context(host, &scope.vars));
                health_target(runner, spec, &vars)
            })
        })
        .collect();
    let count = targets.iter().flatten().count();
    if count == 0 {
        return;
    }
    runner.reporter.send(Event::TaskStart {
        task: "health".into(),
        hosts: count,
        handler: false,
    });
    let results = runner
        .forks()
        .all(hosts.iter().zip(&targets).map(|(host, target)| {
            let gate = &gate;
            async move {
                let target = target.as_ref()?;
                let started = Instant::now();
                let result = match target {
                    Err(message) => Err(message.clone()),
                    // A host without a connection ran nothing: nothing to check.
                    Ok(t) => gate.wait(t, host.conn.as_ref()?).await,
                };
                Some((result, started))
            }
        }))
        .await;
    for (host, result) in hosts.iter_mut().zip(results) {
        let Some((result, started)) = result else {
            continue;
        };
        let step = match result {
            Ok(took) => StepResult::ok(format!("healthy after {:.1}s", took.as_secs_f64())),
            Err(reason) => StepResult::failed(reason),
        };
        record(runner, host, "health", step, started);
    }
}

/// Renders a host's health check; the error is a one-line message.
pub fn health_target(
    runner: &Runner<'_>,
    spec: &crate::playbook::HealthSpec,
    vars: &crate::vars::Value,
) -> Result<HealthTarget, String> {
    let render = |s: &str| {
        runner
            .templates
            .render_str_deep(s, vars, "rollout.health")
            .map_err(|e| e.to_string())
    };
    if let Some(url) = &spec.http {
        let body = spec
            .body
            .as_deref()
            .map(|b| regex::Regex::new(&render(b)?).map_err(|e| format!("health body regex: {e}")))
            .transpose()?;
        return Ok(HealthTarget::Http {
            url: render(url)?,
            expect: spec.expect,
            body,
        });
    }
    if let Some(address) = &spec.tcp {
        return Ok(HealthTarget::Tcp {
            address: render(address)?,
        });
    }
    Ok(HealthTarget::Command {
        command: render(spec.command.as_deref().unwrap_or("true"))?,
    })
}
