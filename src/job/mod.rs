//! Jobs: one-off work over many targets (databases, schemas, tenants),
//! each target tracked, resumable, run exactly once.
//!
//! - [`spec`]: the `job:` key of a play, checked at load;
//! - [`targets`]: what a target name may be, `--limit-targets`;
//! - [`converters`]: versioned converters and the ranges a target crosses;
//! - [`wrapper`]: the host-side scripts; where exactly-once is made true;
//! - [`state`]: host-side records as read back, the controller's run file;
//! - [`runner`]: working through the targets, group by group;
//! - [`task_target`]: one target's task list (`tasks:`), claimed and
//!   recorded on the host around the controller's run of it;
//! - [`tenant_traffic`]: the targets' states published as the proxy's
//!   tenant map (maintenance while converted, then the new pool);
//! - [`progress`]: bar, plain lines, JSON events, the summary table.

pub mod converters;
mod error;
pub mod progress;
pub mod runner;
pub mod spec;
pub mod state;
pub mod targets;
mod task_target;
pub mod tenant_traffic;
pub mod wrapper;

pub use error::JobError;
pub use spec::{JobSpec, RawJob};
