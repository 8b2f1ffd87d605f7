use thiserror::Error;

/// Failing to reach or talk to a host. A command that runs and fails is not
/// a transport error: it is an `ExecOutput` with a non-zero status.
#[derive(Debug, Error, Clone)]
pub enum TransportError {
    /// The connection could not be made; `reason` is ssh's own words
    /// ("Host key verification failed", "Connection refused", ...).
    #[error("{reason}")]
    Connect { reason: String },
    /// The connection broke while a command ran.
    #[error("connection lost: {reason}")]
    Lost { reason: String },
    /// sudo could not become the user (a wrong or missing password): the
    /// host was reached, the command never ran.
    #[error("{0}")]
    Become(#[from] super::BecomeFailure),
    /// A local process could not be started.
    #[error("cannot start {program}: {reason}")]
    Spawn { program: String, reason: String },
}

impl TransportError {
    /// Whether the host could not be reached (ansible-core's UNREACHABLE);
    /// a become failure is a task's failure, the host still answers.
    pub fn is_unreachable(&self) -> bool {
        !matches!(self, TransportError::Become(_))
    }
}
