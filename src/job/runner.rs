//! Working through a job: every host's targets, at most `per_host` at once
//! on a host and `total` over all, group by group.
//!
//! Order of a run, so that bad input and foreign state touch nothing:
//! render every host's paths and commands (no host contacted), connect to
//! every host, survey each one's records (a corrupt one, or another job's,
//! stops the run before any target starts), list the targets, write the
//! run file, and only then start targets. What a target did is learned
//! from its host-side record (see [`super::wrapper`]), never assumed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;

use super::JobError;
use super::converters::{self, loose_version};
use super::progress::{JobEvent, JobReporter, TargetEnd, Totals};
use super::spec::{JobSpec, TargetSource, Work};
use super::state::{HostSurvey, TargetState, parse_survey};
use super::targets::{self, TargetFilter};
use super::tenant_traffic::{Known, TenantTraffic};
use super::wrapper::{HostPaths, TargetRun};
use crate::error::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE, Error};
use crate::inventory::Inventory;
use crate::playbook::{Pause, Play, Playbook};
use crate::run::{Forks, Interrupt, RunOptions};
use crate::template::Templates;
use crate::transport::{Connection, Script};
use crate::vars::{Value, VarMap};

/// Targets left pending on purpose (stopped before a group at `pause:
/// confirm` without a terminal or `--yes`): resume to continue.
pub const EXIT_PENDING: i32 = 5;

/// How this invocation works through the job.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub run_id: String,
    /// Run only the failed (and lost) targets again, nothing pending.
    pub retry_failed: bool,
    pub limit_targets: Option<TargetFilter>,
    /// Say what would run; start nothing, create nothing.
    pub check: bool,
    /// The ssh masters' sockets (a task list's engine reconnects there).
    pub control_dir: std::path::PathBuf,
}

/// One host of the job, rendered before any connection.
pub struct HostJob {
    pub host: String,
    vars: VarMap,
    pub paths: HostPaths,
    /// `targets_command`, rendered for this host.
    targets_command: Option<String>,
}

/// The job of a playbook, ready to reach its hosts.
pub struct Job<'a> {
    pub spec: &'a JobSpec,
    pub templates: Arc<Templates>,
    pub hosts: Vec<HostJob>,
    pub options: &'a RunOptions,
    /// What a task list (`tasks:`) runs within: its play's variables.
    pub inventory: &'a Inventory,
    pub playbook: &'a Playbook,
    pub play: &'a Play,
}

/// The one play with `job:` in a playbook.
pub fn job_play<'p>(playbook: &'p Playbook, path: &std::path::Path) -> Result<&'p Play, Error> {
    let mut plays = playbook.plays.iter().filter(|p| p.job.is_some());
    match (plays.next(), plays.next()) {
        (Some(p), None) => Ok(p),
        (None, _) => Err(Error::Usage(format!(
            "{} has no play with a `job:`",
            path.display()
        ))),
        (Some(_), Some(p)) => Err(Error::Located {
            message: "`convoy job` runs one job per playbook; this is a second play with `job:`"
                .into(),
            span: p.job.as_ref().expect("a job").span.clone(),
        }),
    }
}

