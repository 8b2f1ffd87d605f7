//! `convoy restart|stop|start PATTERN PROGRAM`: a supervisor action in
//! rollout order (canary, batches, pause, health gate, failure budget).
//!
//! Before anything is changed every host is connected to and asked whether
//! it has the program, and every health check is rendered: a typo in the
//! program name or in `--health-http` touches nothing.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::shared::{HostOpts, pattern_hosts};
use crate::error::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::playbook::{RolloutSpec, Size};
use crate::report::OutputFormat;
use crate::rollout::{HealthGate, HealthTarget, RolloutPlan};
use crate::run::{Interrupt, Mode, Phase, TagFilter};
use crate::supervision::{
    Action, ProxyDrain, RollingAction, RollingEvent, RollingOutcome, Supervised,
};
use crate::template::Templates;
use crate::vars::Value;

#[derive(Args)]
pub struct Opts {
    /// Host pattern (group, host, glob, a:b, a:&b, a:!b).
    pub pattern: String,
    /// The supervisord program (or systemd unit).
    pub program: String,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Act as root, through sudo.
    #[arg(short = 'b', long = "become")]
    pub sudo: bool,
    /// Hosts per batch: a count or a share (25%).
    #[arg(long, default_value = "1", value_name = "N|N%")]
    pub batch: Size,
    /// A first batch of this many hosts alone.
    #[arg(long, value_name = "N|N%")]
    pub canary: Option<Size>,
    /// Failed hosts tolerated over the whole run before no new batch starts.
    #[arg(long, default_value = "0", value_name = "N|N%")]
    pub max_fail: Size,
    /// Wait this long between batches, e.g. 10s.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub pause: Duration,
    /// Health gate: this URL (a template rendered with each host's vars) must answer --health-expect.
    #[arg(long, value_name = "URL")]
    pub health_http: Option<String>,
    /// Health gate: this command (a template) must exit 0 on the host.
    #[arg(long, value_name = "COMMAND", conflicts_with = "health_http")]
    pub health_cmd: Option<String>,
    /// The HTTP status --health-http expects.
    #[arg(long, default_value_t = 200, value_name = "STATUS")]
    pub health_expect: u16,
    /// Restart (or start) with no health gate: a host counts as done as
    /// soon as its supervisor says so. Without a gate or this flag,
    /// `restart` and `start` refuse to run.
    #[arg(long, conflicts_with_all = ["health_http", "health_cmd"])]
    pub no_health: bool,
    /// Drain from the proxy of this playbook's first play with a `proxy:`
    /// section: each batch leaves its upstreams before the action and
    /// comes back after its health gate.
    #[arg(long, value_name = "PLAYBOOK")]
    pub proxy_from: Option<std::path::PathBuf>,
    /// How long a host may take to become healthy.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub health_timeout: Duration,
}

pub async fn run(opts: Opts, action: Action) -> Result<i32, Error> {
    let gated = opts.health_http.is_some() || opts.health_cmd.is_some();
    if action.is_gated() && !gated && !opts.no_health {
        // A rolling restart without a gate only paces the damage: a
        // program that no longer comes up would be restarted host after
        // host. Going without one must be asked for.
        return Err(Error::Usage(format!(
            "{verb} {program}: no health gate: give --health-http URL or --health-cmd COMMAND \
             (or --no-health to {verb} without one); nothing was {done}",
            verb = action.verb(),
            program = opts.program,
            done = action.done()
        )));
    }
    let inventory = opts.hosts.inventory.load()?;
    let names = pattern_hosts(&inventory, &opts.pattern, opts.hosts.limit.as_deref())?;
    let options = opts.hosts.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        Path::new("<command line>"),
    )?;
    // Rendered for every host before the first connection.
    let mut targets = HashMap::new();
    if action.is_gated() && gated {
        let templates = Templates::new(Path::new("."));
        crate::run::preflight::share_inventory(&templates, &inventory);
        for name in &names {
            let mut vars = inventory.host_vars(name);
            vars.extend(options.extra_vars.clone());
            let vars = Value::Object(vars);
            let render = |flag: &str, s: &str| {
                templates
                    .render_str_deep(s, &vars, flag)
                    .map_err(|e| Error::Usage(format!("{flag} for host {name}: {e}")))
            };
            let target = match (&opts.health_http, &opts.health_cmd) {
                (Some(url), _) => HealthTarget::Http {
                    url: render("--health-http", url)?,
                    expect: opts.health_expect,
                    body: None,
                },
                (None, Some(cmd)) => HealthTarget::Command {
                    command: render("--health-cmd", cmd)?,
                },
                (None, None) => unreachable!("checked above"),
            };
            targets.insert(name.clone(), target);
        }
    }
    // The proxy's files are rendered for every proxy host before the
    // first connection, app hosts' included.
    let control_dir = super::control_dir()?;
    let mut proxy = match &opts.proxy_from {
        Some(path) => Some(ProxyDrain::open(path, &inventory, &options, control_dir.path()).await?),
        None => None,
    };
    let fleet = Supervised::connect(&inventory, names, &options, opts.sudo).await?;
    let code = act(&opts, action, &fleet, proxy.as_mut(), targets).await;
    fleet.close().await;
    if let Some(proxy) = proxy {
        proxy.close().await;
    }
    code
}

