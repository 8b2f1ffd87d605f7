//! What is known about each target: the host-side records (the truth, see
//! [`super::wrapper`]) as read back by a survey, and the controller's small
//! run file that lets `job status RUN` and `job resume RUN` find the
//! playbook and inventory again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::JobError;
use super::targets;

/// A target's state as `job status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
    /// Claimed, but its wrapper is gone without a record (the host went
    /// down), or, for a task list, no record was written (the controller
    /// running it died): it may or may not have run, so it is never re-run
    /// by itself.
    Lost,
}

impl TargetState {
    pub fn name(self) -> &'static str {
        match self {
            TargetState::Pending => "pending",
            TargetState::Running => "running",
            TargetState::Done => "done",
            TargetState::Failed => "failed",
            TargetState::Skipped => "skipped",
            TargetState::Lost => "lost",
        }
    }

    /// Settled for good: a resume does not run it.
    pub fn settled(self) -> bool {
        matches!(self, TargetState::Done | TargetState::Skipped)
    }
}

/// A target's host-side record, as its wrapper wrote it.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub state: TargetState,
    pub exit_code: i32,
    pub attempts: u32,
    pub run: String,
    pub seconds: u64,
    /// Converters run (their keys), and the data version reached.
    pub steps: Vec<String>,
    pub version: Option<String>,
    /// The last lines of the command's output.
    pub tail: Vec<String>,
}

/// One host's answer to the survey.
#[derive(Debug, Default)]
pub struct HostSurvey {
    /// The job's directory on the host.
    pub dir: String,
    pub records: BTreeMap<String, Record>,
    /// Claimed and still running (or just starting).
    pub running: Vec<String>,
    pub lost: Vec<String>,
    /// Recorded data versions (converter jobs).
    pub versions: BTreeMap<String, String>,
}

impl HostSurvey {
    pub fn state(&self, target: &str) -> TargetState {
        if let Some(r) = self.records.get(target) {
            r.state
        } else if self.running.iter().any(|t| t == target) {
            TargetState::Running
        } else if self.lost.iter().any(|t| t == target) {
            TargetState::Lost
        } else {
            TargetState::Pending
        }
    }
}

/// Parses a survey's output (also a start script's, which prints one record
/// or `lost`). A record that does not parse, or an identity naming another
/// job, is refused with its path on the host.
pub fn parse_survey(host: &str, job: &str, out: &str) -> Result<HostSurvey, JobError> {
    let mut s = HostSurvey::default();
    let mut identity: Vec<&str> = Vec::new();
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "dir" => s.dir = rest.to_owned(),
            "identity" => identity.push(rest),
            "rec" => {
                let target = targets::from_file_name(rest);
                let mut body = Vec::new();
                for l in lines.by_ref() {
                    if l == "end" {
                        break;
                    }
                    body.push(l.strip_prefix("= ").unwrap_or(l));
                }
                let path = format!("{}/t/{rest}.rec", s.dir);
                let record =
                    parse_record(&body, job, &target).map_err(|reason| JobError::CorruptState {
                        host: host.to_owned(),
                        path: path.clone(),
                        reason,
                    })?;
                s.records.insert(target, record);
            }
            "running" | "starting" => s.running.push(targets::from_file_name(rest)),
            "lost" => s.lost.push(targets::from_file_name(rest)),
            "ver" => {
                if let Some((t, v)) = rest.split_once(' ') {
                    s.versions.insert(targets::from_file_name(t), v.to_owned());
                }
            }
            _ => {}
        }
    }
    if !identity.is_empty() || out.contains("\nidentity") {
        let path = format!("{}/job", s.dir);
        match identity.as_slice() {
            ["convoy-job 1", name, ..] if name.strip_prefix("name ") == Some(job) => {}
            ["convoy-job 1", name, ..] if name.starts_with("name ") => {
                return Err(JobError::OtherJob {
                    host: host.to_owned(),
                    path,
                    found: name["name ".len()..].to_owned(),
                    job: job.to_owned(),
                });
            }
            _ => {
                return Err(JobError::CorruptState {
                    host: host.to_owned(),
                    path,
                    reason: "not a convoy job identity (`convoy-job 1` then `name NAME`)".into(),
                });
            }
        }
    }
    Ok(s)
}

