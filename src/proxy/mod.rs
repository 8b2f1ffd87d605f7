//! The proxy tier: configs that route traffic to the app fleet (nginx,
//! haproxy), rendered from the inventory and the rollout's state, and
//! installed so that a proxy never runs a config that failed validation.
//!
//! Proxy files follow the *fleet* rather than the host they live on (which
//! app hosts take traffic, which drain, which version each runs), so they
//! are rendered again at every step of a rollout and installed on each
//! proxy host as one unit: new files beside the live ones, swapped in with
//! the old ones kept, the whole config validated, then reloaded; any
//! failure puts the previous files back. A manifest on each proxy host
//! lists what a play installed, so files it no longer renders are removed,
//! and only those.
//!
//! - [`FleetState`]: what templates know about the app hosts.
//! - [`config`]: rendering, pure: the pre-flight check, `convoy render` and
//!   every apply use it.
//! - [`changes`] and [`manifest`]: what differs on a host, worked out locally.
//! - [`remote`]: the probe and install scripts (one round trip each).
//! - [`ProxyTier`]: the connected proxy hosts; `apply` runs all of it,
//!   `preview` says what it would do (`--check`), each preview starting
//!   from what the ones before would have installed ([`staged`]).
//! - [`StandaloneTier`]: a play's tier opened outside a run (restart, traffic).
//! - [`unread_keys`]: `request_pools` or `tenants` stated where no template
//!   reads them is refused.
//! - [`validate_here`]: `convoy lint`'s run of nginx or haproxy on this
//!   machine against the rendered files.

mod changes;
mod config;
mod error;
mod fleet_state;
mod manifest;
mod remote;
mod staged;
mod standalone;
mod tier;
pub mod unread_keys;
mod validator;

pub use config::{ProxyConfig, proxy_hosts};
pub use error::ProxyError;
pub use fleet_state::{AppHost, FleetState};
pub use manifest::path as manifest_path;
pub use standalone::StandaloneTier;
pub use tier::ProxyTier;
pub use validator::validate_here;
