//! `convoy status`: which release runs where, for every distribution the
//! given playbooks name, in one round trip per host (all of a host's roots
//! go to one script, so a fleet-wide look stays fast).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::shared::{Distributions, HostOpts, ReleaseTarget, control_dir};
use crate::distribution::remote::{self, HostStatus};
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::report::OutputFormat;
use crate::run::{Forks, Mode, Phase};
use crate::transport::Become;
use crate::vars::{Value, VarMap};

#[derive(Args)]
pub struct Opts {
    /// The playbooks whose distributions are shown; a directory stands for
    /// every `*.yml` in it that has a play with a `distribution`.
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    #[command(flatten)]
    pub hosts: HostOpts,
}

/// One host's answer for one distribution.
struct Row {
    host: String,
    status: Result<HostStatus, String>,
    /// Scripts run on the host for the whole command (all distributions).
    round_trips: u64,
}

/// One connection's work: a host, and every root it has under one
/// escalation (a host whose plays escalate differently is visited once per
/// escalation, as one script cannot change user half way).
struct Visit {
    host: String,
    vars: VarMap,
    sudo: Option<Become>,
    /// (distribution index, root), in the order the answers come back.
    roots: Vec<(usize, String)>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let mut loaded = Vec::new();
    for path in playbook_paths(&opts.playbooks)? {
        loaded.push(
            opts.hosts
                .load_distributions(&path, Mode::Deploy { phase: Phase::All })?,
        );
    }
    let (names, visits) = plan(&loaded)?;
    let options = &loaded[0].options;
    let control_dir = control_dir()?;
    let answers = Forks::new(options.forks)
        .each(&visits, |visit| {
            let control_dir = control_dir.path();
            async move {
                match crate::run::connect::open(&visit.host, &visit.vars, options, control_dir)
                    .await
                {
                    Ok(conn) => {
                        let roots: Vec<String> =
                            visit.roots.iter().map(|(_, r)| r.clone()).collect();
                        let answer = remote::status_of_roots(&conn, &roots, visit.sudo.as_ref())
                            .await
                            .map_err(|e| e.to_string());
                        let trips = conn.round_trips();
                        conn.close().await;
                        (answer, trips)
                    }
                    Err(e) => (Err(e.to_string()), 0),
                }
            }
        })
        .await;
    let mut trips: BTreeMap<&str, u64> = BTreeMap::new();
    for (visit, (_, n)) in visits.iter().zip(&answers) {
        *trips.entry(visit.host.as_str()).or_default() += n;
    }
    let mut per_name: Vec<Vec<Row>> = names.iter().map(|_| Vec::new()).collect();
    for (visit, (answer, _)) in visits.iter().zip(answers) {
        for (i, (dist, _)) in visit.roots.iter().enumerate() {
            per_name[*dist].push(Row {
                host: visit.host.clone(),
                status: match &answer {
                    Ok(all) => Ok(all[i].clone()),
                    Err(e) => Err(e.clone()),
                },
                round_trips: trips[visit.host.as_str()],
            });
        }
    }
    let mut code = EXIT_OK;
    let mut json_out = serde_json::Map::new();
    for (name, rows) in names.into_iter().zip(per_name) {
        if rows.iter().any(|r| r.status.is_err()) {
            code = EXIT_UNREACHABLE;
        }
        let majority = majority(&rows);
        match opts.hosts.output {
            OutputFormat::Json => {
                json_out.insert(name.clone(), to_json(&rows, majority.as_deref()));
            }
            OutputFormat::Text => print_table(&name, &rows, majority.as_deref()),
        }
    }
    if opts.hosts.output == OutputFormat::Json {
        // One distribution prints its object directly; several are keyed by name.
        let value = if json_out.len() == 1 {
            json_out.into_iter().next().expect("one").1
        } else {
            Value::Object(json_out)
        };
        println!("{value}");
    } else {
        println!("{}", round_trips_line(&trips));
    }
    Ok(code)
}

/// The closing line of the text output: status must stay one round trip
/// per host however many distributions a host has, and saying so lets an
/// operator (and the fleet test) see that it did.
fn round_trips_line(trips: &BTreeMap<&str, u64>) -> String {
    let (least, most) = (
        trips.values().min().copied().unwrap_or(0),
        trips.values().max().copied().unwrap_or(0),
    );
    let each = if least == most && most == 1 {
        "1 round trip each".to_owned()
    } else if least == most {
        format!("{most} round trips each")
    } else {
        format!("{least} to {most} round trips each")
    };
    format!("asked {} host(s): {each}", trips.len())
}

