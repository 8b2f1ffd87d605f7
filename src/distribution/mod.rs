//! Distributions: a versioned artifact becomes a release on every host, and
//! hosts switch between releases atomically.
//!
//! The local side ([`artifact`]) hashes each artifact once per run and
//! refuses unsafe archives before any host is contacted; the host side
//! ([`remote`]) does each step of the cycle in one round trip.

mod artifact;
mod format;
#[cfg(test)]
mod hostile_values;
pub mod lock;
mod paths;
mod plan;
pub mod remote;
mod safety;

pub use artifact::{ArtifactCache, LocalArtifact};
pub use format::ArchiveFormat;
pub use plan::{ReleasePlan, Source, render};