impl<'a> Job<'a> {
    /// Renders every host's state directory and commands (for every target
    /// known at load), so a template error fails here, before any host.
    pub fn prepare(
        inventory: &'a Inventory,
        playbook: &'a Playbook,
        play: &'a Play,
        options: &'a RunOptions,
    ) -> Result<Job<'a>, Error> {
        let spec = play.job.as_ref().expect("a job play");
        let templates = Templates::new(&playbook.base_dir);
        crate::run::preflight::share_inventory(&templates, inventory);
        let scope = crate::run::preflight::play_scope(playbook, play, options)?;
        let mut hosts = Vec::new();
        for host in crate::cli::play_hosts(inventory, play, options)? {
            let vars =
                crate::run::preflight::host_context(&scope, inventory, playbook, options, &host);
            let render = |source: &str, vars: &VarMap, at: &crate::source::SourceSpan| {
                templates
                    .render_str_deep(source, &Value::Object(vars.clone()), &at.to_string())
                    .map_err(|e| Error::Located {
                        message: format!("{e}\n  (job `{}` for host {host})", spec.name),
                        span: at.clone(),
                    })
            };
            let root = render(&spec.state_dir, &vars, &spec.span)?;
            let targets_command = match &spec.targets {
                TargetSource::Command { command, .. } => Some(render(command, &vars, &spec.span)?),
                TargetSource::Names(_) => None,
            };
            // The commands with each target known now, or a stand-in name.
            let sample = ["x".to_owned()];
            let names = match &spec.targets {
                TargetSource::Names(n) => n.as_slice(),
                TargetSource::Command { .. } => &sample[..],
            };
            for t in names {
                let mut with = vars.clone();
                with.insert("target".into(), t.as_str().into());
                for cmd in work_templates(spec) {
                    render(cmd, &with, &spec.work_span)?;
                }
            }
            hosts.push(HostJob {
                paths: HostPaths {
                    root,
                    job: spec.name.clone(),
                    data: match &spec.work {
                        Work::Convert(c) => Some(format!("~/.convoy/data/{}", c.data)),
                        Work::Command(_) | Work::Tasks(_) => None,
                    },
                },
                host,
                vars,
                targets_command,
            });
        }
        if hosts.is_empty() {
            return Err(Error::Located {
                message: format!(
                    "job `{}`: its play selects no host{}",
                    spec.name,
                    options
                        .limit
                        .as_ref()
                        .map(|l| format!(" within --limit {l:?}"))
                        .unwrap_or_default()
                ),
                span: play.hosts_span.clone(),
            });
        }
        Ok(Job {
            spec,
            templates: Arc::new(templates),
            hosts,
            options,
            inventory,
            playbook,
            play,
        })
    }

    fn render(&self, host: &HostJob, source: &str, target: &str) -> Result<String, Error> {
        let mut with = host.vars.clone();
        with.insert("target".into(), target.into());
        self.templates
            .render_str_deep(
                source,
                &Value::Object(with),
                &self.spec.work_span.to_string(),
            )
            .map_err(|e| Error::Located {
                message: format!("{e}\n  (job `{}` for host {})", self.spec.name, host.host),
                span: self.spec.work_span.clone(),
            })
    }
}

fn work_templates(spec: &JobSpec) -> Vec<&str> {
    match &spec.work {
        Work::Command(c) => vec![c.as_str()],
        Work::Convert(c) => c.converters.iter().map(|c| c.run.as_str()).collect(),
        // Tasks are rendered by the task engine as they run; a template
        // error fails that target with the task's name and message.
        Work::Tasks(_) => Vec::new(),
    }
}

/// A host reached and read: its connection, records and targets.
pub struct Reached {
    /// Shared with a task list's engine while one of its targets runs.
    pub conn: Arc<Connection>,
    pub survey: HostSurvey,
    pub targets: Vec<String>,
}

impl Reached {
    /// Runs one of a target's host scripts (claim, start, record). `Err` is
    /// the line the target ends with: `failed` followed by the exit and the
    /// script's stderr (and `suffix`), or `lost` of the transport error.
    pub async fn exec_step(
        &self,
        script: &crate::transport::ShellScript,
        failed: &str,
        suffix: &str,
        lost: impl FnOnce(&crate::transport::TransportError) -> String,
    ) -> Result<crate::transport::ExecOutput, String> {
        match self.conn.exec(Script::new(script)).await {
            Ok(out) if out.success() => Ok(out),
            Ok(out) => Err(format!(
                "{failed} (exit {}): {}{suffix}",
                out.status,
                out.stderr_str().trim()
            )),
            Err(e) => Err(lost(&e)),
        }
    }
}

