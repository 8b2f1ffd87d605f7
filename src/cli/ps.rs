//! `convoy ps PATTERN [PROGRAM]`: what the hosts' supervisors run, as one
//! table of program × host, one round trip per host.

use std::path::Path;

use clap::Args;
use serde_json::json;

use super::shared::{HostOpts, pattern_hosts};
use crate::error::{EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::report::OutputFormat;
use crate::run::{Mode, Phase, TagFilter};
use crate::supervision::{HostPrograms, ProgramStatus, Supervised, human_uptime};

#[derive(Args)]
pub struct Opts {
    /// Host pattern (group, host, glob, a:b, a:&b, a:!b).
    pub pattern: String,
    /// Only this program (supervisord) or unit (systemd).
    pub program: Option<String>,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Ask the supervisor as root, through sudo.
    #[arg(short = 'b', long = "become")]
    pub sudo: bool,
}

/// One cell of the table: a program on a host.
struct Row<'a> {
    host: &'a str,
    supervisor: String,
    program: &'a ProgramStatus,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load()?;
    let names = pattern_hosts(&inventory, &opts.pattern, opts.hosts.limit.as_deref())?;
    let options = opts.hosts.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        Path::new("<command line>"),
    )?;
    let fleet = Supervised::connect(&inventory, names, &options, opts.sudo).await?;
    let code = show(&opts, &fleet).await;
    fleet.close().await;
    code
}

/// Asks every connected host and prints the table (or the JSON document).
async fn show(opts: &Opts, fleet: &Supervised) -> Result<i32, Error> {
    let answers = fleet.programs().await;
    let mut errors: Vec<(String, String)> = fleet.unreachable.clone();
    let mut hosts: Vec<(&str, HostPrograms)> = Vec::new();
    for (host, answer) in fleet.hosts.iter().zip(answers) {
        match answer {
            Ok(programs) => hosts.push((&host.name, programs)),
            Err(e) => errors.push((host.name.clone(), e)),
        }
    }
    let mut rows: Vec<Row> = hosts
        .iter()
        .flat_map(|(host, answer)| {
            answer
                .programs
                .iter()
                .filter(|p| opts.program.as_ref().is_none_or(|want| &p.name == want))
                .map(|program| Row {
                    host,
                    supervisor: answer.supervisor.to_string(),
                    program,
                })
        })
        .collect();
    // Program by program, hosts in inventory order within each (stable sort).
    rows.sort_by(|a, b| a.program.name.cmp(&b.program.name));
    if let Some(program) = &opts.program
        && rows.is_empty()
        && !hosts.is_empty()
    {
        let asked: Vec<&str> = hosts.iter().map(|(h, _)| *h).collect();
        return Err(Error::Usage(no_such_program(
            program,
            &opts.pattern,
            &asked,
        )));
    }
    match opts.hosts.output {
        OutputFormat::Json => print_json(&rows, &errors),
        OutputFormat::Text => print_table(&rows, &errors),
    }
    Ok(if errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_UNREACHABLE
    })
}

/// The message for a program that none of the answering hosts runs.
pub fn no_such_program(program: &str, pattern: &str, asked: &[&str]) -> String {
    format!(
        "no host of \"{pattern}\" has a program \"{program}\" (asked: {}); nothing was changed",
        asked.join(", ")
    )
}

fn print_json(rows: &[Row], errors: &[(String, String)]) {
    let processes: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "program": r.program.name,
                "host": r.host,
                "supervisor": r.supervisor,
                "state": r.program.state,
                "running": r.program.running,
                "pid": r.program.pid,
                "uptime_secs": r.program.uptime_secs,
                "release": r.program.release,
                "cwd": r.program.cwd,
            })
        })
        .collect();
    let errors: serde_json::Map<String, serde_json::Value> =
        errors.iter().map(|(h, e)| (h.clone(), json!(e))).collect();
    println!("{}", json!({"processes": processes, "errors": errors}));
}

fn print_table(rows: &[Row], errors: &[(String, String)]) {
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    let mut table = vec![[
        "PROGRAM".to_owned(),
        "HOST".into(),
        "STATE".into(),
        "PID".into(),
        "UPTIME".into(),
        "RELEASE".into(),
    ]];
    for r in rows {
        table.push([
            r.program.name.clone(),
            r.host.to_owned(),
            r.program.state.clone(),
            dash(r.program.pid.map(|p| p.to_string())),
            dash(r.program.uptime_secs.map(human_uptime)),
            dash(r.program.release.clone()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for r in &table {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    for (host, e) in errors {
        println!("{host}: cannot tell: {e}");
    }
}
