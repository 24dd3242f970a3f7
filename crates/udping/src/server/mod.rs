//! The echo server: answers every datagram (the lab's upper-cased echo, or a
//! STAMP reflector), optionally impaired, and optionally watches heartbeats.
//!
//! Datagrams are received and answered in batches (`recvmmsg`/`sendmmsg`)
//! from preallocated slots. With impairment, replies go through the delay
//! line instead, so a delayed reply never holds up the next datagram.

mod delay;
mod reflect;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::batch::{self, Batch, SLOTS};
use crate::impair::{Decision, Impairer, Impairment};
use crate::monitor::{Beat, Monitor, MonitorConfig, log_event};
use crate::ntp::NtpTimestamp;
use crate::wire::stamp::SenderPacket;
use crate::wire::text::{TextKind, TextRepr, unix_now};
use crate::{Error, Mode};
use delay::{DelayLine, Due, Reply};
use reflect::Reflector;

pub use delay::HOLD_LIMIT;

/// Large enough for any UDP payload, so no datagram is ever truncated.
const MAX_DATAGRAM: usize = 65_535;
/// Socket buffers asked for, so bursts are queued rather than dropped by
/// the kernel (it caps this at net.core.rmem_max / wmem_max).
const SOCKET_BUFFER: usize = 4 << 20;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub mode: Mode,
    /// STAMP only: number replies per sender (§4.3, stateful reflector).
    pub stateful: bool,
    pub impairment: Impairment,
    pub seed: u64,
    /// Watch `Heartbeat <seq> <time>` datagrams instead of echoing them.
    pub heartbeat: Option<MonitorConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Text,
            stateful: false,
            impairment: Impairment::default(),
            seed: 0,
            heartbeat: None,
        }
    }
}

/// How a datagram is named in the impairment log: by the sequence number
/// it carries, or by its arrival count when it carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Sequence(u32),
    Arrival(u64),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Sequence(seq) => write!(f, "seq={seq}"),
            Label::Arrival(n) => write!(f, "datagram={n}"),
        }
    }
}

#[derive(Debug)]
pub struct Server {
    socket: UdpSocket,
    config: ServerConfig,
    monitor: Option<Monitor>,
}

impl Server {
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> Result<Self, Error> {
        let bind_error = |source| Error::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind_error)?;
        socket.set_nonblocking(true).map_err(bind_error)?;
        let sock = socket2::SockRef::from(&socket);
        // Best effort: a smaller buffer only means earlier drops under load.
        let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
        if config.mode == Mode::Stamp {
            batch::enable_ttl(&socket, addr.is_ipv6()).map_err(bind_error)?;
        }
        let socket = UdpSocket::from_std(socket).map_err(bind_error)?;
        let monitor = config.heartbeat.map(Monitor::new);
        Ok(Self {
            socket,
            config,
            monitor,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// The heartbeat monitor, for showing client status while serving.
    pub fn monitor(&self) -> Option<Monitor> {
        self.monitor.clone()
    }

    /// Answers datagrams until `shutdown` is cancelled, then sends the
    /// replies still in the delay line when they fall due.
    pub async fn run(self, shutdown: CancellationToken) {
        let impairment = self.config.impairment;
        let mut worker = Worker {
            socket: &self.socket,
            mode: self.config.mode,
            monitor: self.monitor.as_ref(),
            impairer: (!impairment.is_none()).then(|| Impairer::new(impairment, self.config.seed)),
            reflector: Reflector::new(self.config.stateful),
            line: DelayLine::default(),
            line_full: false,
            outgoing: Vec::with_capacity(SLOTS),
            arrivals: 0,
        };
        if worker.impairer.is_some() {
            info!(seed = self.config.seed, ?impairment, "impairing replies");
        }
        let mut batch = Batch::new(MAX_DATAGRAM, self.config.mode == Mode::Stamp);
        let check_every = self
            .config
            .heartbeat
            // Clients may beat faster than the server's interval (each is
            // judged by its own), so look often enough for those too.
            .map(|hb| {
                (hb.interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(100))
            })
            .unwrap_or(Duration::from_secs(3600));
        let mut check = tokio::time::interval(check_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_due = worker.line.next_due();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now).into()), if next_due.is_some() => {
                    worker.flush().await;
                }
                _ = check.tick(), if worker.monitor.is_some() => {
                    if let Some(monitor) = worker.monitor {
                        monitor.check(Instant::now(), |event| log_event(&event));
                    }
                }
                received = self.socket.async_io(Interest::READABLE, || batch.recv(&self.socket)) => {
                    match received {
                        Ok(_) => worker.answer(&mut batch).await,
                        Err(err) => warn!(%err, "udp receive failed"),
                    }
                }
            }
        }
        while let Some(due) = worker.line.next_due() {
            tokio::time::sleep_until(due.into()).await;
            worker.flush().await;
        }
        info!(datagrams = worker.arrivals, "server stopped");
    }
}

struct Worker<'a> {
    socket: &'a UdpSocket,
    mode: Mode,
    monitor: Option<&'a Monitor>,
    impairer: Option<Impairer>,
    reflector: Reflector,
    line: DelayLine,
    /// The delay line refused a reply and has not accepted one since.
    line_full: bool,
    outgoing: Vec<usize>,
    arrivals: u64,
}

