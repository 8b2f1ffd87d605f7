//! `convoy job run|resume|status`: one-off work over many targets.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::shared::{HostOpts, InventoryOpts};
use crate::error::Error;
use crate::job::progress::{self, Totals};
use crate::job::runner::{self, EXIT_PENDING, Job, JobOptions};
use crate::job::state::{RunFile, TargetState};
use crate::job::targets::TargetFilter;
use crate::job::tenant_traffic::TenantTraffic;
use crate::playbook::Playbook;
use crate::report::OutputFormat;
use crate::run::{Interrupt, Mode, Phase, TagFilter};

#[derive(Args)]
pub struct Opts {
    #[command(subcommand)]
    command: JobCommand,
}

#[derive(Subcommand)]
enum JobCommand {
    /// Work through the targets of a playbook's job (a play with `job:`).
    Run(RunOpts),
    /// Continue a job run: only targets without a record run (a target recorded on its host never runs again).
    Resume(ResumeOpts),
    /// Each target's state, read from the hosts' records: pending, running, done, failed, skipped, lost.
    Status(StatusOpts),
}

/// The host flags a job takes (none it would ignore: no --diff, no
/// --force-unlock, no --tags). They become the [`HostOpts`] the rest of
/// convoy reads.
#[derive(Args, Clone)]
struct JobFlags {
    #[command(flatten)]
    inventory: InventoryOpts,
    /// Further limit the hosts to this pattern.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    limit: Option<String>,
    /// Extra variables: key=value (repeatable, several per flag), YAML/JSON, or @file. Never recorded.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    extra_vars: Vec<String>,
    /// Hosts connected to and read at once.
    #[arg(short = 'f', long, default_value_t = 10, value_name = "FORKS")]
    forks: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Use this ssh_config file instead of ~/.ssh/config (like `ssh -F`).
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// Record unknown host keys instead of refusing them (changed keys are always refused).
    #[arg(long)]
    accept_new_host_keys: bool,
    /// SSH connection timeout, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    timeout: std::time::Duration,
}

/// What `job run` and `job resume` take beyond [`JobFlags`].
#[derive(Args, Clone)]
struct WorkFlags {
    /// Say how many targets would run; start nothing, create nothing.
    #[arg(short = 'C', long)]
    check: bool,
    /// Continue at `pause: confirm` between groups without asking.
    #[arg(short = 'y', long)]
    yes: bool,
    /// List every target in the summary, not only those that did not end well.
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
}

impl JobFlags {
    fn host_opts(&self, work: Option<&WorkFlags>) -> HostOpts {
        HostOpts {
            inventory: self.inventory.clone(),
            limit: self.limit.clone(),
            extra_vars: self.extra_vars.clone(),
            check: work.is_some_and(|w| w.check),
            diff: false,
            forks: Some(self.forks),
            remote_user: None,
            output: self.output,
            verbose: work.map_or(0, |w| w.verbose),
            ssh_config: self.ssh_config.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            yes: work.is_some_and(|w| w.yes),
            force_unlock: false,
            timeout: self.timeout,
            max_connections: None,
            // Jobs run as the ssh user (become is refused on their plays).
            become_pass: super::become_password::BecomePassOpts::unused(),
        }
    }
}

/// Which targets this invocation runs.
#[derive(Args, Clone)]
struct TargetOpts {
    /// Run only the targets that failed (or were lost) again; nothing pending starts.
    #[arg(long)]
    retry_failed: bool,
    /// Only these targets: comma-separated globs (`*`, `?`), `!GLOB` excludes.
    #[arg(long, value_name = "PATTERN")]
    limit_targets: Option<String>,
}

#[derive(Args)]
struct RunOpts {
    /// The playbook holding the job.
    playbook: PathBuf,
    #[command(flatten)]
    hosts: JobFlags,
    #[command(flatten)]
    work: WorkFlags,
    #[command(flatten)]
    targets: TargetOpts,
}

#[derive(Args)]
struct ResumeOpts {
    /// The run id (printed by `job run`; its file is .convoy/jobs/RUN.json here).
    run: String,
    #[command(flatten)]
    hosts: JobFlags,
    #[command(flatten)]
    work: WorkFlags,
    #[command(flatten)]
    targets: TargetOpts,
}

