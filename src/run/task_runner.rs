//! One task on the hosts of a play: conditions, loops, module call,
//! `changed_when`/`failed_when`, `register`, `notify`, retries, and the
//! events that report it. Blocks recurse with their rescue and always.

use std::time::{Duration, Instant};

use super::context::{PlayScope, as_value};
use super::{HostState, Runner, connect};
use crate::playbook::{Play, Task, TaskKind};
use crate::report::{Event, HostResult, Status};
use crate::tasks::{self, ActionContext, Outcome};
use crate::transport::Become;
use crate::vars::{Value, VarMap, merge};

const NO_LOG_MSG: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// What tasks inherit from the play and enclosing blocks.
#[derive(Clone)]
pub struct Scope<'a> {
    pub play: &'a Play,
    pub scope: &'a PlayScope,
    pub tags: Vec<String>,
    pub vars: VarMap,
    pub handler: bool,
}

/// Runs `tasks` in order, each on all active `hosts` at once.
pub fn run_tasks<'a>(
    runner: &'a Runner<'a>,
    scope: &'a Scope<'a>,
    tasks: &'a [Task],
    hosts: &'a mut Vec<&mut HostState>,
) -> futures::future::BoxFuture<'a, ()> {
    Box::pin(async move {
        for task in tasks {
            if runner.interrupt.is_set() || !hosts.iter().any(|h| h.active()) {
                break;
            }
            let mut tags = scope.tags.clone();
            tags.extend(task.tags.iter().cloned());
            match &task.kind {
                TaskKind::Block {
                    block,
                    rescue,
                    always,
                } => {
                    let mut vars = scope.vars.clone();
                    merge(&mut vars, &task.vars);
                    let inner = Scope {
                        tags,
                        vars,
                        ..scope.clone()
                    };
                    run_block(runner, &inner, task, block, rescue, always, hosts).await;
                }
                TaskKind::Module { .. } => {
                    if !runner.options.tags.runs(&tags) {
                        continue;
                    }
                    run_module_task(runner, scope, task, hosts).await;
                }
            }
        }
    })
}

async fn run_block(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    block: &[Task],
    rescue: &[Task],
    always: &[Task],
    hosts: &mut Vec<&mut HostState>,
) {
    // A block's `when` decides per host whether the host enters the block;
    // a condition that cannot be evaluated fails the host, as for a task.
    let mut entering: Vec<&mut HostState> = Vec::new();
    let mut announced = false;
    let origin = task.span.to_string();
    for host in hosts.iter_mut().filter(|h| h.active()) {
        let ctx = as_value(scope.scope.context(host, &scope.vars));
        let mut verdict = Ok(true);
        for cond in &task.when {
            verdict = runner.templates.eval_bool(cond, &ctx, &origin);
            if !matches!(verdict, Ok(true)) {
                break;
            }
        }
        match verdict {
            Ok(true) => entering.push(&mut **host),
            Ok(false) => {}
            Err(e) => {
                if !announced {
                    runner.reporter.send(Event::TaskStart {
                        task: task.display_name(),
                        hosts: 1,
                        handler: scope.handler,
                    });
                    announced = true;
                }
                report(
                    runner,
                    task,
                    host,
                    Outcome::failed(e.to_string()),
                    None,
                    Duration::ZERO,
                );
            }
        }
    }
    let was_failed: Vec<bool> = entering.iter().map(|h| h.failed).collect();
    run_tasks(runner, scope, block, &mut entering).await;
    let failed_now: Vec<bool> = entering.iter().map(|h| h.failed).collect();

    if !rescue.is_empty() {
        let mut rescued: Vec<&mut HostState> = entering
            .iter_mut()
            .zip(&failed_now)
            .filter(|(h, failed)| **failed && h.unreachable.is_none())
            .map(|(h, _)| &mut **h)
            .collect();
        for h in rescued.iter_mut() {
            // Rescued: the failure is forgiven, as in Ansible's recap.
            h.failed = false;
            h.stats.failed = h.stats.failed.saturating_sub(1);
            h.stats.rescued += 1;
        }
        run_tasks(runner, scope, rescue, &mut rescued).await;
    }
    if !always.is_empty() {
        // `always` runs even on hosts the block failed; their failure stands afterwards.
        let still_failed: Vec<bool> = entering.iter().map(|h| h.failed).collect();
        for h in entering.iter_mut() {
            h.failed = false;
        }
        run_tasks(runner, scope, always, &mut entering).await;
        for (h, failed) in entering.iter_mut().zip(still_failed) {
            h.failed |= failed;
        }
    }
    let _ = was_failed;
}

