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
    /// A local process could not be started.
    #[error("cannot start {program}: {reason}")]
    Spawn { program: String, reason: String },
}