#[derive(Args)]
struct StatusOpts {
    /// A run id (.convoy/jobs/RUN.json here), or the job's playbook: the
    /// states are read from the hosts either way.
    run: String,
    #[command(flatten)]
    hosts: JobFlags,
    /// Only these targets (globs, as for `job run`).
    #[arg(long, value_name = "PATTERN")]
    limit_targets: Option<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    match opts.command {
        JobCommand::Run(o) => {
            let hosts = o.hosts.host_opts(Some(&o.work));
            let found = Found::new(&o.playbook, &hosts, None, o.targets.limit_targets.clone())?;
            work(found, &hosts, &o.targets, None).await
        }
        JobCommand::Resume(o) => {
            let file = RunFile::read(&cwd()?, &o.run)?;
            let limit_targets = o
                .targets
                .limit_targets
                .clone()
                .or(file.limit_targets.clone());
            let hosts = o.hosts.host_opts(Some(&o.work));
            let found = Found::new(&file.playbook, &hosts, Some(&file), limit_targets)?;
            same_job(&found, &file)?;
            work(found, &hosts, &o.targets, Some(file.run)).await
        }
        JobCommand::Status(o) => status(o).await,
    }
}

/// A run file names its job: a playbook since edited to name another one
/// would resume that other job under this run's id; refused instead.
fn same_job(found: &Found, file: &RunFile) -> Result<(), Error> {
    let play = runner::job_play(&found.playbook, &found.playbook_path)?;
    let name = &play.job.as_ref().expect("a job play").name;
    if *name != file.job {
        return Err(crate::job::JobError::RunFile {
            path: RunFile::path(&cwd()?, &file.run).display().to_string(),
            reason: format!(
                "it is a run of job `{}`, but {} now names job `{name}`; run that one with `convoy job run`",
                file.job,
                found.playbook_path.display()
            ),
        }
        .into());
    }
    Ok(())
}

fn cwd() -> Result<PathBuf, Error> {
    Ok(std::env::current_dir()?)
}

/// The playbook, inventory and options of a job, before any host.
struct Found {
    playbook_path: PathBuf,
    playbook: Playbook,
    inventory: crate::inventory::Inventory,
    inventory_paths: Vec<PathBuf>,
    options: crate::run::RunOptions,
    limit_targets: Option<String>,
}

impl Found {
    /// `file`: a resumed run's file, whose inventory and `--limit` are used
    /// unless given again.
    fn new(
        path: &Path,
        hosts: &HostOpts,
        file: Option<&RunFile>,
        limit_targets: Option<String>,
    ) -> Result<Found, Error> {
        let mut flags = hosts.inventory.clone();
        if flags.inventory.is_empty()
            && let Some(f) = file
        {
            flags.inventory = f.inventory.clone();
        }
        let inventory = flags.load()?;
        let playbook = Playbook::load(path)?;
        let mut options = hosts.run_options(
            TagFilter::default(),
            Mode::Deploy { phase: Phase::All },
            path,
        )?;
        if let Some(f) = file {
            options.run_id = f.run.clone();
            if options.limit.is_none() {
                options.limit = f.limit.clone();
            }
        }
        Ok(Found {
            playbook_path: path.to_owned(),
            playbook,
            inventory,
            inventory_paths: flags
                .inventory
                .iter()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                .collect(),
            options,
            limit_targets,
        })
    }
}

/// `job run` and `job resume`.
async fn work(
    found: Found,
    hosts: &HostOpts,
    targets: &TargetOpts,
    resumed: Option<String>,
) -> Result<i32, Error> {
    let play = runner::job_play(&found.playbook, &found.playbook_path)?;
    let job = Job::prepare(&found.inventory, &found.playbook, play, &found.options)?;
    let control_dir = super::shared::control_dir()?;
    let interrupt = Interrupt::install();
    let reached = runner::reach(&job, control_dir.path(), !hosts.check).await?;
    // The proxy's tenant map, when the play routes tenants: connected and
    // read before any target starts, like the job's own hosts.
    let tenants = match TenantTraffic::open(
        &found.playbook,
        play,
        &found.inventory,
        &found.options,
        control_dir.path(),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            close_all(reached).await;
            return Err(e);
        }
    };
    let mut tenants = match tenants {
        Some(t) => match t.check_targets(
            reached
                .iter()
                .flat_map(|r| r.targets.iter().map(String::as_str)),
        ) {
            Ok(()) => Some(t),
            Err(e) => {
                t.close().await;
                close_all(reached).await;
                return Err(e);
            }
        },
        None => None,
    };
    let opts = JobOptions {
        run_id: found.options.run_id.clone(),
        retry_failed: targets.retry_failed,
        limit_targets: found.limit_targets.as_deref().map(TargetFilter::parse),
        check: hosts.check,
        control_dir: control_dir.path().to_owned(),
    };
    let (reporter, shown) = progress::start(hosts.output, hosts.verbose > 0);
    if !hosts.check {
        // Before any target starts; it only says where the job is (the
        // targets' states are on the hosts), so a resume can find it.
        let file = RunFile {
            format: 1,
            run: opts.run_id.clone(),
            job: job.spec.name.clone(),
            playbook: std::path::absolute(&found.playbook_path)?,
            inventory: found.inventory_paths.clone(),
            limit: found.options.limit.clone(),
            limit_targets: found.limit_targets.clone(),
        };
        let path = file.write(&cwd()?)?;
        reporter.note(format!(
            "job run {}{}: {}",
            opts.run_id,
            if resumed.is_some() { " (resumed)" } else { "" },
            path.display()
        ));
    }
    let code = runner::execute(
        &job,
        &reached,
        &opts,
        &reporter,
        &interrupt,
        tenants.as_mut(),
    )
    .await;
    if let Some(t) = tenants {
        t.close().await;
    }
    close_all(reached).await;
    drop(reporter);
    let _ = shown.await;
    code
}

