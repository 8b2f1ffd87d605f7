//! One target's task list (`job: {tasks: …}`): claimed on the host, run by
//! convoy's task engine from the controller, recorded on the host.
//!
//! The exactly-once facts are the wrapper's (see [`super::wrapper`]): the
//! `O_EXCL` claim is made on the host before the first task, and the
//! record is written on the host (by the controller, over the connection)
//! when the last task has ended. Unlike a `run:` command, no host-side
//! process runs the list: if the controller dies between the claim and
//! the record, the claim stays without a record and the target is `lost`,
//! run again only with `--retry-failed` (its tasks may have run in part).

use std::time::{Duration, Instant};

use super::progress::TargetEnd;
use super::runner::{Ended, HostJob, Job, JobOptions, Reached};
use super::state::{TargetState, parse_survey};
use super::wrapper::TasksRecord;
use crate::playbook::Task;
use crate::run::{TaskListEnd, TaskListPlace, run_task_list};
use crate::vars::VarMap;

/// A failed task's message in the record: its first lines (the record's
/// tail is for reading at a glance; the task's full output is not kept).
const MESSAGE_LINES: usize = 8;

/// Claims `target`, runs its task list (`retries` more times while it
/// fails, each attempt within `timeout`), and records how it ended.
pub(super) async fn run(
    job: &Job<'_>,
    reached: &Reached,
    host: &HostJob,
    target: &str,
    tasks: &[Task],
    opts: &JobOptions,
) -> Ended {
    let spec = job.spec;
    let end = |state: TargetState, output: Vec<String>| TargetEnd {
        host: host.host.clone(),
        target: target.to_owned(),
        state,
        exit_code: None,
        attempts: 0,
        seconds: 0,
        already: false,
        output,
    };
    let claim = host.paths.claim_tasks(target, opts.retry_failed);
    let claimed = reached
        .exec_step(&claim, "the claim script failed", "", |e| {
            format!("connection lost before the claim ({e})")
        })
        .await;
    let out = match claimed {
        Ok(out) => out,
        Err(line) => return Ended::NoAnswer(end(TargetState::Pending, vec![line])),
    };
    let text = out.stdout_str();
    if !text.lines().any(|l| l.starts_with("claim ")) {
        // Claimed before (another controller, or one that was killed):
        // never run again here; its record, or `lost`.
        return from_answer(host, target, &spec.name, &text);
    }
    let place = TaskListPlace {
        inventory: job.inventory,
        playbook: job.playbook,
        play: job.play,
        templates: job.templates.clone(),
        options: job.options,
        control_dir: &opts.control_dir,
    };
    let mut vars = VarMap::new();
    vars.insert("target".into(), target.into());
    let started = Instant::now();
    let mut delay = spec.delay.max(Duration::from_secs(1));
    let mut attempts = 0;
    let mut tail = Vec::new();
    let done = loop {
        attempts += 1;
        let attempt = run_task_list(
            &place,
            &host.host,
            reached.conn.clone(),
            vars.clone(),
            tasks,
        );
        let ended = match spec.timeout {
            None => Some(attempt.await),
            Some(t) => tokio::time::timeout(t, attempt).await.ok(),
        };
        tail = match ended {
            Some(TaskListEnd::Ok { .. }) => break true,
            Some(TaskListEnd::Unreachable { task, message }) => {
                // No record can be written: the claim stays without one.
                return Ended::NoAnswer(end(
                    TargetState::Lost,
                    vec![format!(
                        "the host became unreachable during task {task:?} ({message}); its claim has no record, so it is `lost`: `--retry-failed` runs its task list again"
                    )],
                ));
            }
            Some(TaskListEnd::Failed { task, message }) => {
                let mut lines = vec![format!("failed task: {task}")];
                lines.extend(message.lines().take(MESSAGE_LINES).map(str::to_owned));
                lines
            }
            None => vec![format!(
                "timed out after {} (the task list's attempt was cut off)",
                humantime::format_duration(spec.timeout.unwrap_or_default())
            )],
        };
        if attempts > spec.retries {
            break false;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    };
    let record = host.paths.record_tasks(&TasksRecord {
        target,
        run_id: &opts.run_id,
        done,
        attempts,
        seconds: started.elapsed().as_secs(),
        tail,
    });
    let recorded = reached
        .exec_step(
            &record,
            "its task list ended, but the record could not be written",
            "; it is `lost`",
            |e| {
                format!(
                    "its task list ended, but the connection was lost before its record was written ({e}); it is `lost`"
                )
            },
        )
        .await;
    match recorded {
        Ok(out) => from_answer(host, target, &spec.name, &out.stdout_str()),
        Err(line) => Ended::NoAnswer(end(TargetState::Lost, vec![line])),
    }
}

/// The target's record as the host printed it, or `lost` when it has none.
fn from_answer(host: &HostJob, target: &str, job: &str, text: &str) -> Ended {
    let end = |state: TargetState, output: Vec<String>| TargetEnd {
        host: host.host.clone(),
        target: target.to_owned(),
        state,
        exit_code: None,
        attempts: 0,
        seconds: 0,
        already: false,
        output,
    };
    let survey = match parse_survey(&host.host, job, text) {
        Ok(s) => s,
        Err(e) => return Ended::Recorded(end(TargetState::Failed, vec![e.to_string()])),
    };
    match survey.records.get(target) {
        Some(r) => Ended::Recorded(TargetEnd {
            host: host.host.clone(),
            target: target.to_owned(),
            state: r.state,
            exit_code: Some(r.exit_code),
            attempts: r.attempts,
            seconds: r.seconds,
            already: false,
            output: r.tail.clone(),
        }),
        None => Ended::Recorded(end(
            TargetState::Lost,
            vec!["claimed, but without a record (the controller running its task list was killed?); not re-run: `--retry-failed` runs it again".into()],
        )),
    }
}
