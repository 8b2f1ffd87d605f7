//! What `convoy restart|stop|start` asks a supervisor to do to a program.

/// A supervisor action on one program of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    Stop,
    Start,
}

impl Action {
    /// The verb both `supervisorctl` and `systemctl` understand.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Start => "start",
        }
    }

    /// The past tense, for reports ("restarted: h1, h2").
    pub fn done(self) -> &'static str {
        match self {
            Action::Restart => "restarted",
            Action::Stop => "stopped",
            Action::Start => "started",
        }
    }

    /// A stopped program has nothing to be healthy about: only restarts
    /// and starts pass a health gate.
    pub fn is_gated(self) -> bool {
        !matches!(self, Action::Stop)
    }
}
