//! Rollout order: which hosts switch together, in what order, and what
//! gates each batch (health) and the whole rollout (the failure budget).

mod budget;
mod health;
mod plan;

pub use budget::FailureBudget;
pub use health::{HealthGate, HealthTarget};
pub use plan::RolloutPlan;
