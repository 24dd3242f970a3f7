//! The load generator: keeps a window of probes in flight for a fixed time,
//! sending a new probe for every reply, in batches of `sendmmsg`/`recvmmsg`
//! so the generator itself is cheaper per packet than the server under test.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::batch::{Batch, SLOTS};
use crate::ntp::NtpTimestamp;
use crate::wire::stamp::{self, ErrorEstimate, SenderPacket, SenderRepr};
use crate::wire::text::{MAX_TEXT_LEN, TextKind, TextRepr, unix_now};
use crate::{Error, Mode};

/// Replies longer than this are counted but not read whole.
const REPLY_SLOT: usize = 2048;

#[derive(Debug, Clone)]
pub struct FloodConfig {
    pub mode: Mode,
    /// Probes in flight at once.
    pub window: usize,
    pub duration: Duration,
    pub size: usize,
    /// With nothing received for this long, the window is presumed lost and
    /// refilled.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloodSummary {
    pub target: SocketAddr,
    pub mode: Mode,
    pub window: usize,
    pub size: usize,
    pub sent: u64,
    pub received: u64,
    pub elapsed_ms: f64,
    /// Replies received per second.
    pub rate_pps: f64,
    /// Windows given up as lost after the timeout.
    pub stalls: u64,
}

pub async fn flood(
    target: SocketAddr,
    config: FloodConfig,
    shutdown: CancellationToken,
) -> Result<FloodSummary, Error> {
    let socket = dial::udp(target, None).await?;
    let io_error = |source: io::Error| match source.kind() {
        ErrorKind::ConnectionRefused => Error::Receive {
            addr: target,
            source: io::Error::new(
                ErrorKind::ConnectionRefused,
                "port unreachable: is the server running?",
            ),
        },
        _ => Error::Send {
            addr: target,
            source,
        },
    };
    let window = config.window.max(1);
    let size = match config.mode {
        Mode::Text => config.size,
        Mode::Stamp => config.size.max(stamp::PACKET_LEN),
    };
    let mut outgoing = Batch::new(size.max(MAX_TEXT_LEN), false);
    let mut incoming = Batch::new(REPLY_SLOT, false);
    let all: Vec<usize> = (0..SLOTS).collect();
    let mut sequence = 0u32;
    let (mut sent, mut received, mut stalls) = (0u64, 0u64, 0u64);
    let mut in_flight = 0usize;

    let started = Instant::now();
    let end = crate::later(started, config.duration);
    loop {
        // Top the window up.
        while in_flight < window {
            let n = (window - in_flight).min(SLOTS);
            for i in 0..n {
                let len = write_probe(config.mode, &mut outgoing, i, sequence, size);
                outgoing.set_len(i, len);
                sequence = sequence.wrapping_add(1);
            }
            let went = send_all(&socket, &outgoing, &all[..n])
                .await
                .map_err(io_error)?;
            sent += went as u64;
            in_flight += went;
        }
        let wait = tokio::time::timeout(
            config.timeout,
            socket.async_io(Interest::READABLE, || incoming.recv(&socket)),
        );
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(end.into()) => break,
            got = wait => match got {
                Err(_) => {
                    stalls += 1;
                    in_flight = 0;
                }
                Ok(Ok(n)) => {
                    received += n as u64;
                    in_flight = in_flight.saturating_sub(n);
                }
                Ok(Err(err)) => return Err(io_error(err)),
            },
        }
    }
    let elapsed = started
        .elapsed()
        .min(config.duration.max(Duration::from_millis(1)));
    let received = received.min(sent);
    Ok(FloodSummary {
        target,
        mode: config.mode,
        window,
        size,
        sent,
        received,
        elapsed_ms: elapsed.as_secs_f64() * 1e3,
        rate_pps: received as f64 / elapsed.as_secs_f64(),
        stalls,
    })
}

fn write_probe(mode: Mode, batch: &mut Batch, i: usize, sequence: u32, size: usize) -> usize {
    let slot = batch.slot_mut(i);
    match mode {
        Mode::Text => TextRepr {
            kind: TextKind::Ping,
            sequence,
            time: Some(unix_now()),
            interval: None,
        }
        .emit(slot, size),
        Mode::Stamp => {
            let mut packet = SenderPacket::new_checked(&mut slot[..size]).expect("slot fits");
            SenderRepr {
                sequence,
                timestamp: NtpTimestamp::now(),
                error_estimate: ErrorEstimate::LOCAL,
            }
            .emit(&mut packet);
            size
        }
    }
}

async fn send_all(socket: &UdpSocket, batch: &Batch, indices: &[usize]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < indices.len() {
        let rest = &indices[sent..];
        sent += socket
            .async_io(Interest::WRITABLE, || batch.send(socket, rest))
            .await?;
    }
    Ok(sent)
}
