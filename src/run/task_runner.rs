//! One task on the hosts of a play: conditions, loops, module call,
//! `changed_when`/`failed_when`, `register`, `notify`, retries, and the
//! events that report it. Blocks recurse with their rescue and always.

use std::time::{Duration, Instant};

use super::context::{PlayScope, as_value};
use super::delegation::Delegated;
use super::escalation::{self, BecomeKeywords};
use super::loop_items::{item_label, loop_vars, render_items};
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
    /// Keywords of the enclosing blocks, which their tasks inherit.
    pub blocks: BlockKeywords,
    /// The role whose tasks these are (the innermost), if any.
    pub role: Option<std::sync::Arc<crate::playbook::RoleVars>>,
}

impl Scope<'_> {
    /// The variables `task` sees on `host`, with `task_vars` (the block's
    /// and the task's `vars`) over the play's, in its role if it has one.
    pub fn context_of(&self, task: &Task, host: &HostState, task_vars: &VarMap) -> VarMap {
        let role = task.own_role.as_deref().or(self.role.as_deref());
        self.scope.context_in_role(host, task_vars, role)
    }
}

/// What a block passes on to its tasks (rescue and always included).
#[derive(Clone, Default)]
pub struct BlockKeywords {
    /// Over the play's `become`.
    pub become_kw: BecomeKeywords,
    /// A block's `no_log` hides every result inside it, as in Ansible.
    pub no_log: bool,
    /// A block's `notify`: each task inside that changes notifies these too.
    pub notify: Vec<String>,
    /// A block's `check_mode` / `diff`, over the command line's (the
    /// innermost block or task that says wins, as in Ansible).
    pub check_mode: Option<bool>,
    pub diff: Option<bool>,
    /// A block's `any_errors_fatal`, over the play's.
    pub any_errors_fatal: Option<bool>,
    /// A block's `ignore_unreachable`, over the play's.
    pub ignore_unreachable: Option<bool>,
    /// A block's `throttle` (the innermost one written wins).
    pub throttle: Option<usize>,
    /// A block's `timeout` (the innermost one written wins).
    pub timeout: Option<u64>,
    /// The enclosing blocks' `environment:` entries, outermost first.
    pub environment: Vec<Value>,
    /// A `rescue` of an enclosing block may still catch a failure here
    /// (it does not count for `max_fail_percentage` yet).
    pub rescuable: bool,
    /// The same, outside the innermost block (for its rescue and always).
    pub rescuable_outside: bool,
}

impl BlockKeywords {
    fn under(&self, block: &Task) -> BlockKeywords {
        let mut notify = self.notify.clone();
        notify.extend(block.notify.iter().cloned());
        BlockKeywords {
            become_kw: self.become_kw.under(block),
            no_log: self.no_log || block.no_log,
            notify,
            check_mode: block.check_mode.or(self.check_mode),
            diff: block.diff.or(self.diff),
            any_errors_fatal: block.any_errors_fatal.or(self.any_errors_fatal),
            ignore_unreachable: block.ignore_unreachable.or(self.ignore_unreachable),
            throttle: block.throttle.or(self.throttle),
            timeout: block.timeout.or(self.timeout),
            environment: self
                .environment
                .iter()
                .chain(&block.environment)
                .cloned()
                .collect(),
            rescuable: self.rescuable
                || matches!(&block.kind, TaskKind::Block { rescue, .. } if !rescue.is_empty()),
            rescuable_outside: self.rescuable,
        }
    }
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
            // `max_fail_percentage` broken at a task these hosts did not run.
            for h in hosts.iter_mut() {
                if runner.batch_failures.take_doomed(&h.name) && h.active() {
                    h.failed = true;
                    h.failed_by_fatal = true;
                }
            }
            if runner.interrupt.is_set() || !hosts.iter().any(|h| h.in_play()) {
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
                    if task.include.is_some() {
                        // An include's tags select the include itself and
                        // are not passed to what it includes, as in
                        // ansible-core (`apply` would pass them).
                        if !runner.options.tags.runs(&tags) {
                            continue;
                        }
                        tags = scope.tags.clone();
                    }
                    let mut vars = scope.vars.clone();
                    merge(&mut vars, &task.vars);
                    let inner = Scope {
                        tags,
                        vars,
                        blocks: scope.blocks.under(task),
                        role: task.own_role.clone().or_else(|| scope.role.clone()),
                        ..scope.clone()
                    };
                    if super::dynamic_include::is_dynamic(task) {
                        super::dynamic_include::run(runner, &inner, task, hosts).await;
                        continue;
                    }
                    run_block(runner, &inner, task, block, rescue, always, hosts).await;
                }
                TaskKind::Module { module, args, .. } => {
                    if !runner.options.tags.runs(&tags) {
                        continue;
                    }
                    // `meta` directs the run, not a host (`run/meta_direction.rs`).
                    if *module == "meta" {
                        super::meta_direction::direct(runner, scope, task, args, hosts).await;
                        continue;
                    }
                    let gathering = scope
                        .play
                        .gather
                        .as_ref()
                        .is_some_and(|g| std::ptr::eq(g, task));
                    if let Some(start) = &runner.options.start_at
                        && !scope.handler
                        && !if gathering {
                            start.gathers(scope.play)
                        } else {
                            start.lets_run(&task.display_name())
                        }
                    {
                        continue;
                    }
                    run_module_task(runner, scope, task, hosts).await;
                }
            }
        }
    })
}

