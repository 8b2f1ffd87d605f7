//! Checks made before the first connection, so that a typo fails the run
//! with no host touched: host patterns, `--limit`, vars files, template and
//! `src` files, and every task's templates rendered for every host.
//!
//! A template may name a variable that only exists once the run is under way
//! (a `register`, a `set_fact`, a loop variable); such names are allowed to
//! be undefined here and are checked when the task runs.

use std::collections::HashSet;
use std::io::IsTerminal;

use super::RunOptions;
use super::context::{PlayScope, as_value};
use super::host_state::HostState;
use crate::distribution::ArtifactCache;
use crate::error::Error;
use crate::inventory::Inventory;
use crate::playbook::{Playbook, RoleVars, Task, TaskKind};
use crate::template::{TemplateError, Templates};
use crate::vars::{Value, VarMap};

/// Checks everything; the first problem is the error (a run stops there).
pub fn check(
    inventory: &Inventory,
    playbook: &Playbook,
    templates: &Templates,
    artifacts: &ArtifactCache,
    options: &RunOptions,
) -> Result<(), Error> {
    // A job's play has no tasks: `convoy run` would pass over it and say
    // ok, as if the job had run.
    if let Some(job) = playbook.plays.iter().find_map(|p| p.job.as_ref()) {
        return Err(Error::Located {
            message: format!(
                "job `{}` runs with `convoy job run PLAYBOOK`, not `convoy run`",
                job.name
            ),
            span: job.span.clone(),
        });
    }
    match check_all(
        inventory,
        playbook,
        templates,
        artifacts,
        options,
        ProxyCheck::Render,
    )
    .problems
    .into_iter()
    .next()
    {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// How far proxy sections are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyCheck {
    /// Every file rendered for every proxy host (a run: the proxy hosts
    /// validate the files themselves before anything is installed).
    Render,
    /// Also run the section's validator (nginx, haproxy) on this machine
    /// against the rendered files, when it is installed (`convoy lint`).
    ValidateHere,
}

/// What [`check_all`] found.
#[derive(Default)]
pub struct Findings {
    pub problems: Vec<Error>,
    /// What was checked, or not, beyond rendering (one line per proxy section).
    pub notes: Vec<String>,
}

/// Every problem found, each once (`convoy lint` reports them all). A
/// problem that repeats for many hosts is reported for the first one.
pub fn check_all(
    inventory: &Inventory,
    playbook: &Playbook,
    templates: &Templates,
    artifacts: &ArtifactCache,
    options: &RunOptions,
    proxy: ProxyCheck,
) -> Findings {
    share_inventory(templates, inventory);
    let mut notes = Vec::new();
    let mut problems = Problems::default();
    if let Some(limit) = &options.limit
        && let Err(source) = inventory.select(limit)
    {
        problems.push(Error::Pattern { source, span: None });
    }
    let runtime = runtime_names(playbook);
    for play in &playbook.plays {
        if let Some(rollout) = &play.rollout
            && rollout.pause == crate::playbook::Pause::Confirm
            && !options.yes
            && !std::io::stdin().is_terminal()
        {
            problems.push(Error::Located {
                message: "`pause: confirm` asks on a terminal, and this run has none: pass --yes to continue between batches without asking".into(),
                span: rollout.span.clone(),
            });
        }
        // `once.on` must name a lock host before any host is contacted.
        if let Some(on) = play
            .once
            .as_ref()
            .and_then(|o| o.on.as_ref().map(|p| (p, o)))
            && let Err(source) = inventory.select(on.0)
        {
            problems.push(Error::Pattern {
                source,
                span: Some(on.1.span.clone()),
            });
        }
        let hosts = match inventory.select(&play.hosts) {
            Ok(hosts) => hosts,
            Err(source) => {
                problems.push(Error::Pattern {
                    source,
                    span: Some(play.hosts_span.clone()),
                });
                continue;
            }
        };
        let scope = match play_scope(playbook, play, options) {
            Ok(scope) => scope,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if let Some(spec) = &play.proxy {
            // Proxy files render for every proxy host, against the fleet as it stands.
            let vars_for =
                |h: &str| proxy_host_context(&scope, inventory, playbook, options, h, &play.name);
            // A job's proxy routes to the app's hosts (its pools), not the job's.
            let app_hosts: Vec<&crate::inventory::Host> = match (&play.job, &spec.traffic) {
                (Some(_), Some(traffic)) => {
                    crate::job::tenant_traffic::pool_hosts(traffic, inventory)
                }
                _ => hosts.clone(),
            };
            let names = app_hosts.iter().map(|h| h.name.as_str());
            let mut state = crate::proxy::FleetState::in_service(inventory, names);
            state.set_section(spec, inventory);
            if let Some(traffic) = &spec.traffic {
                for problem in crate::traffic::spec::check_pools(traffic, inventory, &app_hosts) {
                    problems.push(problem);
                }
            }
            for problem in
                crate::traffic::request_pools::check_hosts(&spec.request_pools, inventory)
            {
                problems.push(problem);
            }
            // With pools, every traffic step renders (and, for lint,
            // validates) before any host is touched, not only the first.
            let states = match (&spec.traffic, &state.traffic) {
                (Some(t), Some(declared)) => crate::traffic::switch::step_states(t, declared),
                _ => vec![(String::new(), None)],
            };
            for (label, traffic) in states {
                let mut state = state.clone();
                if traffic.is_some() {
                    state.traffic = traffic;
                }
                let checked =
                    crate::proxy::ProxyTier::check(spec, inventory, templates, &vars_for, &state)
                        .and_then(|configs| {
                            crate::proxy::unread_keys::check(spec, templates, &configs)
                                .map(|()| configs)
                        })
                        .and_then(|configs| match proxy {
                            ProxyCheck::Render => Ok(None),
                            ProxyCheck::ValidateHere => {
                                crate::proxy::validate_here(spec, &configs).map(Some)
                            }
                        });
                let at = if label.is_empty() {
                    String::new()
                } else {
                    format!(" ({label})")
                };
                match checked {
                    Ok(Some(note)) => {
                        notes.push(format!("play {:?}: proxy files{at} {note}", play.name))
                    }
                    Ok(None) => {}
                    Err(e) if label.is_empty() => {
                        problems.push(e.into());
                        break;
                    }
                    Err(e) => {
                        problems.push(Error::Located {
                            message: format!("traffic {label}: {e}"),
                            span: spec
                                .traffic
                                .as_ref()
                                .map_or(spec.span.clone(), |t| t.span.clone()),
                        });
                        break;
                    }
                }
            }
        }
        for host in hosts {
            let ctx = host_context(&scope, inventory, playbook, options, &host.name);
            // A role's tasks see its own defaults and vars over the other roles'.
            let in_role = |role: &RoleVars| {
                host_context_in_role(&scope, inventory, playbook, options, &host.name, Some(role))
            };
            // A become method convoy cannot honour is refused before any host is touched.
            let become_vars =
                super::escalation::connection_vars(templates, &ctx, &play.hosts_span.to_string());
            let keywords = super::escalation::BecomeKeywords::of_play(play);
            if let Err(e) = super::escalation::resolve(
                &keywords,
                &become_vars,
                &host.name,
                options.become_password.as_ref(),
            ) {
                problems.push(e.into());
            }
            if let Some(spec) = &play.distribution {
                // The release section renders for every host (and its artifact is
                // found, safe and hashed) before any host is contacted.
                let value = as_value(ctx.clone());
                if let Err(message) = crate::distribution::render(
                    spec,
                    templates,
                    &value,
                    &playbook.base_dir,
                    artifacts,
                ) {
                    problems.push(Error::Distribution {
                        message,
                        span: spec.span.clone(),
                        host: host.name.clone(),
                    });
                }
                for hook in [&play.hooks.prepare, &play.hooks.switch, &play.hooks.confirm] {
                    check_tasks(
                        playbook,
                        templates,
                        hook,
                        &ctx,
                        &in_role,
                        &VarMap::new(),
                        &host.name,
                        &runtime,
                        &mut problems,
                    );
                }
            }
            for tasks in [
                &play.pre_tasks,
                &play.tasks,
                &play.post_tasks,
                &play.handlers,
            ] {
                check_tasks(
                    playbook,
                    templates,
                    tasks,
                    &ctx,
                    &in_role,
                    &VarMap::new(),
                    &host.name,
                    &runtime,
                    &mut problems,
                );
            }
        }
    }
    Findings {
        problems: problems.0,
        notes,
    }
}

/// Problems in the order found, without repeats: the same mistake seen from
/// another host is the same mistake.
#[derive(Default)]
struct Problems(Vec<Error>, HashSet<String>);

impl Problems {
    fn push(&mut self, e: Error) {
        let text = e.to_string();
        let key = text
            .lines()
            .filter(|l| !l.contains("for host"))
            .collect::<Vec<_>>()
            .join("\n");
        if self.1.insert(key) {
            self.0.push(e);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_tasks(
    playbook: &Playbook,
    templates: &Templates,
    tasks: &[Task],
    ctx: &VarMap,
    in_role: &dyn Fn(&RoleVars) -> VarMap,
    // The enclosing blocks' vars, which a role's context is rebuilt under.
    block_vars: &VarMap,
    host: &str,
    runtime: &HashSet<String>,
    problems: &mut Problems,
) {
    for task in tasks {
        let mut block_vars = block_vars.clone();
        crate::vars::merge(&mut block_vars, &task.vars);
        let ctx = match &task.own_role {
            Some(role) => {
                let mut ctx = in_role(role);
                crate::vars::merge(&mut ctx, &block_vars);
                ctx
            }
            None => {
                let mut ctx = ctx.clone();
                crate::vars::merge(&mut ctx, &task.vars);
                ctx
            }
        };
        match &task.kind {
            TaskKind::Block {
                block,
                rescue,
                always,
            } => {
                for list in [block, rescue, always] {
                    check_tasks(
                        playbook,
                        templates,
                        list,
                        &ctx,
                        in_role,
                        &block_vars,
                        host,
                        runtime,
                        problems,
                    );
                }
            }
            TaskKind::Module {
                module,
                args,
                args_span,
            } => {
                let value = as_value(ctx);
                let deferred = |error: &TemplateError| {
                    error
                        .undefined_name()
                        .map(root)
                        .is_some_and(|n| runtime.contains(n))
                        || task.loop_spec.is_some()
                };
                let located = |error| Error::Template {
                    error,
                    span: task.span.clone(),
                    task: task.display_name(),
                    host: host.to_owned(),
                };
                match templates.render_value(args, &value, &task.span.to_string()) {
                    Ok(rendered) => {
                        let files = check_files(playbook, templates, module, &rendered, args_span);
                        let files_ok = files.is_ok();
                        if let Err(e) = files {
                            problems.push(e);
                        }
                        // A template file must render for every host, too.
                        if files_ok
                            && *module == "template"
                            && let Some(src) = rendered.get("src").and_then(Value::as_str)
                            && let Err(error) = templates.render_file(
                                src,
                                &crate::tasks::template::template_vars(
                                    templates,
                                    &value,
                                    src,
                                    rendered.get("dest").and_then(Value::as_str).unwrap_or(""),
                                ),
                            )
                            && !deferred(&error)
                        {
                            problems.push(located(error));
                        }
                    }
                    Err(error) if !deferred(&error) => problems.push(located(error)),
                    Err(_) => {}
                }
            }
        }
    }
}

/// `src` files of copy and template must exist; template files must render.
fn check_files(
    playbook: &Playbook,
    templates: &Templates,
    module: &str,
    args: &Value,
    span: &crate::source::SourceSpan,
) -> Result<(), Error> {
    let Some(src) = args.get("src").and_then(Value::as_str) else {
        return Ok(());
    };
    let missing = match module {
        "template" => templates.resolve(src).is_none(),
        "copy" => {
            !playbook.base_dir.join(src).exists()
                && !playbook.base_dir.join("files").join(src).exists()
        }
        _ => false,
    };
    if missing {
        return Err(Error::MissingFile {
            what: if module == "template" {
                "template file"
            } else {
                "src file"
            },
            path: src.to_owned(),
            span: span.clone(),
        });
    }
    Ok(())
}

/// The root of a dotted variable path: `result.rc` -> `result`.
fn root(name: &str) -> &str {
    name.split(['.', '[']).next().unwrap_or(name)
}

/// Names that come into being during the run.
fn runtime_names(playbook: &Playbook) -> HashSet<String> {
    fn walk(tasks: &[Task], base_dir: &std::path::Path, names: &mut HashSet<String>) {
        for t in tasks {
            if let Some(r) = &t.register {
                names.insert(r.clone());
            }
            if let Some(l) = &t.loop_spec {
                // What a loop defines per item (`run/task_runner.rs` loop_vars).
                names.insert(l.loop_var.clone());
                names.extend(l.index_var.iter().cloned());
                for name in ["ansible_loop", "ansible_loop_var", "ansible_index_var"] {
                    names.insert(name.to_owned());
                }
            }
            match &t.kind {
                TaskKind::Module {
                    module: "set_fact",
                    args: Value::Object(m),
                    ..
                } => {
                    names.extend(m.keys().cloned());
                }
                TaskKind::Module {
                    module: "setup", ..
                } => names.extend(crate::facts::names()),
                TaskKind::Module {
                    module: "include_vars",
                    args,
                    ..
                } => names.extend(crate::tasks::included_names(args, base_dir)),
                TaskKind::Block {
                    block,
                    rescue,
                    always,
                } => {
                    for list in [block, rescue, always] {
                        walk(list, base_dir, names);
                    }
                }
                _ => {}
            }
        }
    }
    let mut names: HashSet<String> = [
        "release",
        "distribution",
        "hostvars",
        "ansible_play_hosts",
        "ansible_diff_mode",
        // Set when a task fails (`task_runner::record_failure`), read in `rescue`.
        "ansible_failed_task",
        "ansible_failed_result",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for play in &playbook.plays {
        // Gathered facts exist once the play's first task has run.
        if play.gather.is_some() {
            names.extend(crate::facts::names());
        }
        walk(&play.pre_tasks, &playbook.base_dir, &mut names);
        walk(&play.tasks, &playbook.base_dir, &mut names);
        walk(&play.post_tasks, &playbook.base_dir, &mut names);
        walk(&play.handlers, &playbook.base_dir, &mut names);
    }
    names
}

/// The variables every host of `play` shares, as checked before the run.
pub fn play_scope(
    playbook: &Playbook,
    play: &crate::playbook::Play,
    options: &RunOptions,
) -> Result<PlayScope, Error> {
    let mut vars_files = VarMap::new();
    for (file, span) in &play.vars_files {
        let path = playbook.base_dir.join(file);
        if !file.contains("{{") && !path.exists() {
            return Err(Error::MissingFile {
                what: "vars file",
                path: path.display().to_string(),
                span: span.clone(),
            });
        }
        crate::vars::merge(&mut vars_files, &crate::vars_file::load(&path)?);
    }
    Ok(PlayScope {
        role_defaults: play.role_defaults.clone(),
        play_vars: play.vars.clone(),
        vars_files,
        role_vars: play.role_vars.clone(),
        extra_vars: options.extra_vars.clone(),
        magic: VarMap::new(),
    })
}

/// What a proxy host's files are rendered with (the pre-flight check,
/// `convoy render` and a run agree on it): [`host_context`], `hostvars`
/// (every inventory host's variables, so a template can reach any host as
/// in Ansible) and `ansible_play_name`, which names the host's manifest.
pub fn proxy_host_context(
    scope: &PlayScope,
    inventory: &Inventory,
    playbook: &Playbook,
    options: &RunOptions,
    host: &str,
    play_name: &str,
) -> VarMap {
    let mut ctx = host_context(scope, inventory, playbook, options, host);
    let hostvars: serde_json::Map<String, Value> = inventory
        .hosts()
        .map(|h| (h.name.clone(), Value::Object(inventory.host_vars(&h.name))))
        .collect();
    ctx.insert("hostvars".into(), Value::Object(hostvars));
    ctx.insert("ansible_play_name".into(), play_name.into());
    ctx
}

/// Shares `groups` with every template rendered before the run, rather
/// than putting it in each host's variables, which made the checks
/// quadratic in the fleet's size. (`hostvars` is not shared here: before
/// the run it would lack the facts tasks set, and a template reading one
/// would be refused; such templates are checked when they run.)
pub fn share_inventory(templates: &Templates, inventory: &Inventory) {
    templates.share(serde_json::json!({ "groups": inventory.groups() }));
}

/// One host's variables before the run (no facts yet).
pub fn host_context(
    scope: &PlayScope,
    inventory: &Inventory,
    playbook: &Playbook,
    options: &RunOptions,
    host: &str,
) -> VarMap {
    host_context_in_role(scope, inventory, playbook, options, host, None)
}

/// The same in the tasks of `role`.
fn host_context_in_role(
    scope: &PlayScope,
    inventory: &Inventory,
    playbook: &Playbook,
    options: &RunOptions,
    host: &str,
    role: Option<&RoleVars>,
) -> VarMap {
    let state = HostState::new(host.to_owned(), inventory.host_vars(host));
    let mut ctx = scope.context_in_role(&state, &VarMap::new(), role);
    ctx.insert("ansible_check_mode".into(), options.check.into());
    ctx.insert(
        "playbook_dir".into(),
        playbook.base_dir.display().to_string().into(),
    );
    ctx
}