/// Connects to every host (`--forks` at a time), surveys it and lists its
/// targets. Any host unreachable, any state refused: an error, and no
/// target was started anywhere.
pub async fn reach(
    job: &Job<'_>,
    control_dir: &std::path::Path,
    create: bool,
) -> Result<Vec<Reached>, JobError> {
    let answers = Forks::new(job.options.forks)
        .each(&job.hosts, |h| async move {
            let unreachable = |reason: String| JobError::Unreachable {
                host: h.host.clone(),
                reason,
            };
            let conn = crate::run::connect::open(&h.host, &h.vars, job.options, control_dir)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let result = async {
                let out = conn
                    .exec(Script::new(&h.paths.survey(create)))
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                if !out.success() {
                    return Err(unreachable(format!(
                        "cannot read the job's state under {} (exit {}): {}",
                        h.paths.root,
                        out.status,
                        out.stderr_str().trim()
                    )));
                }
                let survey = parse_survey(&h.host, &job.spec.name, &out.stdout_str())?;
                let targets = match &h.targets_command {
                    None => match &job.spec.targets {
                        TargetSource::Names(n) => n.clone(),
                        TargetSource::Command { .. } => unreachable!("rendered at prepare"),
                    },
                    Some(cmd) => {
                        let script = crate::transport::ShellScript::new().user_code(cmd);
                        let out = conn
                            .exec(Script::new(&script))
                            .await
                            .map_err(|e| unreachable(e.to_string()))?;
                        let fail = |reason: String| JobError::TargetsCommand {
                            host: h.host.clone(),
                            reason,
                        };
                        if !out.success() {
                            return Err(fail(format!(
                                "failed (exit {}): {}",
                                out.status,
                                out.stderr_str().trim()
                            )));
                        }
                        targets::from_command_output(&out.stdout_str()).map_err(fail)?
                    }
                };
                Ok((survey, targets))
            }
            .await;
            match result {
                Ok((survey, targets)) => Ok(Reached {
                    conn: Arc::new(conn),
                    survey,
                    targets,
                }),
                Err(e) => {
                    conn.close().await;
                    Err(e)
                }
            }
        })
        .await;
    let mut reached = Vec::new();
    let mut first_error = None;
    for a in answers {
        match a {
            Ok(r) => reached.push(r),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        for r in reached {
            r.close().await;
        }
        return Err(e);
    }
    Ok(reached)
}

impl Reached {
    /// Closes the connection (every task list using it has ended by then).
    pub async fn close(self) {
        if let Ok(conn) = Arc::try_unwrap(self.conn) {
            conn.close().await;
        }
    }
}

/// A target as this run sees it before starting anything.
pub(super) struct Item {
    host: usize,
    target: String,
    state: TargetState,
    /// Will this run start it (or wait for its running wrapper)?
    run: bool,
}

/// Works through the job on the reached hosts; reports every target and
/// returns the exit code.
pub async fn execute(
    job: &Job<'_>,
    reached: &[Reached],
    opts: &JobOptions,
    reporter: &JobReporter,
    interrupt: &Interrupt,
    mut tenants: Option<&mut TenantTraffic>,
) -> Result<i32, Error> {
    let spec = job.spec;
    let mut items = Vec::new();
    for (i, r) in reached.iter().enumerate() {
        for t in &r.targets {
            if opts.limit_targets.as_ref().is_some_and(|f| !f.matches(t)) {
                continue;
            }
            let state = r.survey.state(t);
            let run = match state {
                TargetState::Pending => !opts.retry_failed,
                TargetState::Running => true,
                TargetState::Failed | TargetState::Lost => opts.retry_failed,
                TargetState::Done | TargetState::Skipped => false,
            };
            items.push(Item {
                host: i,
                target: t.clone(),
                state,
                run,
            });
        }
    }
    if items.is_empty() {
        return Err(Error::Usage(
            "--limit-targets selects no target of this job".into(),
        ));
    }
    let to_run = items.iter().filter(|i| i.run).count();
    reporter.send(JobEvent::JobStart {
        run: opts.run_id.clone(),
        job: spec.name.clone(),
        hosts: reached.len(),
        targets: items.len(),
        to_run,
    });
    let mut totals = Totals::default();
    // What is settled (or left alone) is reported at once, from the records.
    for it in items.iter().filter(|i| !i.run) {
        totals.add(it.state);
        let record = reached[it.host].survey.records.get(&it.target);
        reporter.send(JobEvent::TargetEnd(TargetEnd {
            host: job.hosts[it.host].host.clone(),
            target: it.target.clone(),
            state: it.state,
            exit_code: record.map(|r| r.exit_code),
            attempts: record.map_or(0, |r| r.attempts),
            seconds: record.map_or(0, |r| r.seconds),
            already: true,
            output: record.map(|r| r.tail.clone()).unwrap_or_default(),
        }));
    }
    if opts.check {
        reporter.note(format!(
            "check: {to_run} targets would run; nothing was started"
        ));
        if let Some(t) = &tenants {
            reporter.note(format!(
                "check: the proxy's tenant map would follow the targets (it shows {}); nothing was published",
                t.summary()
            ));
        }
        for _ in 0..to_run {
            totals.add(TargetState::Pending);
        }
        reporter.send(JobEvent::JobEnd {
            totals,
            exit_code: EXIT_OK,
        });
        return Ok(EXIT_OK);
    }
    // Groups over the targets' names in host order; each group runs on
    // every host that has its targets.
    let mut order: Vec<String> = Vec::new();
    for it in &items {
        if !order.contains(&it.target) {
            order.push(it.target.clone());
        }
    }
    let groups = super::spec::partition(&spec.groups, &order);
    let group_of: BTreeMap<&str, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, ts)| ts.iter().map(move |t| (t.as_str(), g)))
        .collect();
    let per_host: Vec<Arc<Semaphore>> = reached
        .iter()
        .map(|_| Arc::new(Semaphore::new(spec.per_host)))
        .collect();
    let total = Arc::new(Semaphore::new(
        spec.total.unwrap_or(spec.per_host * reached.len()).max(1),
    ));
    let mut transport_failed = false;
    let mut interrupted = false;
    let mut stopped = false;
    let mut ran_a_group = false;
    // Every target's state as this run knows it (its record at the start,
    // then its own record when it ends): the tenant map is made of these.
    let mut known: Known = reached
        .iter()
        .enumerate()
        .flat_map(|(h, r)| {
            r.targets
                .iter()
                .map(move |t| ((h, t.clone()), r.survey.state(t)))
        })
        .collect();
    // The map the proxy shows lags `known` (a group's end waits for the
    // next group's start, or the job's end, to be published with it).
    let mut unpublished = tenants.is_some();
    let mut publish_failed = false;
    let with_work: Vec<usize> = (0..groups.len())
        .filter(|g| {
            items
                .iter()
                .any(|i| i.run && group_of.get(i.target.as_str()) == Some(g))
        })
        .collect();
    for (n, &g) in with_work.iter().enumerate() {
        if ran_a_group && !stopped {
            match between_groups(
                &spec.pause,
                n + 1,
                with_work.len(),
                job.options.yes,
                reporter,
                interrupt,
            )
            .await
            {
                Between::Continue => {}
                Between::Stop => {
                    stopped = true;
                }
            }
        }
        if stopped || interrupt.is_set() {
            interrupted |= interrupt.is_set();
            for it in items
                .iter()
                .filter(|i| i.run && with_work[n..].contains(&group_of[i.target.as_str()]))
            {
                totals.add(it.state);
            }
            break;
        }
        let mut group: Vec<&Item> = items
            .iter()
            .filter(|i| i.run && group_of[i.target.as_str()] == g)
            .collect();
        // Targets still running under an earlier (killed) controller take
        // their slots first: the semaphores are fair, so no pending target
        // starts beside them beyond the bounds (a resume went to 7 of 6).
        group.sort_by_key(|i| i.state != TargetState::Running);
        if with_work.len() > 1 {
            reporter.send(JobEvent::Group {
                index: n + 1,
                groups: with_work.len(),
                targets: group.len(),
            });
        }
        ran_a_group = true;
        let step = format!("group {}/{}", n + 1, with_work.len());
        if let Some(t) = tenants.as_deref_mut() {
            // In maintenance before any of them starts.
            for it in &group {
                known.insert((it.host, it.target.clone()), TargetState::Running);
            }
            let published = t
                .publish_known(&known, &format!("{step} starts"), reporter)
                .await;
            unpublished = false;
            if !published {
                publish_failed = true;
                for it in &group {
                    known.insert((it.host, it.target.clone()), it.state);
                    totals.add(it.state);
                }
                stopped = true;
                continue;
            }
        }
        // Every target of the group is polled at once; the semaphores, not
        // the stream, bound how many run.
        let in_group = group.len().max(1);
        let ends: Vec<(&Item, Ended)> = futures::stream::iter(group)
            .map(|it| {
                let (per_host, total) = (per_host[it.host].clone(), total.clone());
                let end = async move {
                    // The host's bound first: a target waiting for its busy
                    // host must not hold a fleet-wide slot another host could use.
                    let _h = per_host.acquire_owned().await.expect("never closed");
                    let _t = total.acquire_owned().await.expect("never closed");
                    if interrupt.is_set() {
                        return Ended::NotStarted(it.state);
                    }
                    reporter.send(JobEvent::TargetStart {
                        host: job.hosts[it.host].host.clone(),
                        target: it.target.clone(),
                    });
                    let end =
                        run_target(job, &reached[it.host], &job.hosts[it.host], it, opts).await;
                    let (Ended::Recorded(e) | Ended::NoAnswer(e)) = &end else {
                        unreachable!("started")
                    };
                    reporter.send(JobEvent::TargetEnd(e.clone()));
                    end
                };
                async move { (it, end.await) }
            })
            .buffer_unordered(in_group)
            .collect()
            .await;
        for (it, end) in ends {
            let state = match &end {
                Ended::Recorded(e) | Ended::NoAnswer(e) => e.state,
                Ended::NotStarted(state) => *state,
            };
            known.insert((it.host, it.target.clone()), state);
            match end {
                Ended::Recorded(e) => totals.add(e.state),
                Ended::NoAnswer(e) => {
                    transport_failed = true;
                    totals.add(e.state);
                }
                Ended::NotStarted(state) => {
                    interrupted = true;
                    totals.add(state);
                }
            }
        }
        unpublished |= tenants.is_some();
        // Published now when no group follows at once; else with the next
        // group's start, in the same reload.
        let last = n + 1 == with_work.len();
        if let Some(t) = tenants.as_deref_mut()
            && (last || spec.pause != Pause::None || interrupt.is_set())
        {
            unpublished = false;
            if !t
                .publish_known(&known, &format!("{step} ended"), reporter)
                .await
            {
                publish_failed = true;
                stopped = true;
            }
        }
    }
    // Ends not published yet (the job stopped before the next group), or
    // nothing to run at all: the map still shows what the hosts recorded.
    if unpublished && let Some(t) = tenants {
        let why = if ran_a_group {
            "the job stops"
        } else {
            "as recorded"
        };
        publish_failed |= !t.publish_known(&known, why, reporter).await;
    }
    let code = if totals.failed + totals.lost > 0 || publish_failed {
        EXIT_FAILED
    } else if transport_failed {
        EXIT_UNREACHABLE
    } else if interrupted {
        EXIT_INTERRUPTED
    } else if stopped || totals.pending > 0 || totals.running > 0 {
        EXIT_PENDING
    } else {
        EXIT_OK
    };
    reporter.send(JobEvent::JobEnd {
        totals,
        exit_code: code,
    });
    Ok(code)
}

