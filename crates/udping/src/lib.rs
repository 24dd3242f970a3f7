//! The UDP pinger, done as a measurement tool: the lab's text echo
//! (`Ping <seq> <time>`, answered upper-cased) beside the standard STAMP
//! format (RFC 8762), a server with seeded impairment for experiments, a
//! client whose statistics recognise loss, reordering, duplication and late
//! replies exactly, and a heartbeat monitor.

mod batch;
mod client;
mod error;
pub mod impair;
pub mod monitor;
pub mod ntp;
mod server;
pub mod wire;

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

pub use client::flood::{FloodConfig, FloodSummary, flood};
pub use client::heartbeat::{HeartbeatConfig, send_heartbeats};
pub use client::ping::{
    PingConfig, PingEvent, Pinger, Reply, ReplyStatus, StampReply, Unreachable,
};
pub use client::stats::{RttStats, StampLoss, Summary};
pub use error::Error;
pub use impair::{Decision, Expected, Impairer, Impairment};
pub use monitor::{Beat, ClientStatus, HeartbeatEvent, Monitor, MonitorConfig};
pub use server::{HOLD_LIMIT, Server, ServerConfig};

/// Which wire format probes and replies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The lab's `Ping <seq> <time>`, echoed upper-cased.
    Text,
    /// RFC 8762 STAMP test packets, unauthenticated mode.
    Stamp,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Text => "text",
            Mode::Stamp => "stamp",
        })
    }
}

/// `at + after`, or a time decades away when that is past what `Instant`
/// can hold: an absurd `--delay` or `-W` means "never", not a panic.
pub(crate) fn later(at: std::time::Instant, after: std::time::Duration) -> std::time::Instant {
    const NEVER: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);
    at.checked_add(after)
        .or_else(|| at.checked_add(NEVER))
        .unwrap_or(at)
}

/// Resolves `HOST:PORT` to its first address.
pub async fn resolve(target: &str) -> Result<SocketAddr, Error> {
    Ok(dial::resolve(target).await?[0])
}
