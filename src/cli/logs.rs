//! `convoy logs PATTERN PROGRAM [-f] [-n N]`: the program's last output
//! lines from every host, each line prefixed with its host; with `-f`, then
//! the new lines of every host, merged as they arrive, until Ctrl-C.

use std::path::Path;

use clap::Args;

use super::shared::{HostOpts, InventoryOpts, pattern_hosts};
use crate::error::{EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE, Error};
use std::time::Duration;

use crate::run::{Forks, Interrupt, Mode, Phase, TagFilter};
use crate::supervision::{FollowError, LogsSince, Supervised};

#[derive(Args)]
pub struct Opts {
    /// Host pattern (group, host, glob, a:b, a:&b, a:!b).
    pub pattern: String,
    /// The supervisord program (or systemd unit).
    pub program: String,
    /// Lines per host.
    #[arg(short = 'n', long = "lines", default_value_t = 20, value_name = "N")]
    pub lines: usize,
    /// Only lines since then: a span back from now (10m) or a UTC time
    /// (2026-12-01T17:00:00Z). systemd's journal only: supervisord's
    /// stdout logs carry no timestamps.
    #[arg(long, value_name = "SPAN|TIME", value_parser = LogsSince::parse)]
    pub since: Option<LogsSince>,
    /// Then follow: print new lines as they are written, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    #[command(flatten)]
    pub inventory: InventoryOpts,
    /// Further limit the hosts to this pattern.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Extra variables: key=value (repeatable, several per flag), YAML/JSON, or @file.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Hosts connected to at once (`-f` is --follow here, as for tail).
    #[arg(long, default_value_t = 10, value_name = "FORKS")]
    pub forks: usize,
    /// Use this ssh_config file instead of ~/.ssh/config (like `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<std::path::PathBuf>,
    /// Record unknown host keys instead of refusing them (changed keys are always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// SSH connection timeout, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Read the logs as root, through sudo.
    #[arg(short = 'b', long = "become")]
    pub sudo: bool,
    #[command(flatten)]
    pub become_pass: super::become_password::BecomePassOpts,
}

impl Opts {
    /// The shared host flags, with what `logs` has no use for (check,
    /// diff, output, confirmations) at their defaults.
    fn host_opts(&self) -> HostOpts {
        HostOpts {
            inventory: self.inventory.clone(),
            limit: self.limit.clone(),
            extra_vars: self.extra_vars.clone(),
            check: false,
            diff: false,
            forks: Some(self.forks),
            remote_user: None,
            output: crate::report::OutputFormat::Text,
            verbose: 0,
            ssh_config: self.ssh_config.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            yes: false,
            force_unlock: false,
            timeout: self.timeout,
            // Following keeps every host's master busy at once: a bound
            // below the number of hosts would leave some never followed.
            max_connections: self.follow.then_some(usize::MAX),
            become_pass: self.become_pass.clone(),
        }
    }
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let hosts = opts.host_opts();
    let inventory = hosts.inventory.load()?;
    let names = pattern_hosts(&inventory, &opts.pattern, hosts.limit.as_deref())?;
    let options = hosts.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        Path::new("<command line>"),
    )?;
    let fleet = Supervised::connect(&inventory, names, &options, opts.sudo).await?;
    let width = fleet.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
    let mut code = EXIT_OK;
    for (host, e) in &fleet.unreachable {
        eprintln!("{host}: unreachable: {e}");
        code = EXIT_UNREACHABLE;
    }
    if opts.follow && fleet.hosts.is_empty() {
        // Every host was unreachable (each said above): nothing to follow.
        fleet.close().await;
        return Ok(code);
    }
    if opts.follow {
        let ended = follow(&fleet, &opts, width).await;
        let refused_everywhere =
            !fleet.hosts.is_empty() && ended.hosts.iter().all(|e| matches!(e, HostEnd::Refused(_)));
        fleet.close().await;
        if refused_everywhere {
            return Err(no_host_could(&opts));
        }
        // Each host that ended early was said when it did; what is left is
        // how the whole command ended.
        return Ok(if ended.interrupted {
            EXIT_INTERRUPTED
        } else {
            EXIT_UNREACHABLE
        });
    }
    let logs = fleet
        .forks()
        .each(&fleet.hosts, |host| {
            host.logs(&opts.program, opts.lines, opts.since.as_ref())
        })
        .await;
    for (host, log) in fleet.hosts.iter().zip(&logs) {
        if let Ok(text) = log {
            for line in text.lines() {
                println!("{:<width$} | {line}", host.name);
            }
        }
    }
    let mut errors = Vec::new();
    for (host, log) in fleet.hosts.iter().zip(&logs) {
        if let Err(e) = log {
            errors.push((host.name.clone(), e.clone()));
        }
    }
    let all_failed = !fleet.hosts.is_empty() && errors.len() == fleet.hosts.len();
    for (host, e) in &errors {
        eprintln!("{host}: {e}");
    }
    fleet.close().await;
    if all_failed {
        return Err(no_host_could(&opts));
    }
    if !errors.is_empty() {
        code = EXIT_UNREACHABLE;
    }
    Ok(code)
}