/// How one target of a group ended for this run.
pub(super) enum Ended {
    /// Its outcome, from its record (or a failure convoy decided before
    /// starting it: a command that does not render).
    Recorded(TargetEnd),
    /// The answer never came (the connection broke): its wrapper goes on
    /// on the host, and a status or resume reads what it records.
    NoAnswer(TargetEnd),
    /// Not started: Ctrl-C came first. Its state as it was.
    NotStarted(TargetState),
}

/// Starts (or waits for) one target on its host and reads its record.
async fn run_target(
    job: &Job<'_>,
    reached: &Reached,
    host: &HostJob,
    it: &Item,
    opts: &JobOptions,
) -> Ended {
    let spec = job.spec;
    let end = |state: TargetState, output: Vec<String>| TargetEnd {
        host: host.host.clone(),
        target: it.target.clone(),
        state,
        exit_code: None,
        attempts: 0,
        seconds: 0,
        already: false,
        output,
    };
    if let Work::Tasks(tasks) = &spec.work {
        return super::task_target::run(job, reached, host, &it.target, tasks, opts).await;
    }
    let mut command = None;
    let mut steps = Vec::new();
    let mut to_version = None;
    let rendered: Result<(), Error> = (|| {
        match &spec.work {
            Work::Command(c) => command = Some(job.render(host, c, &it.target)?),
            Work::Tasks(_) => unreachable!("run above"),
            Work::Convert(conv) => {
                let from = match reached.survey.versions.get(&it.target) {
                    Some(v) => loose_version(v).map_err(|e| {
                        Error::Usage(format!(
                            "{}: corrupt data version of {} in {}: {e}",
                            host.host,
                            it.target,
                            host.paths.data.clone().unwrap_or_default()
                        ))
                    })?,
                    None => conv.from.clone(),
                };
                for c in converters::due(&conv.converters, &from, &conv.to) {
                    steps.push((
                        c.versions.lower.to_string(),
                        c.name.clone(),
                        job.render(host, &c.run, &it.target)?,
                    ));
                }
                to_version = Some(from.max(conv.to.clone()).to_string());
            }
        }
        Ok(())
    })();
    if let Err(e) = rendered {
        return Ended::Recorded(end(TargetState::Failed, vec![e.to_string()]));
    }
    let run = TargetRun {
        target: &it.target,
        run_id: &opts.run_id,
        command: command.as_deref(),
        converters: steps,
        to_version: to_version.as_deref(),
        timeout: spec.timeout,
        retries: spec.retries,
        delay_secs: spec.delay.as_secs().max(1),
        success: &spec.success,
        retry_failed: opts.retry_failed,
    };
    let script = host.paths.start(&run);
    let started = reached
        .exec_step(&script, "the start script failed", "", |e| {
            format!(
                "connection lost ({e}); the target's wrapper goes on on the host: `convoy job status` shows its record"
            )
        })
        .await;
    let out = match started {
        Ok(out) => out,
        Err(line) => return Ended::NoAnswer(end(TargetState::Running, vec![line])),
    };
    let survey = match parse_survey(&host.host, &spec.name, &out.stdout_str()) {
        Ok(s) => s,
        Err(e) => return Ended::Recorded(end(TargetState::Failed, vec![e.to_string()])),
    };
    match survey.records.get(&it.target) {
        Some(r) => Ended::Recorded(TargetEnd {
            host: host.host.clone(),
            target: it.target.clone(),
            state: r.state,
            exit_code: Some(r.exit_code),
            attempts: r.attempts,
            seconds: r.seconds,
            already: false,
            output: r.tail.clone(),
        }),
        None => Ended::Recorded(end(
            TargetState::Lost,
            vec!["its wrapper ended without a record (killed on the host?); not re-run: `--retry-failed` runs it again".into()],
        )),
    }
}