fn parse_record(body: &[&str], job: &str, target: &str) -> Result<Record, String> {
    if body.first() != Some(&"convoy-job-record 1") {
        return Err("does not start with `convoy-job-record 1`".into());
    }
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut tail = Vec::new();
    let mut in_tail = false;
    for l in &body[1..] {
        if in_tail {
            tail.push((*l).to_owned());
        } else if *l == "--" {
            in_tail = true;
        } else if let Some(k) = l.strip_prefix("step ") {
            steps.push(k.to_owned());
        } else if let Some((k, v)) = l.split_once(' ') {
            fields.insert(k, v);
        } else {
            return Err(format!("unreadable line {l:?}"));
        }
    }
    let field = |k: &str| fields.get(k).copied().ok_or(format!("no `{k}` line"));
    if field("job")? != job {
        return Err(format!("it is a record of job `{}`", field("job")?));
    }
    if field("target")? != target {
        return Err(format!("it is the record of target `{}`", field("target")?));
    }
    let number = |k: &str| -> Result<i64, String> {
        field(k)?
            .parse()
            .map_err(|_| format!("`{k}` is not a number"))
    };
    let state = match field("outcome")? {
        "done" => TargetState::Done,
        "failed" => TargetState::Failed,
        "skipped" => TargetState::Skipped,
        other => return Err(format!("unknown outcome `{other}`")),
    };
    Ok(Record {
        state,
        exit_code: number("rc")? as i32,
        attempts: number("attempts")? as u32,
        run: field("run")?.to_owned(),
        seconds: (number("ended")? - number("started")?).max(0) as u64,
        steps,
        version: fields.get("version").map(|v| (*v).to_owned()),
        tail,
    })
}

/// The controller's file for a run: `.convoy/jobs/RUN.json` in the project.
/// It holds only how to find the work again; the targets' states are on
/// the hosts, so losing this file loses no state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub format: u32,
    pub run: String,
    pub job: String,
    pub playbook: PathBuf,
    pub inventory: Vec<PathBuf>,
    pub limit: Option<String>,
    pub limit_targets: Option<String>,
}

impl RunFile {
    pub fn dir(base: &Path) -> PathBuf {
        base.join(".convoy/jobs")
    }

    pub fn path(base: &Path, run: &str) -> PathBuf {
        Self::dir(base).join(format!("{run}.json"))
    }

    /// Written once, before any target starts (to a temporary name, renamed).
    pub fn write(&self, base: &Path) -> Result<PathBuf, JobError> {
        let path = Self::path(base, &self.run);
        let fail = |e: std::io::Error| JobError::RunFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(Self::dir(base)).map_err(fail)?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("serializable");
        std::fs::write(&tmp, text + "\n").map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)?;
        Ok(path)
    }

    /// Reads run `run` of the project in `base`; a corrupt file is refused
    /// with its path (and left as it is).
    pub fn read(base: &Path, run: &str) -> Result<RunFile, JobError> {
        if targets::invalid(run).is_some() || run.contains('/') {
            return Err(JobError::Usage(format!("{run:?} is not a run id")));
        }
        let path = Self::path(base, run);
        let text = std::fs::read_to_string(&path).map_err(|e| JobError::RunFile {
            path: path.display().to_string(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such job run here (`convoy job status PLAYBOOK` reads the hosts without it)"
                    .into()
            } else {
                e.to_string()
            },
        })?;
        let file: RunFile = serde_json::from_str(&text).map_err(|e| JobError::RunFile {
            path: path.display().to_string(),
            reason: format!("corrupt ({e}); it was left as it is"),
        })?;
        if file.format != 1 || file.run != run {
            return Err(JobError::RunFile {
                path: path.display().to_string(),
                reason: format!("it is not the file of run {run}; it was left as it is"),
            });
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = "dir /root/.convoy/jobs/j\nidentity convoy-job 1\nidentity name j\nrec db1%2Ft1\n= convoy-job-record 1\n= job j\n= run R1\n= target db1/t1\n= outcome failed\n= rc 3\n= attempts 2\n= started 10\n= ended 12\n= --\n= ERROR: boom\n= outcome done\nend\nrunning t2\nlost t3\n";

    #[test]
    fn a_survey_reads_records_claims_and_identity() {
        let s = parse_survey("h1", "j", REC).unwrap();
        let r = &s.records["db1/t1"];
        assert_eq!(
            (r.state, r.exit_code, r.attempts, r.seconds),
            (TargetState::Failed, 3, 2, 2)
        );
        // Output after `--` is output, whatever it says.
        assert_eq!(r.tail, ["ERROR: boom", "outcome done"]);
        assert_eq!(s.state("t2"), TargetState::Running);
        assert_eq!(s.state("t3"), TargetState::Lost);
        assert_eq!(s.state("t4"), TargetState::Pending);
    }

    #[test]
    fn another_jobs_or_a_corrupt_state_is_refused_with_its_path() {
        let other = REC.replace("identity name j", "identity name k");
        let e = parse_survey("h1", "j", &other).unwrap_err().to_string();
        assert!(
            e.contains("/root/.convoy/jobs/j/job belongs to job `k`"),
            "{e}"
        );
        let corrupt = REC.replace("= outcome failed", "= outcome ???");
        let e = parse_survey("h1", "j", &corrupt).unwrap_err().to_string();
        assert!(
            e.contains("corrupt job state /root/.convoy/jobs/j/t/db1%2Ft1.rec"),
            "{e}"
        );
    }
}
