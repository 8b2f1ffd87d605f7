//! What can go wrong with a job, each variant carrying what the operator
//! needs to act: the host, the path of the state that was refused, the
//! target. Messages say what state the targets were left in.

use thiserror::Error;

use crate::error::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNREACHABLE};

#[derive(Debug, Error)]
pub enum JobError {
    /// A host-side record that does not parse: never overwritten, so the
    /// operator can see what is in it; no target of that host is started.
    #[error(
        "{host}: corrupt job state {path}: {reason}\n  (nothing was started on {host}; inspect or move the file aside, then resume)"
    )]
    CorruptState {
        host: String,
        path: String,
        reason: String,
    },
    /// The state directory holds another job's records (two jobs given the
    /// same `state_dir`, or a renamed job): refused rather than mixed.
    #[error(
        "{host}: job state {path} belongs to job `{found}`, not `{job}`\n  (nothing was started on {host}; give this job its own `state_dir` or name)"
    )]
    OtherJob {
        host: String,
        path: String,
        found: String,
        job: String,
    },
    /// The controller-side file of a run (`.convoy/jobs/RUN.json`).
    #[error("job run state {path}: {reason}")]
    RunFile { path: String, reason: String },
    /// `targets_command` printed nothing, a duplicate, or a name that is not a target.
    #[error("{host}: `targets_command` {reason}\n  (nothing was started on {host})")]
    TargetsCommand { host: String, reason: String },
    /// A host could not be reached, or a script could not be run on it.
    #[error("{host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// Usage of the command line that cannot work (a run id that is not there).
    #[error("{0}")]
    Usage(String),
}

impl JobError {
    pub fn exit_code(&self) -> i32 {
        match self {
            JobError::Unreachable { .. } => EXIT_UNREACHABLE,
            JobError::TargetsCommand { .. } => EXIT_FAILED,
            _ => EXIT_BAD_INPUT,
        }
    }
}
