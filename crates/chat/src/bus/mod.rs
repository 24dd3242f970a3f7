//! The cluster bus: several chat nodes sharing live traffic over Redis
//! pub/sub, as Socket.IO's Redis adapter does. Each node publishes what
//! its own members do (room messages, joins and leaves, topics,
//! moderation, relayed direct messages) once, on one channel, in the
//! order it applied them; every node applies the others' events to its
//! copy of the cluster's state and delivers them to its own members.
//! Presence is a heartbeat on the same channel: a node silent for the
//! presence bound is dead, and its sessions leave everywhere else.
//!
//! Without `--bus` none of this exists: the server has no uplink and its
//! rooms publish to their members directly, as a single process.

mod link;
mod target;
mod throttle;
pub mod wire;

pub use link::{Arrival, Bus, Uplink};
pub use target::{PASSWORD_ENV, REDISCLI_ENV};
pub use throttle::{Counted, ThrottleLimits, Throttles};

/// Why the bus could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL is not one netkit will use.
    #[error("{0}")]
    Target(String),
    /// Redis could not be reached or refused us.
    #[error("cannot reach Redis at {shown}: {why}")]
    Unavailable { shown: String, why: String },
}