/// Handlers: once each, in definition order, on the hosts that notified
/// them (a handler may notify a later one); the notifications are then spent,
/// as in Ansible, so a later flush does not run them again.
pub(super) async fn run_handlers(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    hosts: &mut [&mut HostState],
) {
    let handler_scope = Scope {
        handler: true,
        ..scope.clone()
    };
    for handler in &scope.play.handlers {
        if runner.interrupt.is_set() {
            break;
        }
        let mut notified: Vec<&mut HostState> = hosts
            .iter_mut()
            .filter(|h| h.in_play() && h.notified.iter().any(|topic| handler.answers_to(topic)))
            .map(|h| &mut **h)
            .collect();
        if notified.is_empty() {
            continue;
        }
        run_tasks(
            runner,
            &handler_scope,
            std::slice::from_ref(handler),
            &mut notified,
        )
        .await;
    }
    for h in hosts.iter_mut() {
        h.notified.clear();
    }
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
    if task.include.is_some() && hosts.iter().any(|h| h.in_play()) {
        runner.reporter.send(Event::TaskStart {
            task: task.display_name(),
            hosts: hosts.iter().filter(|h| h.in_play()).count(),
            handler: scope.handler,
        });
        announced = true;
    }
    for host in hosts.iter_mut().filter(|h| h.in_play()) {
        let ctx = as_value(scope.context_of(task, host, &scope.vars));
        let mut verdict = Ok(true);
        for cond in &task.when {
            verdict = runner.templates.eval_bool(cond, &ctx, &origin);
            if !matches!(verdict, Ok(true)) {
                break;
            }
        }
        match (verdict, &task.include) {
            // An include reports on every host: ok where it includes its
            // file, skipped where its `when` is false (Ansible's recap counts both).
            (Ok(true), Some(file)) => {
                let outcome = Outcome::ok().with_msg(format!("included: {file}"));
                report(
                    runner,
                    task,
                    &scope.blocks,
                    host,
                    outcome,
                    None,
                    Duration::ZERO,
                );
                entering.push(&mut **host);
            }
            (Ok(false), Some(_)) => {
                let condition = task
                    .when
                    .iter()
                    .find(|c| !matches!(runner.templates.eval_bool(c, &ctx, &origin), Ok(true)))
                    .cloned()
                    .unwrap_or_default();
                report(
                    runner,
                    task,
                    &scope.blocks,
                    host,
                    skipped(&condition),
                    None,
                    Duration::ZERO,
                );
            }
            (Ok(true), None) => entering.push(&mut **host),
            (Ok(false), None) => {}
            (Err(e), _) => {
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
                    &scope.blocks,
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
    // A failure in the rescue or always is this block's rescue no more.
    let settled = Scope {
        blocks: BlockKeywords {
            rescuable: scope.blocks.rescuable_outside,
            ..scope.blocks.clone()
        },
        ..scope.clone()
    };
    let failed_now: Vec<bool> = entering.iter().map(|h| h.failed).collect();

    if !rescue.is_empty() {
        let mut rescued: Vec<&mut HostState> = entering
            .iter_mut()
            .zip(&failed_now)
            .filter(|(h, failed)| **failed && h.unreachable.is_none())
            .map(|(h, _)| &mut **h)
            .collect();
        for h in rescued.iter_mut() {
            // Rescued: the failure is forgiven, as in Ansible's recap (a
            // host failed by another's `any_errors_fatal` counted neither).
            h.failed = false;
            if h.failed_by_fatal {
                // The fatal stop is rescued: the run goes on past this play.
                runner
                    .fatal
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            h.stats.failed = h.stats.failed.saturating_sub(1);
            h.stats.rescued += 1;
        }
        run_tasks(runner, &settled, rescue, &mut rescued).await;
    }
    if !always.is_empty() {
        // `always` runs even on hosts the block failed; their failure stands afterwards.
        let still_failed: Vec<bool> = entering.iter().map(|h| h.failed).collect();
        for h in entering.iter_mut() {
            h.failed = false;
        }
        run_tasks(runner, &settled, always, &mut entering).await;
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
    if task.delegate_to.is_some() {
        // A play host delegated to uses the connection it already has.
        for h in hosts.iter() {
            if let Some(conn) = &h.conn {
                runner.delegates.offer(&h.name, conn).await;
            }
        }
    }
    let before: Vec<bool> = hosts.iter().map(|h| h.active()).collect();
    let active: Vec<&mut HostState> = hosts
        .iter_mut()
        .filter(|h| h.in_play())
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
    if runner.options.check && task.check_mode.or(scope.blocks.check_mode) == Some(false) {
        // Ansible runs such a task for real under --check; convoy's --check
        // changes nothing on any host, so it is said rather than done.
        runner.reporter.send(Event::Note {
            message: format!(
                "{}: `check_mode: false` runs in check mode anyway: --check changes nothing on any host",
                task.span
            ),
        });
    }
    let fatal = !task.ignore_errors
        && (task.run_once
            || task
                .any_errors_fatal
                .or(scope.blocks.any_errors_fatal)
                .unwrap_or(scope.play.any_errors_fatal));
    // `throttle` narrows `--forks` for this task, never widens it.
    let forks = match task
        .throttle
        .or(scope.blocks.throttle)
        .or(scope.play.throttle)
    {
        Some(n) if n > 0 => super::fan_out::Forks::new(n.min(runner.options.forks)),
        _ => runner.forks(),
    };
    let results = forks
        .all(
            // Collected first: a closure held inside the boxed future trips
            // rustc's `Send` check over higher-ranked lifetimes.
            targets
                .into_iter()
                .map(|host| run_on_host(runner, scope, task, host))
                .collect::<Vec<_>>(),
        )
        .await;
    let forgiven_unreachable = results.iter().any(|r| r.forgiven_unreachable);
    // run_once: as ansible-core's strategy (`get_task_hosts`), the one
    // host's registered result and facts go to every host of the batch
    // that is not unreachable.
    if task.run_once
        && let Some(shared) = results.into_iter().next()
    {
        for h in hosts.iter_mut().filter(|h| h.unreachable.is_none()) {
            shared.give(h);
        }
    }
    for h in hosts.iter_mut() {
        runner.delegates.settle_facts(h);
    }
    if fatal
        && (forgiven_unreachable
            || hosts
                .iter()
                .zip(&before)
                .any(|(h, was)| *was && !h.active()))
    {
        end_for_all(runner, hosts);
    }
    if let Some(percent) = scope.play.max_fail_percentage
        && runner.batch_failures.exceed(percent)
    {
        let marked: Vec<String> = hosts
            .iter()
            .filter(|h| h.active())
            .map(|h| h.name.clone())
            .collect();
        runner.batch_failures.doom_the_rest(&marked);
        if !runner.fatal.load(std::sync::atomic::Ordering::Relaxed) {
            runner.reporter.send(Event::Note {
                message: format!(
                    "{}: more than {percent}% of the batch's hosts failed \
                     (max_fail_percentage): the others stop, and no later play runs",
                    scope.play.name
                ),
            });
        }
        end_for_all(runner, hosts);
    }
}

/// `any_errors_fatal` (and a failed `run_once` task, which ansible-core's
/// linear strategy treats alike): a host failed or unreachable at this
/// task fails every other host still running, without counting a failure
/// for them, and no later play runs (ansible-core breaks its plays loop once
/// a whole batch has failed).
fn end_for_all(runner: &Runner<'_>, hosts: &mut [&mut HostState]) {
    for h in hosts.iter_mut().filter(|h| h.active()) {
        h.failed = true;
        h.failed_by_fatal = true;
        runner.batch_failures.failed(&h.name);
    }
    runner
        .fatal
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What a task's run on one host leaves that a `run_once` task gives
/// every host of the batch: its registered result and the facts it set.
#[derive(Default)]
struct Shared {
    registered: Option<(String, Value)>,
    facts: VarMap,
    gathered: VarMap,
    /// The host was unreachable at this task and `ignore_unreachable` let
    /// it go on: still a reason for `any_errors_fatal` to stop every host,
    /// as ansible-core's linear strategy counts every unreachable result.
    forgiven_unreachable: bool,
}

impl Shared {
    fn of(task: &Task, registered: Option<(String, Value)>, outcome: &Outcome) -> Shared {
        // `delegate_facts`: the facts went to the delegated host alone.
        if task.delegate_facts == Some(true) && task.delegate_to.is_some() {
            return Shared {
                registered,
                ..Shared::default()
            };
        }
        Shared {
            registered,
            facts: outcome.facts.clone(),
            gathered: outcome.gathered.clone(),
            ..Shared::default()
        }
    }

    fn give(&self, host: &mut HostState) {
        if let Some((name, value)) = &self.registered {
            host.facts.insert(name.clone(), value.clone());
        }
        merge(&mut host.facts, &self.facts);
        if !self.gathered.is_empty() {
            let injected = crate::facts::injected(&host.gathered, &self.gathered);
            merge(&mut host.gathered, &injected);
        }
    }
}

/// Runs the task on one host; returns what a `run_once` task shares.
async fn run_on_host(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    host: &mut HostState,
) -> Shared {
    let mut shared = run_on_reached_host(runner, scope, task, host).await;
    if host.unreachable.is_some() && ignores_unreachable(scope, task) {
        forgive_unreachable(host);
        shared.forgiven_unreachable = true;
    }
    shared
}

async fn run_on_reached_host(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    host: &mut HostState,
) -> Shared {
    let started = Instant::now();
    runner.reporter.send(Event::HostStart {
        host: host.name.clone(),
    });
    let mut task_vars = scope.vars.clone();
    merge(&mut task_vars, &task.vars);
    let ctx_map = scope.context_of(task, host, &task_vars);
    let origin = task.span.to_string();
    let ctx = as_value(ctx_map.clone());

    let no_log = scope.blocks.no_log;
    let finish = |host: &mut HostState, outcome: Outcome, item: Option<String>| {
        report(
            runner,
            task,
            &scope.blocks,
            host,
            outcome,
            item,
            started.elapsed(),
        )
    };

    // With a loop, `when` is evaluated per item (Ansible defines the item first).
    if task.loop_spec.is_none() {
        match false_condition(runner, task, &ctx, &origin) {
            Ok(None) => {}
            Ok(Some(condition)) => {
                let outcome = skipped(&condition);
                let registered = outcome.to_registered();
                finish(host, outcome, None);
                return Shared {
                    registered: register(task, host, registered),
                    ..Shared::default()
                };
            }
            Err(e) => {
                finish(host, Outcome::failed(e), None);
                return Shared::default();
            }
        }
    }

    let conn_vars = escalation::connection_vars(&runner.templates, &ctx_map, &origin);
    let become_kw = BecomeKeywords::of_play(scope.play)
        .under_keywords(&scope.blocks.become_kw)
        .under(task);
    let sudo = match escalation::resolve(
        &become_kw,
        &conn_vars,
        &host.name,
        runner.options.become_password.as_ref(),
    ) {
        Ok(sudo) => sudo,
        Err(e) => {
            finish(host, Outcome::failed(e.to_string()), None);
            return Shared::default();
        }
    };

    let how = How {
        sudo: sudo.as_ref(),
        // `check_mode: false` does not lift `--check`: convoy's dry run
        // changes nothing, whatever a task says (see run_module_task).
        check: runner.options.check || task.check_mode.or(scope.blocks.check_mode) == Some(true),
        diff: task
            .diff
            .or(scope.blocks.diff)
            .unwrap_or(runner.options.diff),
        scope: scope.scope,
        task_vars: &task_vars,
        become_kw: &become_kw,
        timeout: task
            .timeout
            .or(scope.blocks.timeout)
            .or(scope.play.timeout)
            .filter(|secs| *secs > 0),
        play_environment: &scope.play.environment,
        block_environment: &scope.blocks.environment,
    };

    // Connect on first use, inside the fork slot; a delegated task needs
    // only the delegated host's connection (opened by `call_module`).
    if task.delegate_to.is_none()
        && !ensure_connected(runner, host, &ctx_map, &task.display_name(), started).await
    {
        return Shared::default();
    }

    let TaskKind::Module { module, args, .. } = &task.kind else {
        unreachable!("blocks recurse")
    };
    let spec = tasks::find(module).expect("module checked at load");

    let Some(loop_spec) = &task.loop_spec else {
        let outcome = run_once(runner, task, host, spec, args, &ctx_map, &origin, &how).await;
        let registered = outcome.to_registered();
        let registered = register(task, host, registered);
        let shared = Shared::of(task, registered, &outcome);
        finish(host, outcome, None);
        return shared;
    };

    let items = match render_items(runner, loop_spec, &ctx, &origin) {
        Ok(items) => items,
        Err(e) => {
            finish(host, Outcome::failed(e), None);
            return Shared::default();
        }
    };
    let mut total = Outcome::ok();
    let mut results = Vec::new();
    // Ansible: the task is skipped when every item is (or there is none).
    let mut all_skipped = true;
    for index in 0..items.len() {
        if host.unreachable.is_some() {
            break;
        }
        if index > 0 && !loop_spec.pause.is_zero() {
            tokio::time::sleep(loop_spec.pause).await;
        }
        let item_started = Instant::now();
        let loop_vars = loop_vars(loop_spec, &items, index);
        let mut item_ctx = ctx_map.clone();
        merge(&mut item_ctx, &loop_vars);
        let outcome = match false_condition(runner, task, &as_value(item_ctx.clone()), &origin) {
            Ok(None) => run_once(runner, task, host, spec, args, &item_ctx, &origin, &how).await,
            Ok(Some(condition)) => skipped(&condition),
            Err(e) => Outcome::failed(e),
        };
        // The label may read the item's registered result, as in Ansible.
        if let Some(name) = &task.register {
            item_ctx.insert(name.clone(), outcome.to_registered());
        }
        let (outcome, label) =
            match item_label(runner, loop_spec, &items[index], &item_ctx, &origin) {
                Ok(label) => (outcome, Some(label)),
                Err(e) => (
                    Outcome::failed(format!("Failed to template loop_control.label: {e}")),
                    None,
                ),
            };
        all_skipped &= outcome.skipped;
        total.changed |= outcome.changed;
        total.failed |= outcome.failed && !task.ignore_errors;
        merge(&mut total.facts, &outcome.facts);
        merge(&mut total.gathered, &outcome.gathered);
        let mut registered = outcome.to_registered();
        if let Value::Object(m) = &mut registered {
            merge(m, &loop_vars);
        }
        results.push(registered);
        emit(
            runner,
            task,
            no_log,
            host,
            &outcome,
            label,
            item_started.elapsed(),
        );
    }
    if items.is_empty() {
        total.result.insert(
            "skipped_reason".into(),
            Value::String("No items in the list".into()),
        );
    }
    total.skipped = all_skipped;
    total.result.insert("results".into(), Value::Array(results));
    if total.failed {
        total.msg = Some("One or more items failed".into());
    } else {
        // In the registered result only: the items were reported one by one.
        let msg = if all_skipped {
            "All items skipped"
        } else {
            "All items completed"
        };
        total.result.insert("msg".into(), Value::String(msg.into()));
    }
    let registered = total.to_registered();
    let registered = register(task, host, registered);
    let shared = Shared::of(task, registered, &total);
    finish(host, total, None);
    shared
}

/// The first `when` condition that is false (the task or item is skipped),
/// or none; a condition that cannot be evaluated is the error.
pub(super) fn false_condition(
    runner: &Runner<'_>,
    task: &Task,
    ctx: &Value,
    origin: &str,
) -> Result<Option<String>, String> {
    for cond in &task.when {
        match runner.templates.eval_bool(cond, ctx, origin) {
            Ok(true) => {}
            Ok(false) => return Ok(Some(cond.clone())),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(None)
}

/// A skip as Ansible registers it.
pub(super) fn skipped(condition: &str) -> Outcome {
    Outcome {
        skipped: true,
        ..Outcome::ok()
    }
    .with("skip_reason", "Conditional result was False")
    .with("false_condition", condition)
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
    // A delegation reached this host first: one connection per host.
    if let Some(conn) = runner.delegates.shared(&host.name).await {
        host.conn = Some(conn);
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
                delegated_to: None,
                task: task_name.to_owned(),
                status: Status::Unreachable,
                msg: Some(e.to_string()),
                item: None,
                duration: started.elapsed(),
                diffs: vec![],
                ignored: false,
                output: None,
                rc: None,
            };
            host.stats.count(Status::Unreachable, false);
            runner.reporter.send(Event::HostResult(Box::new(result)));
            false
        }
    }
}

/// How a module is called on one host: escalation, and check and diff
/// mode (the task's or its blocks' `check_mode` / `diff` over `--check` /
/// `--diff`).
struct How<'a> {
    sudo: Option<&'a Become>,
    check: bool,
    diff: bool,
    /// What a delegated host's context is built from (the play's scope
    /// and the task's vars), and the become keywords its variables meet.
    scope: &'a PlayScope,
    task_vars: &'a VarMap,
    become_kw: &'a BecomeKeywords,
    /// `timeout`: seconds one attempt may take.
    timeout: Option<u64>,
    /// `environment:` entries of the play and of the enclosing blocks.
    play_environment: &'a [Value],
    block_environment: &'a [Value],
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
    how: &How<'_>,
) -> Outcome {
    let ctx = as_value(ctx_map.clone());
    // Ansible: `until` alone retries 3 times; `retries` alone retries until
    // the task succeeds; both unset, one attempt.
    let retries = task.retries.or(task.until.as_ref().map(|_| 3)).unwrap_or(0);
    let attempts = retries + 1;
    let retrying = attempts > 1;
    let mut outcome = Outcome::ok();
    let mut done = !retrying;
    let mut delegated_to = None;
    for attempt in 1..=attempts {
        (outcome, delegated_to) =
            call_module(runner, task, host, spec, args, &ctx, origin, how).await;
        if host.unreachable.is_some() {
            return outcome;
        }
        // Early, so that changed_when / failed_when can read it (as Ansible allows).
        if retrying {
            outcome.result.insert("attempts".into(), attempt.into());
        }
        let registered_ctx = with_registered(ctx_map, task, &outcome);
        outcome = apply_overrides(runner, task, outcome, &registered_ctx, origin);
        if !retrying {
            break;
        }
        let registered_ctx = with_registered(ctx_map, task, &outcome);
        let succeeded = match &task.until {
            Some(until) => runner.templates.eval_bool(until, &registered_ctx, origin),
            None => Ok(!outcome.failed),
        };
        match succeeded {
            Ok(true) => {
                done = true;
                break;
            }
            Ok(false) => {}
            Err(e) => return Outcome::failed(e.to_string()),
        }
        if attempt < attempts {
            outcome.result.insert("retries".into(), attempts.into());
            runner.reporter.send(Event::Note {
                message: format!(
                    "FAILED - RETRYING: [{}]: {} ({} retries left).",
                    host.name,
                    task.display_name(),
                    attempts - attempt
                ),
            });
            tokio::time::sleep(task.delay).await;
        }
    }
    if !done {
        // Out of attempts: Ansible marks the result failed and reports
        // `attempts` as the number of retries (one less than the calls made).
        // A `failed_when` still has the last word, as in Ansible's
        // TaskResult.is_failed.
        outcome.result.insert("attempts".into(), retries.into());
        if task.failed_when.is_none() {
            outcome.failed = true;
        }
        if outcome.failed && outcome.msg.is_none() {
            // Ansible prints the whole result when a module gave no message.
            // (keys sorted, as its callback dumps them).
            let sorted: std::collections::BTreeMap<String, Value> =
                serde_json::from_value(outcome.to_registered()).unwrap_or_default();
            outcome.msg = Some(format!(
                "FAILED! => {}",
                serde_json::to_string(&sorted).unwrap_or_default()
            ));
        }
    }
    // `delegate_facts`: the facts are the delegated host's (handed over
    // once the task is done on every host: that host may be one of them).
    if let Some(to) =
        delegated_to.filter(|to| task.delegate_facts == Some(true) && *to != host.name)
    {
        runner
            .delegates
            .defer_facts(&to, &outcome.facts, &outcome.gathered);
        return outcome;
    }
    if !outcome.facts.is_empty() {
        merge(&mut host.facts, &outcome.facts);
    }
    if !outcome.gathered.is_empty() {
        let injected = crate::facts::injected(&host.gathered, &outcome.gathered);
        merge(&mut host.gathered, &injected);
    }
    outcome
}

/// One module call; for a delegated task, also the host it ran on.
#[allow(clippy::too_many_arguments)]
async fn call_module(
    runner: &Runner<'_>,
    task: &Task,
    host: &mut HostState,
    spec: &tasks::ModuleSpec,
    args: &Value,
    ctx: &Value,
    origin: &str,
    how: &How<'_>,
) -> (Outcome, Option<String>) {
    let rendered = match runner.templates.render_deep_marked(args, ctx, origin) {
        Ok(v) => tasks::unmarked_args(spec, v),
        Err(e) => return (Outcome::failed(e.to_string()), None),
    };
    let action = match (spec.build)(rendered) {
        Ok(a) => a,
        Err(msg) => {
            return (
                Outcome::failed(format!("module `{}`: {msg}", spec.name)),
                None,
            );
        }
    };
    // Rendered per call, as ansible-core does: a loop may delegate each
    // item elsewhere.
    let delegated = match &task.delegate_to {
        None => None,
        Some(template) => match delegate(runner, host, template, ctx, origin, how).await {
            Ok(d) => Some(d),
            Err(outcome) => return (outcome, None),
        },
    };
    let (conn, sudo) = match &delegated {
        Some((d, sudo)) => (&d.conn, sudo.as_ref()),
        None => (
            host.conn
                .as_ref()
                .expect("connected before the first module call"),
            how.sudo,
        ),
    };
    // Rendered per call, as ansible-core renders it per item.
    let entries = how
        .play_environment
        .iter()
        .chain(how.block_environment)
        .chain(&task.environment);
    let environment =
        match tasks::Environment::resolve(entries, |v| render_deep(runner, v, ctx, origin)) {
            Ok(env) => env,
            Err(msg) => return (Outcome::failed(msg), delegated.map(|(d, _)| d.name)),
        };
    let action_ctx = ActionContext {
        conn,
        templates: &runner.templates,
        vars: ctx,
        check: how.check,
        diff: how.diff,
        sudo,
        base_dir: &runner.playbook.base_dir,
        environment: &environment,
    };
    let run = action.run(&action_ctx);
    let done = match how.timeout {
        // Each attempt has the whole time, as ansible-core's alarm is set
        // per attempt; the command's process is ended with the future.
        Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), run).await {
            Ok(done) => done,
            Err(_) => {
                let msg = format!(
                    "The {} action failed to execute in the expected time frame ({secs}) and was terminated",
                    spec.name
                );
                return (Outcome::failed(msg), delegated.map(|(d, _)| d.name));
            }
        },
        None => run.await,
    };
    let outcome = match done {
        Ok(outcome) => outcome,
        Err(e) => {
            // A wrong sudo password fails the task; the host still answers.
            if e.is_unreachable() {
                host.unreachable = Some(e.to_string());
            }
            Outcome::failed(e.to_string())
        }
    };
    let mut outcome = outcome;
    if let Some((d, _)) = &delegated
        && d.name != host.name
    {
        outcome.delegated_to = Some(delegation_label(&d.name, &d.ctx));
    }
    (outcome, delegated.map(|(d, _)| d.name))
}

/// How ansible-core's output names the host a task was delegated to: its
/// name, and its `ansible_host` in brackets when that differs.
fn delegation_label(name: &str, ctx: &VarMap) -> String {
    match ctx.get("ansible_host").and_then(Value::as_str) {
        Some(address) if address != name => format!("{name}({address})"),
        _ => name.to_owned(),
    }
}

/// The delegated host of one call and whom the task runs as there (its
/// `ansible_become*` variables, as ansible-core takes connection variables
/// from the delegated host). A host that cannot be reached makes the
/// task's own host unreachable, as in Ansible.
async fn delegate(
    runner: &Runner<'_>,
    host: &mut HostState,
    template: &str,
    ctx: &Value,
    origin: &str,
    how: &How<'_>,
) -> Result<(Delegated, Option<Become>), Outcome> {
    let name = runner
        .templates
        .render_str(template, ctx, origin)
        .map_err(|e| Outcome::failed(format!("delegate_to: {e}")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Outcome::failed(format!(
            "delegate_to: {template:?} renders to no host name"
        )));
    }
    let delegated = match runner
        .delegates
        .connect(runner, how.scope, how.task_vars, name, origin)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            host.unreachable = Some(e.to_string());
            return Err(Outcome::failed(e.to_string()));
        }
    };
    let conn_vars = escalation::connection_vars(&runner.templates, &delegated.ctx, origin);
    let sudo = escalation::resolve(
        how.become_kw,
        &conn_vars,
        &delegated.name,
        runner.options.become_password.as_ref(),
    )
    .map_err(|e| Outcome::failed(e.to_string()))?;
    Ok((delegated, sudo))
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

fn register(task: &Task, host: &mut HostState, registered: Value) -> Option<(String, Value)> {
    let name = task.register.as_ref()?;
    host.facts.insert(name.clone(), registered.clone());
    Some((name.clone(), registered))
}

/// Reports `outcome` as `task`'s result on `host`, for a task that ran
/// elsewhere than here (a switch hook run by the switch's script): the
/// same record, events and notifications as a task run by [`run_tasks`].
pub(super) fn report_ran(
    runner: &Runner<'_>,
    scope: &Scope<'_>,
    task: &Task,
    host: &mut HostState,
    outcome: Outcome,
    elapsed: Duration,
) {
    report(runner, task, &scope.blocks, host, outcome, None, elapsed);
}

/// `ignore_unreachable` of the task, else its blocks', else the play's.
fn ignores_unreachable(scope: &Scope<'_>, task: &Task) -> bool {
    task.ignore_unreachable
        .or(scope.blocks.ignore_unreachable)
        .unwrap_or(scope.play.ignore_unreachable)
}

/// `ignore_unreachable`: the host, reported unreachable at this task, is
/// counted `ok` and `ignored` instead (ansible-core's strategy) and goes on;
/// its next task tries to connect again.
fn forgive_unreachable(host: &mut HostState) {
    host.unreachable = None;
    host.conn = None;
    host.stats.unreachable = host.stats.unreachable.saturating_sub(1);
    host.stats.ok += 1;
    host.stats.ignored += 1;
}

/// Records the final outcome on the host and reports it.
pub(super) fn report(
    runner: &Runner<'_>,
    task: &Task,
    // What the enclosing blocks add to the task's own `no_log` and `notify`.
    blocks: &BlockKeywords,
    host: &mut HostState,
    outcome: Outcome,
    item: Option<String>,
    elapsed: Duration,
) {
    let status = emit(runner, task, blocks.no_log, host, &outcome, item, elapsed);
    let ignored = status == Status::Failed && task.ignore_errors;
    host.stats.count(status, ignored);
    if ignored && outcome.changed {
        // As ansible-core's strategy counts an ignored failure that changed.
        host.stats.changed += 1;
    }
    if status == Status::Failed && !ignored {
        host.failed = true;
        record_failure(task, host, &outcome);
        if !blocks.rescuable {
            runner.batch_failures.failed(&host.name);
        }
    }
    if status == Status::Changed {
        host.notified.extend(task.notify.iter().cloned());
        host.notified.extend(blocks.notify.iter().cloned());
    }
}

/// `ansible_failed_task` and `ansible_failed_result`, which a `rescue`
/// reads (and, as ansible-core's non-persistent facts, the rest of the
/// play): the task's name and action, and its whole result (under
/// `no_log` too: ansible-core hides it from the output, not from the play).
fn record_failure(task: &Task, host: &mut HostState, outcome: &Outcome) {
    let action = match &task.kind {
        TaskKind::Module { module, .. } => *module,
        TaskKind::Block { .. } => "block",
    };
    host.facts.insert(
        "ansible_failed_task".into(),
        serde_json::json!({"name": task.display_name(), "action": action}),
    );
    host.facts
        .insert("ansible_failed_result".into(), outcome.to_registered());
}

fn emit(
    runner: &Runner<'_>,
    task: &Task,
    no_log: bool,
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
        delegated_to: outcome.delegated_to.clone(),
        task: task.display_name(),
        status,
        msg: outcome.msg.clone(),
        item,
        duration: elapsed,
        diffs: outcome.diffs.clone(),
        ignored: status == Status::Failed && task.ignore_errors,
        output: (!output.is_empty()).then_some(output),
        rc: outcome.result.get("rc").and_then(Value::as_i64),
    };
    if task.no_log || no_log {
        // Secrets never reach a renderer (nor the journal, which is written
        // from these events): the message, the item's label, diffs and
        // output are dropped here, for hooks as for tasks. The registered
        // result keeps its values, as in Ansible: later tasks may use them.
        result.msg = Some(NO_LOG_MSG.into());
        result.item = result.item.map(|_| "(censored due to no_log)".into());
        result.diffs.clear();
        result.output = None;
    }
    runner.reporter.send(Event::HostResult(Box::new(result)));
    status
}