async fn run_module_task(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    hosts: &mut [&mut HostState],
) {
    let active: Vec<&mut HostState> = hosts
        .iter_mut()
        .filter(|h| h.active())
        .map(|h| &mut **h)
        .collect();
    let targets = if task.run_once {
        active.into_iter().take(1).collect()
    } else {
        active
    };
    runner.reporter.send(Event::TaskStart {
        task: task.display_name(),
        hosts: targets.len(),
        handler: scope.handler,
    });
    let mut first_registered: Option<(String, Value)> = None;
    let results = runner
        .forks()
        .all(
            // Collected first: a closure held inside the boxed future trips
            // rustc's `Send` check over higher-ranked lifetimes.
            targets
                .into_iter()
                .map(|host| run_on_host(runner, scope, task, host))
                .collect::<Vec<_>>(),
        )
        .await;
    if task.run_once {
        first_registered = results.into_iter().flatten().next();
    }
    // run_once: every host of the play sees the one result, as in Ansible.
    if let Some((name, value)) = first_registered {
        for h in hosts.iter_mut() {
            h.facts.insert(name.clone(), value.clone());
        }
    }
}

/// Runs the task on one host; returns the registered variable, if any.
async fn run_on_host(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    host: &mut HostState,
) -> Option<(String, Value)> {
    let started = Instant::now();
    runner.reporter.send(Event::HostStart {
        host: host.name.clone(),
    });
    let mut task_vars = scope.vars.clone();
    merge(&mut task_vars, &task.vars);
    let ctx_map = scope.scope.context(host, &task_vars);
    let origin = task.span.to_string();
    let ctx = as_value(ctx_map.clone());

    let finish = |host: &mut HostState, outcome: Outcome, item: Option<String>| {
        report(runner, task, host, outcome, item, started.elapsed())
    };

    for cond in &task.when {
        match runner.templates.eval_bool(cond, &ctx, &origin) {
            Ok(true) => {}
            Ok(false) => {
                let outcome = Outcome {
                    skipped: true,
                    ..Outcome::ok()
                };
                let registered = outcome.to_registered();
                finish(host, outcome, None);
                return register(task, host, registered);
            }
            Err(e) => {
                finish(host, Outcome::failed(e.to_string()), None);
                return None;
            }
        }
    }

    // Connect on first use, inside the fork slot.
    if !ensure_connected(runner, host, &ctx_map, &task.display_name(), started).await {
        return None;
    }

    let TaskKind::Module { module, args, .. } = &task.kind else {
        unreachable!("blocks recurse")
    };
    let spec = tasks::find(module).expect("module checked at load");
    let sudo = become_for(scope.play, task);

    let Some(loop_spec) = &task.loop_spec else {
        let outcome = run_once(
            runner,
            task,
            host,
            spec,
            args,
            &ctx_map,
            &origin,
            sudo.as_ref(),
        )
        .await;
        let registered = outcome.to_registered();
        finish(host, outcome, None);
        return register(task, host, registered);
    };

    let items = match runner
        .templates
        .render_value(&loop_spec.items, &ctx, &origin)
    {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            finish(
                host,
                Outcome::failed(format!("`loop` must be a list, got {other}")),
                None,
            );
            return None;
        }
        Err(e) => {
            finish(host, Outcome::failed(e.to_string()), None);
            return None;
        }
    };
    let mut total = Outcome::ok();
    let mut results = Vec::new();
    for item in items {
        if host.unreachable.is_some() {
            break;
        }
        let item_started = Instant::now();
        let mut item_ctx = ctx_map.clone();
        item_ctx.insert(loop_spec.loop_var.clone(), item.clone());
        let label = match &loop_spec.label {
            Some(label) => runner
                .templates
                .render_str(label, &as_value(item_ctx.clone()), &origin)
                .unwrap_or_default(),
            None => match &item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        };
        let outcome = run_once(
            runner,
            task,
            host,
            spec,
            args,
            &item_ctx,
            &origin,
            sudo.as_ref(),
        )
        .await;
        total.changed |= outcome.changed;
        total.failed |= outcome.failed && !task.ignore_errors;
        merge(&mut total.facts, &outcome.facts);
        let mut registered = outcome.to_registered();
        if let Value::Object(m) = &mut registered {
            m.insert(loop_spec.loop_var.clone(), item);
        }
        results.push(registered);
        emit(
            runner,
            task,
            host,
            &outcome,
            Some(label),
            item_started.elapsed(),
        );
    }
    total.result.insert("results".into(), Value::Array(results));
    if total.failed {
        total.msg = Some("one or more items failed".into());
    }
    let registered = total.to_registered();
    finish(host, total, None);
    register(task, host, registered)
}

