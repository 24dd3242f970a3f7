//! The heartbeat sender: `Heartbeat <seq> <time> interval=<seconds>` every
//! interval, one way, until told to stop.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::wire::text::{MAX_TEXT_LEN, TextKind, TextRepr, unix_now};

#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    pub interval: Duration,
    /// Heartbeats to send; `None` sends until cancelled.
    pub count: Option<u64>,
    /// Local address, so a restarted client keeps its identity.
    pub bind: Option<SocketAddr>,
    pub first_sequence: u32,
}

/// Sends heartbeats until `count` or `shutdown`; calls `on_sent` with each
/// sequence number (and `false` when the kernel reported the server's port
/// unreachable). Returns how many were sent.
pub async fn send_heartbeats(
    target: SocketAddr,
    config: HeartbeatConfig,
    shutdown: CancellationToken,
    mut on_sent: impl FnMut(u32, bool),
) -> Result<u64, Error> {
    let socket = dial::udp(target, config.bind).await?;
    // A zero period would make tokio panic; 1 ms is as fast as is useful.
    let period = config.interval.max(Duration::from_millis(1));
    let mut ticks = interval_at(Instant::now(), period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut buf = [0u8; MAX_TEXT_LEN];
    let mut sequence = config.first_sequence;
    let mut sent = 0u64;
    while config.count.is_none_or(|count| sent < count) {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let beat = TextRepr {
            kind: TextKind::Heartbeat,
            sequence,
            time: Some(unix_now()),
            interval: Some(period),
        };
        let len = beat.emit(&mut buf, 0);
        let reachable = match socket.send(&buf[..len]).await {
            Ok(_) => true,
            // The server is down; heartbeats go on so it sees us come back.
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => false,
            Err(source) => {
                return Err(Error::Send {
                    addr: target,
                    source,
                });
            }
        };
        on_sent(sequence, reachable);
        sequence = sequence.wrapping_add(1);
        sent += 1;
    }
    Ok(sent)
}