impl Worker<'_> {
    async fn answer(&mut self, batch: &mut Batch) {
        let now = Instant::now();
        let received = NtpTimestamp::now();
        self.outgoing.clear();
        for i in 0..batch.count() {
            self.arrivals += 1;
            let Some(peer) = batch.peer(i) else { continue };
            let decision = self.impairer.as_mut().map(Impairer::decide);
            let label = match decision {
                Some(_) => self.label(batch.payload(i)),
                None => Label::Arrival(self.arrivals),
            };
            if decision.is_some_and(|d| d.drop) {
                debug!(%peer, "impairment: drop {label}");
                continue;
            }
            if let Some(monitor) = self.monitor
                && let Ok(
                    beat @ TextRepr {
                        kind: TextKind::Heartbeat,
                        ..
                    },
                ) = TextRepr::parse(batch.payload(i))
            {
                let beat = Beat {
                    sequence: beat.sequence,
                    sent: beat.time,
                    interval: beat.interval,
                };
                monitor.record(peer, beat, now, unix_now(), |event| log_event(&event));
                continue;
            }
            match self.mode {
                Mode::Text => batch.payload_mut(i).make_ascii_uppercase(),
                Mode::Stamp => {
                    let ttl = batch.ttl(i);
                    if let Err(err) =
                        self.reflector
                            .reflect(batch.payload_mut(i), peer, ttl, received, now)
                    {
                        debug!(%peer, %err, "not a STAMP test packet; ignored");
                        continue;
                    }
                }
            }
            match decision {
                None => self.outgoing.push(i),
                Some(decision) => self.delay(batch.payload(i), peer, label, decision, now),
            }
        }
        self.send_batch(batch).await;
        if self.impairer.is_some() {
            self.flush().await;
        }
    }

    fn label(&self, payload: &[u8]) -> Label {
        let sequence = match self.mode {
            Mode::Text => TextRepr::parse(payload).ok().map(|t| t.sequence),
            Mode::Stamp => SenderPacket::new_checked(payload)
                .ok()
                .map(|p| p.sequence()),
        };
        sequence.map_or(Label::Arrival(self.arrivals), Label::Sequence)
    }

    fn delay(
        &mut self,
        reply: &[u8],
        peer: SocketAddr,
        label: Label,
        decision: Decision,
        now: Instant,
    ) {
        if !self.line.admits(reply.len()) {
            // Warn once per episode: a flood would otherwise flood the log.
            if !std::mem::replace(&mut self.line_full, true) {
                warn!(
                    "impairment: delay line full ({} replies or {} MiB waiting); dropping replies until it drains",
                    delay::MAX_WAITING,
                    delay::MAX_WAITING_BYTES >> 20
                );
            }
            debug!(%peer, "impairment: {label} dropped: delay line full");
            return;
        }
        self.line_full = false;
        let bytes = self.line.buffer(reply);
        let due = self.line.push(
            crate::later(now, decision.delay),
            Reply {
                bytes,
                peer,
                label,
                copies: 1 + u8::from(decision.duplicate),
                reorder: decision.reorder,
            },
        );
        let delay_ms = decision.delay.as_secs_f64() * 1e3;
        let queued = due.saturating_duration_since(crate::later(now, decision.delay));
        if queued.is_zero() {
            debug!(%peer, "impairment: delay {label} by {delay_ms:.3} ms");
        } else {
            debug!(
                %peer,
                "impairment: delay {label} by {delay_ms:.3} ms, plus {:.3} ms behind the previous reply",
                queued.as_secs_f64() * 1e3
            );
        }
    }

    async fn send_batch(&mut self, batch: &Batch) {
        let mut sent = 0;
        while sent < self.outgoing.len() {
            let rest = &self.outgoing[sent..];
            match self
                .socket
                .async_io(Interest::WRITABLE, || batch.send(self.socket, rest))
                .await
            {
                Ok(n) => sent += n.max(1),
                Err(err) => {
                    // The first datagram in `rest` failed; skip only it.
                    let peer = batch.peer(rest[0]);
                    debug!(?peer, %err, "udp reply failed");
                    sent += 1;
                }
            }
        }
    }

    /// Sends every reply that has fallen due.
    async fn flush(&mut self) {
        let now = Instant::now();
        while let Some(due) = self.line.pop_due(now) {
            match due {
                Due::Held { slot } => {
                    let reply = self.line.reply(slot);
                    debug!(peer = %reply.peer, "impairment: reorder {}: held until the next reply", reply.label);
                }
                Due::Expired { slot } => {
                    let reply = self.line.reply(slot);
                    debug!(peer = %reply.peer, "impairment: reorder {}: no later reply within {HOLD_LIMIT:?}, sent in order", reply.label);
                    self.send(slot).await;
                    self.line.release(slot);
                }
                Due::Send { slot, released } => {
                    self.send(slot).await;
                    if let Some(held) = released {
                        let (reply, after) = (self.line.reply(held), self.line.reply(slot).label);
                        debug!(peer = %reply.peer, "impairment: reorder {}: sent after {after}", reply.label);
                        self.send(held).await;
                        self.line.release(held);
                    }
                    self.line.release(slot);
                }
            }
        }
    }

    async fn send(&self, slot: usize) {
        let reply = self.line.reply(slot);
        if reply.copies > 1 {
            debug!(peer = %reply.peer, "impairment: duplicate {}", reply.label);
        }
        for _ in 0..reply.copies {
            if let Err(err) = self.socket.send_to(&reply.bytes, reply.peer).await {
                debug!(peer = %reply.peer, %err, "udp reply failed");
            }
        }
    }
}