async fn act(
    opts: &Opts,
    action: Action,
    fleet: &Supervised,
    proxy: Option<&mut ProxyDrain>,
    targets: HashMap<String, HealthTarget>,
) -> Result<i32, Error> {
    if !fleet.unreachable.is_empty() {
        for (host, e) in &fleet.unreachable {
            eprintln!("{host}: unreachable: {e}");
        }
        eprintln!(
            "error: not every host is reachable; nothing was {}",
            action.done()
        );
        return Ok(EXIT_UNREACHABLE);
    }
    let answers = fleet.programs().await;
    let (mut with, mut without, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (host, answer) in fleet.hosts.iter().zip(answers) {
        match answer {
            Ok(p) if p.program(&opts.program).is_some() => with.push(host.name.clone()),
            Ok(_) => without.push(host.name.clone()),
            Err(e) => failed.push((host.name.clone(), e)),
        }
    }
    if !failed.is_empty() {
        for (host, e) in &failed {
            eprintln!("{host}: cannot ask its supervisor: {e}");
        }
        eprintln!(
            "error: not every host could be asked; nothing was {}",
            action.done()
        );
        return Ok(EXIT_FAILED);
    }
    if with.is_empty() {
        let asked: Vec<&str> = without.iter().map(String::as_str).collect();
        return Err(Error::Usage(super::ps::no_such_program(
            &opts.program,
            &opts.pattern,
            &asked,
        )));
    }
    if !without.is_empty() {
        println!(
            "left out (no program \"{}\"): {}",
            opts.program,
            without.join(", ")
        );
    }
    let spec = RolloutSpec {
        canary: opts.canary,
        batch: vec![opts.batch],
        max_fail: opts.max_fail,
        ..RolloutSpec::default()
    };
    let plan = RolloutPlan::build(&spec, &with, &|_| Vec::new());
    let json = opts.hosts.output == OutputFormat::Json;
    if !json {
        println!(
            "{} {} on {} in {}",
            action.verb(),
            opts.program,
            count(with.len(), "host", "hosts"),
            count(plan.batches.len(), "batch", "batches")
        );
    }
    if opts.hosts.check {
        for (i, batch) in plan.batches.iter().enumerate() {
            println!(
                "batch {}/{}: {}",
                i + 1,
                plan.batches.len(),
                batch.hosts.join(", ")
            );
        }
        println!("check mode: nothing was {}", action.done());
        return Ok(EXIT_OK);
    }
    let health = (!targets.is_empty()).then(|| {
        (
            HealthGate {
                timeout: opts.health_timeout,
                interval: Duration::from_millis(250),
                soak: Duration::ZERO,
            },
            targets,
        )
    });
    let rolling = RollingAction {
        action,
        program: &opts.program,
        plan,
        health,
        pause: opts.pause,
        max_fail: opts.max_fail,
    };
    let interrupt = Interrupt::install();
    let outcome = rolling
        .run(fleet, proxy, &interrupt, &mut |event| report(json, event))
        .await;
    summarize(json, action, &opts.program, &outcome);
    Ok(if outcome.interrupted {
        EXIT_INTERRUPTED
    } else if outcome.failed.is_empty() && outcome.proxy_failed.is_none() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `1 batch`, `3 batches`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn report(json: bool, event: RollingEvent) {
    match (json, event) {
        (
            false,
            RollingEvent::BatchStart {
                index,
                total,
                hosts,
            },
        ) => {
            println!("batch {index}/{total}: {}", hosts.join(", "));
        }
        (false, RollingEvent::Host { host, result }) => match result {
            Ok(said) => println!("  {host}: ok: {}", said.replace('\n', ", ")),
            Err(e) => println!("  {host}: FAILED: {}", e.replace('\n', ", ")),
        },
        (
            true,
            RollingEvent::BatchStart {
                index,
                total,
                hosts,
            },
        ) => println!(
            "{}",
            json!({"event": "batch", "index": index, "total": total, "hosts": hosts})
        ),
        (false, RollingEvent::Proxy { what, result }) => match result {
            Ok(()) => println!("  proxy: {what}"),
            Err(e) => println!("  proxy: FAILED ({what}): {}", e.replace('\n', ", ")),
        },
        (true, RollingEvent::Proxy { what, result }) => println!(
            "{}",
            match result {
                Ok(()) => json!({"event": "proxy", "what": what, "ok": true, "message": null}),
                Err(e) => json!({"event": "proxy", "what": what, "ok": false, "message": e}),
            }
        ),
        (true, RollingEvent::Host { host, result }) => println!(
            "{}",
            match result {
                Ok(said) => json!({"event": "host", "host": host, "ok": true, "message": said}),
                Err(e) => json!({"event": "host", "host": host, "ok": false, "message": e}),
            }
        ),
    }
}

/// Says where the fleet was left: who was acted on, who failed, who was not touched.
fn summarize(json: bool, action: Action, program: &str, outcome: &RollingOutcome) {
    if json {
        println!(
            "{}",
            json!({"event": "end", "action": action.verb(), "program": program, "outcome": outcome})
        );
        return;
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let failed: Vec<String> = outcome.failed.iter().map(|(h, _)| h.clone()).collect();
    if let Some(e) = &outcome.proxy_failed {
        println!(
            "proxy update failed, nothing more was {}: {}; {}: {}; not touched: {}",
            action.done(),
            e.lines().next().unwrap_or_default(),
            action.done(),
            list(&outcome.acted),
            list(&outcome.untouched)
        );
        return;
    }
    match outcome.stopped_after_batch {
        Some(batch) => {
            let why = if outcome.interrupted {
                "interrupted".to_owned()
            } else {
                format!("failed: {}", list(&failed))
            };
            println!(
                "stopped after batch {batch} ({why}); {}: {}; not touched: {}",
                action.done(),
                list(&outcome.acted),
                list(&outcome.untouched)
            );
        }
        None if failed.is_empty() => {
            println!("{} {program} on {}", action.done(), list(&outcome.acted));
        }
        None => println!(
            "{} {program} on {}; failed: {}",
            action.done(),
            list(&outcome.acted),
            list(&failed)
        ),
    }
}