/// The playbooks to read: files as given, a directory's `*.yml` (sorted,
/// those without a distribution left out, since a directory of playbooks
/// holds other kinds too).
fn playbook_paths(given: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut paths = Vec::new();
    for path in given {
        if !path.is_dir() {
            paths.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        found.sort();
        let before = paths.len();
        for file in found {
            if has_distribution(&file)? {
                paths.push(file);
            }
        }
        if paths.len() == before {
            return Err(Error::Usage(format!(
                "{}: no *.yml in it has a play with a `distribution`",
                path.display()
            )));
        }
    }
    Ok(paths)
}

fn has_distribution(path: &Path) -> Result<bool, Error> {
    let playbook = crate::playbook::Playbook::load(path)?;
    Ok(playbook.plays.iter().any(|p| p.distribution.is_some()))
}

/// The distributions by name (a name several plays or playbooks share is
/// one distribution; a host's first root for it counts) and the visits
/// that read them all. Every root is rendered before any connection.
fn plan(loaded: &[Distributions]) -> Result<(Vec<String>, Vec<Visit>), Error> {
    let mut names: Vec<String> = Vec::new();
    let mut visits: Vec<Visit> = Vec::new();
    for distributions in loaded {
        for (name, targets) in distributions.targets()? {
            let dist = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            for ReleaseTarget {
                host,
                vars,
                root,
                sudo,
            } in targets
            {
                let seen = visits
                    .iter()
                    .any(|v| v.host == host && v.roots.iter().any(|(d, _)| *d == dist));
                if seen {
                    continue;
                }
                match visits.iter_mut().find(|v| v.host == host && v.sudo == sudo) {
                    Some(v) => v.roots.push((dist, root)),
                    None => visits.push(Visit {
                        host,
                        vars,
                        sudo,
                        roots: vec![(dist, root)],
                    }),
                }
            }
        }
    }
    Ok((names, visits))
}

/// The version most hosts run (ties: the newest name sorts last and wins).
fn majority(rows: &[Row]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        if let Ok(Some(current)) = row.status.as_ref().map(|s| s.current.as_deref()) {
            *counts.entry(current).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(v, _)| v.to_owned())
}

fn differs(status: &HostStatus, majority: Option<&str>) -> bool {
    status.current.as_deref() != majority
}

fn deployed(status: &HostStatus) -> (String, String) {
    status
        .releases
        .iter()
        .find(|r| Some(&r.version) == status.current.as_ref())
        .map(|r| (r.deployed_at.clone(), r.deployed_by.clone()))
        .unwrap_or_default()
}

fn to_json(rows: &[Row], majority: Option<&str>) -> Value {
    let mut hosts = serde_json::Map::new();
    for row in rows {
        let value = match &row.status {
            Ok(s) => {
                let (at, by) = deployed(s);
                json!({
                    "current": s.current,
                    "previous": s.previous,
                    "releases": s.releases.iter().map(|r| r.version.clone()).collect::<Vec<_>>(),
                    "deployed_at": at,
                    "deployed_by": by,
                    "differs": differs(s, majority),
                    "lock": s.lock,
                    "last_run": s.last_run,
                    "outcome": s.outcome(),
                    "round_trips": row.round_trips,
                })
            }
            Err(e) => json!({"unreachable": e, "differs": true, "round_trips": row.round_trips}),
        };
        hosts.insert(row.host.clone(), value);
    }
    json!({"majority": majority, "hosts": hosts})
}

fn print_table(name: &str, rows: &[Row], majority: Option<&str>) {
    let mut table = vec![[
        "HOST".to_owned(),
        "CURRENT".into(),
        "PREVIOUS".into(),
        "RELEASES".into(),
        "DEPLOYED".into(),
        "BY".into(),
        "LAST RUN".into(),
        "LOCK".into(),
    ]];
    for row in rows {
        match &row.status {
            Ok(s) => {
                let (at, by) = deployed(s);
                let mark = if differs(s, majority) { " *" } else { "" };
                table.push([
                    format!("{}{mark}", row.host),
                    s.current.clone().unwrap_or_else(|| "-".into()),
                    s.previous.clone().unwrap_or_else(|| "-".into()),
                    s.releases
                        .iter()
                        .map(|r| r.version.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    if at.is_empty() { "-".into() } else { at },
                    if by.is_empty() { "-".into() } else { by },
                    s.outcome().unwrap_or("-").to_owned(),
                    s.lock.as_deref().map_or_else(|| "-".into(), lock_cell),
                ]);
            }
            Err(e) => table.push([
                format!("{} *", row.host),
                format!("unreachable: {e}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    println!("{name}");
    for r in &table {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("  {}", line.join("  ").trim_end());
    }
    let on = rows
        .iter()
        .filter(|r| r.status.as_ref().is_ok_and(|s| !differs(s, majority)))
        .count();
    println!(
        "  majority: {} ({on} of {} hosts); * runs something else",
        majority.unwrap_or("none"),
        rows.len()
    );
}

/// A holder line, shortened to who holds it and since when (the full line
/// is in `--output json`).
fn lock_cell(holder: &str) -> String {
    let by = holder.split_whitespace().next().unwrap_or("?");
    let since = holder
        .split_whitespace()
        .find_map(|w| w.strip_prefix("since="))
        .unwrap_or("?");
    format!("{by} since {since}")
}