enum Between {
    Continue,
    Stop,
}

/// Between two groups: nothing, a wait (cut short by Ctrl-C), or a question.
async fn between_groups(
    pause: &Pause,
    next: usize,
    total: usize,
    yes: bool,
    reporter: &JobReporter,
    interrupt: &Interrupt,
) -> Between {
    use std::io::IsTerminal;
    match pause {
        Pause::None => Between::Continue,
        Pause::For(d) => {
            reporter.note(format!(
                "pausing {} before group {next}/{total}",
                humantime::format_duration(*d)
            ));
            let until = tokio::time::Instant::now() + *d;
            while tokio::time::Instant::now() < until && !interrupt.is_set() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Between::Continue
        }
        Pause::Confirm if yes => Between::Continue,
        Pause::Confirm if std::io::stdin().is_terminal() => {
            let answer = tokio::task::spawn_blocking(move || {
                eprint!("continue with group {next}/{total}? [y/N] ");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                line.trim().eq_ignore_ascii_case("y")
            })
            .await
            .unwrap_or(false);
            if answer {
                Between::Continue
            } else {
                reporter.note(format!(
                    "stopped before group {next}/{total}; `convoy job resume RUN` continues"
                ));
                Between::Stop
            }
        }
        Pause::Confirm => {
            reporter.note(format!(
                "stopped before group {next}/{total}: `pause: confirm` and no terminal (or --yes); `convoy job resume RUN` continues with it"
            ));
            Between::Stop
        }
    }
}
