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
//! - [`switch`]: a run's moves: deploy to the idle pool, then its steps;
//!   a rollback's single switch back.
//!
//! Gates that judge a step from the traffic it served (5xx share, latency
//! from the proxy's log or stats) belong between a step's reload and the
//! next one: [`switch::Step`] is where a run holds, and where a gate would
//! read its figures and decide to go on or return to the live pool.

pub mod by_hand;
pub mod record;
pub mod request_match;
pub mod request_pools;
pub mod spec;
mod state;
pub mod switch;
pub mod target;

pub use spec::{Step, TrafficSpec};
pub use state::TrafficState;
