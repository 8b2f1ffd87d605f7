//! `convoy status`: which release runs where, one round trip per host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::shared::HostOpts;
use crate::distribution::remote::{self, HostStatus};
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::report::OutputFormat;
use crate::run::{Mode, Phase};
use crate::vars::Value;

#[derive(Args)]
pub struct Opts {
    /// The playbook whose distributions are shown.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
}

/// One host's answer.
struct Row {
    host: String,
    status: Result<HostStatus, String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let distributions = opts
        .hosts
        .load_distributions(&opts.playbook, Mode::Deploy { phase: Phase::All })?;
    let answers = distributions
        .on_each_host(|conn, root, sudo| async move {
            let status = remote::status(&conn, &root, sudo.as_ref()).await;
            (conn, status.map_err(|e| e.to_string()))
        })
        .await?;
    let mut code = EXIT_OK;
    let mut json_out = serde_json::Map::new();
    for (name, answers) in answers {
        let rows: Vec<Row> = answers
            .into_iter()
            .map(|a| Row {
                host: a.host,
                status: a.answer,
            })
            .collect();
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
    }
    Ok(code)
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
                })
            }
            Err(e) => json!({"unreachable": e, "differs": true}),
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
                ]);
            }
            Err(e) => table.push([
                format!("{} *", row.host),
                format!("unreachable: {e}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
    }
    let widths: Vec<usize> = (0..6)
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