/// Opens the host's connection if it has none; an unreachable host is
/// reported (under `task_name`) and marked. Returns whether it is connected.
pub(super) async fn ensure_connected(
    runner: &Runner<'_>,
    host: &mut HostState,
    ctx_map: &VarMap,
    task_name: &str,
    started: Instant,
) -> bool {
    if host.conn.is_some() {
        return true;
    }
    let conn_vars = render_map(runner, ctx_map, task_name);
    match connect::open(&host.name, &conn_vars, runner.options, &runner.control_dir).await {
        Ok(conn) => {
            host.conn = Some(std::sync::Arc::new(conn));
            true
        }
        Err(e) => {
            host.unreachable = Some(e.to_string());
            let result = HostResult {
                host: host.name.clone(),
                task: task_name.to_owned(),
                status: Status::Unreachable,
                msg: Some(e.to_string()),
                item: None,
                duration: started.elapsed(),
                diffs: vec![],
                ignored: false,
                output: None,
            };
            host.stats.count(Status::Unreachable, false);
            runner.reporter.send(Event::HostResult(Box::new(result)));
            false
        }
    }
}

/// One module call (with retries), then `changed_when` / `failed_when`.
#[allow(clippy::too_many_arguments)]
async fn run_once(
    runner: &Runner<'_>,
    task: &Task,
    host: &mut HostState,
    spec: &tasks::ModuleSpec,
    args: &Value,
    ctx_map: &VarMap,
    origin: &str,
    sudo: Option<&Become>,
) -> Outcome {
    let ctx = as_value(ctx_map.clone());
    let attempts = if task.until.is_some() {
        task.retries + 1
    } else {
        1
    };
    let mut outcome = Outcome::ok();
    for attempt in 1..=attempts {
        outcome = call_module(runner, host, spec, args, &ctx, origin, sudo).await;
        if host.unreachable.is_some() {
            return outcome;
        }
        let registered_ctx = with_registered(ctx_map, task, &outcome);
        outcome = apply_overrides(runner, task, outcome, &registered_ctx, origin);
        match &task.until {
            Some(until) if attempt < attempts => {
                if runner
                    .templates
                    .eval_bool(until, &registered_ctx, origin)
                    .unwrap_or(false)
                {
                    break;
                }
                tokio::time::sleep(task.delay).await;
            }
            _ => break,
        }
    }
    if !outcome.facts.is_empty() {
        merge(&mut host.facts, &outcome.facts);
    }
    outcome
}

async fn call_module(
    runner: &Runner<'_>,
    host: &mut HostState,
    spec: &tasks::ModuleSpec,
    args: &Value,
    ctx: &Value,
    origin: &str,
    sudo: Option<&Become>,
) -> Outcome {
    let rendered = match render_deep(runner, args, ctx, origin) {
        Ok(v) => v,
        Err(msg) => return Outcome::failed(msg),
    };
    let action = match (spec.build)(rendered) {
        Ok(a) => a,
        Err(msg) => return Outcome::failed(format!("module `{}`: {msg}", spec.name)),
    };
    let conn = host
        .conn
        .as_ref()
        .expect("connected before the first module call");
    let action_ctx = ActionContext {
        conn,
        templates: &runner.templates,
        vars: ctx,
        check: runner.options.check,
        diff: runner.options.diff,
        sudo,
        base_dir: &runner.playbook.base_dir,
    };
    match action.run(&action_ctx).await {
        Ok(outcome) => outcome,
        Err(e) => {
            host.unreachable = Some(e.to_string());
            Outcome::failed(e.to_string())
        }
    }
}

fn render_deep(
    runner: &Runner<'_>,
    value: &Value,
    ctx: &Value,
    origin: &str,
) -> Result<Value, String> {
    runner
        .templates
        .render_deep(value, ctx, origin)
        .map_err(|e| e.to_string())
}