fn no_host_could(opts: &Opts) -> Error {
    Error::Usage(format!(
        "no host of \"{}\" could show the logs of \"{}\"",
        opts.pattern, opts.program
    ))
}

/// How one host's following ended.
enum HostEnd {
    /// Ctrl-C closed its script.
    Stopped,
    /// The host went away (its connection was lost) while followed.
    Lost(String),
    /// The host answered that it cannot show these logs.
    Refused(String),
}

/// How following ended: each host's end, and whether Ctrl-C ended it (or
/// every host ended by itself).
struct FollowEnd {
    hosts: Vec<HostEnd>,
    interrupted: bool,
}

/// Follows every host at once, printing lines as they arrive, until Ctrl-C
/// (SIGINT or SIGTERM), which closes every host's script. A host that goes
/// away is said at once, on one line naming it, and the others go on being
/// followed: an operator watching 40 hosts must see which one is gone, and
/// must not lose the other 39.
async fn follow(fleet: &Supervised, opts: &Opts, width: usize) -> FollowEnd {
    let interrupt = Interrupt::install();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let printer = async move {
        while let Some((host, line)) = rx.recv().await {
            println!("{host:<width$} | {line}");
        }
    };
    let total = fleet.hosts.len();
    let left = std::sync::atomic::AtomicUsize::new(total);
    // Following never ends by itself: every host needs its own script at
    // once, so the bound is the number of hosts (already connected, within
    // --forks, by `Supervised::connect`).
    let followers: Vec<_> = fleet
        .hosts
        .iter()
        .map(|host| {
            let tx = tx.clone();
            let interrupt = interrupt.clone();
            let left = &left;
            async move {
                let stop = {
                    let interrupt = interrupt.clone();
                    async move {
                        while !interrupt.is_set() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                };
                let name = host.name.clone();
                let mut line = move |l: String| {
                    let _ = tx.send((name.clone(), l));
                };
                let end = match host
                    .follow_logs(
                        &opts.program,
                        opts.lines,
                        opts.since.as_ref(),
                        &mut line,
                        stop,
                    )
                    .await
                {
                    Ok(()) if interrupt.is_set() => return HostEnd::Stopped,
                    Ok(()) => HostEnd::Lost("its log stream ended".into()),
                    Err(FollowError::Lost(why)) => HostEnd::Lost(why),
                    Err(FollowError::Refused(why)) => HostEnd::Refused(why),
                };
                let others = left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) - 1;
                match &end {
                    HostEnd::Lost(why) => eprintln!(
                        "convoy: {}: lost while following ({why}); still following {others} of {total} host(s)",
                        host.name
                    ),
                    HostEnd::Refused(why) => eprintln!("{}: {why}", host.name),
                    HostEnd::Stopped => {}
                }
                end
            }
        })
        .collect();
    drop(tx);
    let followers = Forks::new(fleet.hosts.len()).all(followers);
    let (hosts, ()) = tokio::join!(followers, printer);
    FollowEnd {
        hosts,
        interrupted: interrupt.is_set(),
    }
}
