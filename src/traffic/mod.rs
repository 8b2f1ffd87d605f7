//! Moving traffic rather than hosts: a play's app hosts form pools (blue
//! and green), the proxy sends requests to the live one, and a release goes
//! to the idle pool, which then takes the traffic in steps (a share of the
//! requests, then all of it), each step one validated reload of the proxy.
//!
//! - [`spec`]: what a playbook states under `proxy:` (`pools`, `live`,
//!   `traffic: {steps, hold}`), checked at load.
//! - [`target`]: targeted steps (client subnets, routes, header or cookie
//!   values: [`request_match`]), checked at load.
//! - [`request_pools`]: classes of requests (routes, methods) sent to an
//!   upstream of their own with its own connection limit and timeout.
//! - [`TrafficState`]: where traffic goes at one moment: the live pool and
//!   each pool's share and version, as the proxy templates see them.
//! - [`record`]: that state as written on each proxy host, installed with
//!   the proxy files it produced, so the next run (or `convoy rollback`)
//!   starts from what the proxy really serves.
//! - [`tenants`]: tenant routing (`tenants:`): each tenant to its data
//!   version's pool, the maintenance answer while it is converted; a job
//!   publishes its targets' states there ([`crate::job::tenant_traffic`]).
//! - [`switch`]: a run's moves: deploy to the idle pool, then its steps;
//!   a rollback's single switch back.
//! - [`gate`]: a step's traffic gate (`traffic.gate`: 5xx share, latency
//!   percentiles, fewest requests), checked at load, and its verdict.
//! - [`metrics`]: the figures the proxy gives (nginx's gate log, haproxy's
//!   stats socket), read on the proxy hosts; `window`: one step's window
//!   over them; `judged_step`: a held step judged, and the traffic sent
//!   back when it fails.

pub mod by_hand;
pub mod gate;
mod judged_step;
pub mod metrics;
pub mod record;
pub mod request_match;
pub mod request_pools;
pub mod spec;
mod state;
pub mod switch;
pub mod target;
pub mod tenants;
mod window;

pub use spec::{Step, TrafficSpec};
pub use state::TrafficState;
