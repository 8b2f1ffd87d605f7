//! The daemons the hosts' own supervisors run (supervisord programs,
//! systemd units): what runs where (`convoy ps`), rolling actions on them
//! in rollout order (`convoy restart|stop|start`) and their logs
//! (`convoy logs`).
//!
//! convoy does not supervise anything itself: it asks the supervisor each
//! host already has, in one round trip per host, and acts through it, so
//! that what an operator does by hand (`supervisorctl restart web`) and
//! what convoy does are the same thing.

mod action;
mod fleet;
mod program;
mod proxy_drain;
mod rolling;
mod script;
mod since;

pub use action::Action;
pub use fleet::{FollowError, Supervised};
pub use program::{HostPrograms, ProgramStatus, human_uptime};
pub use proxy_drain::ProxyDrain;
pub use rolling::{RollingAction, RollingEvent, RollingOutcome};
pub use since::LogsSince;