async fn close_all(reached: Vec<runner::Reached>) {
    for r in reached {
        r.close().await;
    }
}

/// One row of `job status`.
#[derive(serde::Serialize)]
struct Row {
    host: String,
    target: String,
    state: TargetState,
    exit_code: Option<i32>,
    attempts: u32,
    seconds: u64,
    /// The run that recorded it.
    run: Option<String>,
    /// The recorded data version, and the converters run (by the lower
    /// bound of their range), for converter jobs.
    version: Option<String>,
    steps: Vec<String>,
    output: Vec<String>,
}

async fn status(o: StatusOpts) -> Result<i32, Error> {
    let hosts = o.hosts.host_opts(None);
    let as_playbook = Path::new(&o.run);
    let (found, run) = if as_playbook.is_file() {
        (
            Found::new(as_playbook, &hosts, None, o.limit_targets.clone())?,
            None,
        )
    } else {
        let file = RunFile::read(&cwd()?, &o.run)?;
        let limit = o.limit_targets.clone().or(file.limit_targets.clone());
        let found = Found::new(&file.playbook, &hosts, Some(&file), limit)?;
        same_job(&found, &file)?;
        (found, Some(file.run))
    };
    let play = runner::job_play(&found.playbook, &found.playbook_path)?;
    let job = Job::prepare(&found.inventory, &found.playbook, play, &found.options)?;
    let control_dir = super::shared::control_dir()?;
    let reached = runner::reach(&job, control_dir.path(), false).await?;
    let filter = found.limit_targets.as_deref().map(TargetFilter::parse);
    let mut rows = Vec::new();
    for (h, r) in job.hosts.iter().zip(&reached) {
        // The job's targets, then any recorded target no longer listed.
        let mut names = r.targets.clone();
        names.extend(
            r.survey
                .records
                .keys()
                .filter(|k| !r.targets.contains(k))
                .cloned(),
        );
        for t in names {
            if filter.as_ref().is_some_and(|f| !f.matches(&t)) {
                continue;
            }
            let rec = r.survey.records.get(&t);
            rows.push(Row {
                host: h.host.clone(),
                state: r.survey.state(&t),
                exit_code: rec.map(|r| r.exit_code),
                attempts: rec.map_or(0, |r| r.attempts),
                seconds: rec.map_or(0, |r| r.seconds),
                run: rec.map(|r| r.run.clone()),
                version: r.survey.versions.get(&t).cloned(),
                steps: rec.map(|r| r.steps.clone()).unwrap_or_default(),
                output: rec.map(|r| r.tail.clone()).unwrap_or_default(),
                target: t,
            });
        }
    }
    for r in reached {
        r.close().await;
    }
    let mut totals = Totals::default();
    for r in &rows {
        totals.add(r.state);
    }
    match hosts.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "job": job.spec.name,
                "run": run,
                "targets": rows,
                "totals": totals,
            })
        ),
        OutputFormat::Text => {
            let mut table = vec![[
                "HOST".to_owned(),
                "TARGET".to_owned(),
                "STATE".to_owned(),
                "RC".to_owned(),
                "ATTEMPTS".to_owned(),
                "LAST OUTPUT".to_owned(),
            ]];
            for r in &rows {
                table.push([
                    r.host.clone(),
                    r.target.clone(),
                    r.state.name().to_owned(),
                    r.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.attempts.to_string(),
                    r.output.last().cloned().unwrap_or_default(),
                ]);
            }
            print!("{}", progress::table(&table));
            println!("{}", totals.line());
        }
    }
    Ok(if totals.failed + totals.lost > 0 {
        crate::error::EXIT_FAILED
    } else if totals.pending + totals.running > 0 {
        EXIT_PENDING
    } else {
        crate::error::EXIT_OK
    })
}