/// Renders connection variables (they may be templates) without failing the host on a bad one.
pub(super) fn render_map(runner: &Runner<'_>, ctx_map: &VarMap, origin: &str) -> VarMap {
    let ctx = as_value(ctx_map.clone());
    let mut out = VarMap::new();
    for (k, v) in ctx_map
        .iter()
        .filter(|(k, _)| k.starts_with("ansible_") || k.starts_with("convoy_"))
    {
        out.insert(
            k.clone(),
            render_deep(runner, v, &ctx, origin).unwrap_or_else(|_| v.clone()),
        );
    }
    out
}

fn with_registered(ctx_map: &VarMap, task: &Task, outcome: &Outcome) -> Value {
    let mut map = ctx_map.clone();
    if let Some(name) = &task.register {
        map.insert(name.clone(), outcome.to_registered());
    }
    // Ansible also exposes the result's own fields (rc, stdout) to changed_when/failed_when.
    for (k, v) in &outcome.result {
        map.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(map)
}

fn apply_overrides(
    runner: &Runner<'_>,
    task: &Task,
    mut outcome: Outcome,
    ctx: &Value,
    origin: &str,
) -> Outcome {
    let all = |conds: &[String]| -> Result<bool, String> {
        for c in conds {
            if !runner
                .templates
                .eval_bool(c, ctx, origin)
                .map_err(|e| e.to_string())?
            {
                return Ok(false);
            }
        }
        Ok(true)
    };
    if let Some(conds) = &task.changed_when {
        match all(conds) {
            Ok(changed) => outcome.changed = changed,
            Err(e) => return Outcome::failed(e),
        }
    }
    if let Some(conds) = &task.failed_when {
        match all(conds) {
            Ok(failed) => {
                outcome.failed = failed;
                if failed && outcome.msg.is_none() {
                    outcome.msg = Some("failed_when condition met".into());
                }
                if !failed {
                    outcome.msg = outcome
                        .msg
                        .filter(|m| !m.starts_with("non-zero return code"));
                }
            }
            Err(e) => return Outcome::failed(e),
        }
    }
    outcome
}

fn become_for(play: &Play, task: &Task) -> Option<Become> {
    let on = task.sudo.or(play.sudo).unwrap_or(false);
    on.then(|| Become {
        user: task
            .become_user
            .clone()
            .or_else(|| play.become_user.clone())
            .unwrap_or_else(|| "root".into()),
    })
}

fn register(task: &Task, host: &mut HostState, registered: Value) -> Option<(String, Value)> {
    let name = task.register.as_ref()?;
    host.facts.insert(name.clone(), registered.clone());
    Some((name.clone(), registered))
}

/// Records the final outcome on the host and reports it.
fn report(
    runner: &Runner<'_>,
    task: &Task,
    host: &mut HostState,
    outcome: Outcome,
    item: Option<String>,
    elapsed: Duration,
) {
    let status = emit(runner, task, host, &outcome, item, elapsed);
    let ignored = status == Status::Failed && task.ignore_errors;
    host.stats.count(status, ignored);
    if status == Status::Failed && !ignored {
        host.failed = true;
    }
    if status == Status::Changed {
        host.notified.extend(task.notify.iter().cloned());
    }
}

fn emit(
    runner: &Runner<'_>,
    task: &Task,
    host: &HostState,
    outcome: &Outcome,
    item: Option<String>,
    elapsed: Duration,
) -> Status {
    let status = if host.unreachable.is_some() {
        Status::Unreachable
    } else if outcome.failed {
        Status::Failed
    } else if outcome.skipped {
        Status::Skipped
    } else if outcome.changed {
        Status::Changed
    } else {
        Status::Ok
    };
    let output = ["stdout", "stderr"]
        .iter()
        .filter_map(|k| {
            outcome
                .result
                .get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut result = HostResult {
        host: host.name.clone(),
        task: task.display_name(),
        status,
        msg: outcome.msg.clone(),
        item,
        duration: elapsed,
        diffs: outcome.diffs.clone(),
        ignored: status == Status::Failed && task.ignore_errors,
        output: (!output.is_empty()).then_some(output),
    };
    if task.no_log {
        // Secrets never reach a renderer: the message, item, diff and output are dropped here.
        result.msg = Some(NO_LOG_MSG.into());
        result.item = result.item.map(|_| "(censored)".into());
        result.diffs.clear();
        result.output = None;
    }
    runner.reporter.send(Event::HostResult(Box::new(result)));
    status
}
