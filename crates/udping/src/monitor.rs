//! The heartbeat monitor: per client address, which sequence numbers were
//! lost, how much the one-way delay varies, and whether the client is alive.
//!
//! One-way delay is the arrival time on our clock minus the send time on the
//! client's; the clocks' offset is unknown but constant, so the variation
//! (RFC 3550's interarrival jitter over these transit times) is meaningful
//! even when the delay itself is not.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, info};

/// Lost sequence numbers logged one by one per gap; a longer gap is logged
/// as a range.
const LOG_EACH_UP_TO: u32 = 32;
/// Recently lost sequence numbers remembered, so a late arrival is
/// recognised rather than taken for a restart.
const REMEMBERED_LOST: usize = 256;
/// Clients tracked at once; the longest-silent stopped client makes room.
const MAX_CLIENTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
pub struct MonitorConfig {
    /// How often clients are expected to beat, until a client announces its
    /// own interval or has beaten often enough to show its cadence.
    pub interval: Duration,
    /// A client is stopped after this many of its intervals of silence.
    pub dead_after: u32,
}

impl MonitorConfig {
    /// The silence after which a client beating every `interval` is stopped.
    pub fn dead_time(&self, interval: Duration) -> Duration {
        interval
            .checked_mul(self.dead_after)
            .unwrap_or(Duration::MAX)
    }
}

/// One heartbeat as the monitor needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    pub sequence: u32,
    /// When the client sent it, on the client's clock since the Unix epoch.
    pub sent: Option<Duration>,
    /// The interval the client says it beats at.
    pub interval: Option<Duration>,
}

/// Where a client's expected interval comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cadence {
    /// Nothing known yet: the server's own `--interval`.
    Assumed,
    /// Seen between consecutive beats (a moving average), for clients
    /// that do not announce one, as the lab's do not.
    Observed(Duration),
    Announced(Duration),
}

/// What the monitor noticed, as it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum HeartbeatEvent {
    New {
        client: SocketAddr,
    },
    Lost {
        client: SocketAddr,
        first: u32,
        last: u32,
    },
    Late {
        client: SocketAddr,
        sequence: u32,
    },
    Duplicate {
        client: SocketAddr,
        sequence: u32,
    },
    Restarted {
        client: SocketAddr,
        sequence: u32,
        after: u32,
    },
    Stopped {
        client: SocketAddr,
        silent: Duration,
        received: u64,
        lost: u64,
        /// One-way delay variation (RFC 3550 jitter), milliseconds.
        delay_variation_ms: f64,
    },
    Back {
        client: SocketAddr,
        silent: Duration,
    },
}

/// One row of the status table.
#[derive(Debug, Clone, Serialize)]
pub struct ClientStatus {
    pub client: SocketAddr,
    pub alive: bool,
    #[serde(serialize_with = "as_secs")]
    pub last_seen: Duration,
    pub received: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub last_sequence: u32,
    /// RFC 3550 jitter of the one-way delay, milliseconds.
    pub delay_variation_ms: f64,
    /// The interval the client is judged by: announced, observed or assumed.
    #[serde(serialize_with = "as_secs")]
    pub interval: Duration,
}

fn as_secs<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

#[derive(Debug)]
struct Client {
    last_seen: Instant,
    last_sequence: u32,
    received: u64,
    lost: u64,
    recent_lost: VecDeque<u32>,
    alive: bool,
    transit: Option<f64>,
    jitter: f64,
    cadence: Cadence,
}

impl Client {
    fn interval(&self, assumed: Duration) -> Duration {
        match self.cadence {
            Cadence::Assumed => assumed,
            Cadence::Observed(interval) | Cadence::Announced(interval) => interval,
        }
    }

    /// Learns the client's cadence from a beat `gap` after the previous one,
    /// `steps` sequence numbers on.
    fn observe(&mut self, gap: Duration, steps: u32, announced: Option<Duration>) {
        self.cadence = match (announced, self.cadence) {
            (Some(interval), _) => Cadence::Announced(interval),
            (None, Cadence::Announced(interval)) => Cadence::Announced(interval),
            (None, _) if steps == 0 => self.cadence,
            (None, Cadence::Assumed) => Cadence::Observed(gap / steps),
            (None, Cadence::Observed(average)) => {
                Cadence::Observed((average * 7 + gap / steps) / 8)
            }
        };
    }
}

/// Shared between the server, which records beats, and whoever shows status.
#[derive(Debug, Clone)]
pub struct Monitor {
    config: MonitorConfig,
    clients: Arc<Mutex<HashMap<SocketAddr, Client>>>,
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            config,
            clients: Arc::default(),
        }
    }

    pub fn config(&self) -> MonitorConfig {
        self.config
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<SocketAddr, Client>> {
        // A panic elsewhere cannot leave the counters inconsistent enough to
        // matter, so keep serving rather than poison every later beat.
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `beat`, received at `now`/`wall` (our clocks).
    pub fn record(
        &self,
        client: SocketAddr,
        beat: Beat,
        now: Instant,
        wall: Duration,
        mut emit: impl FnMut(HeartbeatEvent),
    ) {
        let Beat {
            sequence,
            sent,
            interval: announced,
        } = beat;
        let mut clients = self.clients();
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            evict_one(&mut clients);
        }
        let transit = sent.map(|sent| wall.as_secs_f64() - sent.as_secs_f64());
        let Some(state) = clients.get_mut(&client) else {
            clients.insert(
                client,
                Client {
                    last_seen: now,
                    last_sequence: sequence,
                    received: 1,
                    lost: 0,
                    recent_lost: VecDeque::new(),
                    alive: true,
                    transit,
                    jitter: 0.0,
                    cadence: announced.map_or(Cadence::Assumed, Cadence::Announced),
                },
            );
            emit(HeartbeatEvent::New { client });
            return;
        };
        let silent = now.saturating_duration_since(state.last_seen);
        state.last_seen = now;
        let was_alive = state.alive;
        if !state.alive {
            state.alive = true;
            emit(HeartbeatEvent::Back { client, silent });
        }
        let expected = state.last_sequence.wrapping_add(1);
        let ahead = sequence.wrapping_sub(expected);
        if ahead < u32::MAX / 2 {
            // In order, possibly after a gap. A beat after a silence long
            // enough to stop the client says nothing of its cadence.
            if was_alive || announced.is_some() {
                state.observe(silent, ahead + 1, announced);
            }
            if ahead > 0 {
                let last = sequence.wrapping_sub(1);
                state.lost += u64::from(ahead);
                for lost in expected..=last.max(expected) {
                    if state.recent_lost.len() == REMEMBERED_LOST {
                        state.recent_lost.pop_front();
                    }
                    state.recent_lost.push_back(lost);
                    if lost.wrapping_sub(expected) >= REMEMBERED_LOST as u32 {
                        break;
                    }
                }
                emit(HeartbeatEvent::Lost {
                    client,
                    first: expected,
                    last,
                });
            }
            state.last_sequence = sequence;
        } else if sequence == state.last_sequence {
            emit(HeartbeatEvent::Duplicate { client, sequence });
            return;
        } else if let Some(at) = state.recent_lost.iter().position(|&s| s == sequence) {
            state.recent_lost.remove(at);
            state.lost -= 1;
            emit(HeartbeatEvent::Late { client, sequence });
        } else {
            // Far behind: the client started over, so nothing was lost.
            emit(HeartbeatEvent::Restarted {
                client,
                sequence,
                after: state.last_sequence,
            });
            state.last_sequence = sequence;
            state.recent_lost.clear();
            state.transit = None;
        }
        state.received += 1;
        if let Some(transit) = transit {
            if let Some(previous) = state.transit {
                state.jitter += ((transit - previous).abs() - state.jitter) / 16.0;
            }
            state.transit = Some(transit);
        }
        debug!(
            "client {client} heartbeat seq={sequence}, one-way delay variation {:.3} ms",
            state.jitter * 1e3
        );
    }

    /// Marks clients silent for `dead_after` of their intervals as stopped.
    pub fn check(&self, now: Instant, mut emit: impl FnMut(HeartbeatEvent)) {
        for (&client, state) in self.clients().iter_mut() {
            let silent = now.saturating_duration_since(state.last_seen);
            let dead = self.config.dead_time(state.interval(self.config.interval));
            if state.alive && silent >= dead {
                state.alive = false;
                emit(HeartbeatEvent::Stopped {
                    client,
                    silent,
                    received: state.received,
                    lost: state.lost,
                    delay_variation_ms: state.jitter * 1e3,
                });
            }
        }
    }

    /// Every client, longest-known address order.
    pub fn snapshot(&self, now: Instant) -> Vec<ClientStatus> {
        let mut rows: Vec<ClientStatus> = self
            .clients()
            .iter()
            .map(|(&client, state)| {
                let total = state.received + state.lost;
                ClientStatus {
                    client,
                    alive: state.alive,
                    last_seen: now.saturating_duration_since(state.last_seen),
                    received: state.received,
                    lost: state.lost,
                    loss_percent: if total == 0 {
                        0.0
                    } else {
                        state.lost as f64 * 100.0 / total as f64
                    },
                    last_sequence: state.last_sequence,
                    delay_variation_ms: state.jitter * 1e3,
                    interval: state.interval(self.config.interval),
                }
            })
            .collect();
        rows.sort_by_key(|row| row.client);
        rows
    }
}

fn evict_one(clients: &mut HashMap<SocketAddr, Client>) {
    let oldest = clients
        .iter()
        .min_by_key(|(_, state)| (state.alive, state.last_seen))
        .map(|(&addr, _)| addr);
    if let Some(addr) = oldest {
        clients.remove(&addr);
    }
}

/// Logs an event the way the server reports it.
pub fn log_event(event: &HeartbeatEvent) {
    match event {
        HeartbeatEvent::New { client } => info!("client {client} started sending heartbeats"),
        HeartbeatEvent::Lost {
            client,
            first,
            last,
        } => {
            if last.wrapping_sub(*first) < LOG_EACH_UP_TO {
                let mut seq = *first;
                loop {
                    info!("client {client} lost heartbeat seq={seq}");
                    if seq == *last {
                        break;
                    }
                    seq = seq.wrapping_add(1);
                }
            } else {
                let count = u64::from(last.wrapping_sub(*first)) + 1;
                info!("client {client} lost heartbeats seq={first}..={last} ({count} heartbeats)");
            }
        }
        HeartbeatEvent::Late { client, sequence } => {
            info!("client {client} heartbeat seq={sequence} arrived late (no longer counted lost)")
        }
        HeartbeatEvent::Duplicate { client, sequence } => {
            debug!("client {client} duplicate heartbeat seq={sequence}")
        }
        HeartbeatEvent::Restarted {
            client,
            sequence,
            after,
        } => info!("client {client} restarted at seq={sequence} (last was seq={after})"),
        HeartbeatEvent::Stopped {
            client,
            silent,
            received,
            lost,
            delay_variation_ms,
        } => info!(
            "client {client} stopped (silent for {:.1} s; {received} received, {lost} lost, \
             one-way delay variation {delay_variation_ms:.3} ms)",
            silent.as_secs_f64()
        ),
        HeartbeatEvent::Back { client, silent } => {
            info!(
                "client {client} is back after {:.1} s",
                silent.as_secs_f64()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        Monitor::new(MonitorConfig {
            interval: Duration::from_millis(100),
            dead_after: 3,
        })
    }

    fn beat(m: &Monitor, seq: u32, at: Instant, events: &mut Vec<HeartbeatEvent>) {
        announced_beat(m, seq, None, at, events);
    }

    fn announced_beat(
        m: &Monitor,
        sequence: u32,
        interval: Option<Duration>,
        at: Instant,
        events: &mut Vec<HeartbeatEvent>,
    ) {
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let wall = Duration::from_secs(1000) + at.elapsed();
        let beat = Beat {
            sequence,
            sent: Some(wall),
            interval,
        };
        m.record(client, beat, at, wall, |e| events.push(e));
    }

    fn slow_monitor() -> Monitor {
        Monitor::new(MonitorConfig {
            interval: Duration::from_secs(1),
            dead_after: 3,
        })
    }

    #[test]
    fn an_announced_interval_is_the_clients_own_measure() {
        let m = slow_monitor();
        let start = Instant::now();
        let mut events = Vec::new();
        announced_beat(&m, 1, Some(Duration::from_millis(200)), start, &mut events);
        m.check(start + Duration::from_millis(550), |e| events.push(e));
        assert_eq!(events.len(), 1, "not yet dead: {events:?}");
        // Three of its 0.2 s intervals, not three of the server's seconds.
        m.check(start + Duration::from_millis(600), |e| events.push(e));
        assert!(
            matches!(events[1], HeartbeatEvent::Stopped { .. }),
            "{events:?}"
        );
        assert_eq!(m.snapshot(start)[0].interval, Duration::from_millis(200));
    }

    #[test]
    fn a_silent_lab_client_is_judged_by_its_observed_cadence() {
        let m = slow_monitor();
        let start = Instant::now();
        let mut events = Vec::new();
        let step = Duration::from_millis(200);
        for seq in 1..=5 {
            beat(&m, seq, start + step * (seq - 1), &mut events);
        }
        let last = start + step * 4;
        // A lost beat counts twice its sequence gap, not twice the time.
        beat(&m, 7, last + step * 2, &mut events);
        assert_eq!(m.snapshot(start)[0].interval, step);
        let last = last + step * 2;
        m.check(last + Duration::from_millis(550), |e| events.push(e));
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, HeartbeatEvent::Stopped { .. }))
        );
        m.check(last + Duration::from_millis(600), |e| events.push(e));
        assert!(
            matches!(events.last(), Some(HeartbeatEvent::Stopped { .. })),
            "{events:?}"
        );
        // Coming back after the stop does not stretch the cadence.
        beat(&m, 8, last + Duration::from_secs(5), &mut events);
        assert_eq!(m.snapshot(start)[0].interval, step);
    }

    #[test]
    fn gaps_late_duplicates_and_restarts() {
        let m = monitor();
        let now = Instant::now();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut events = Vec::new();
        for seq in [1, 2, 5, 4, 5, 6, 1] {
            beat(&m, seq, now, &mut events);
        }
        assert_eq!(
            events,
            vec![
                HeartbeatEvent::New { client },
                HeartbeatEvent::Lost {
                    client,
                    first: 3,
                    last: 4
                },
                HeartbeatEvent::Late {
                    client,
                    sequence: 4
                },
                HeartbeatEvent::Duplicate {
                    client,
                    sequence: 5
                },
                HeartbeatEvent::Restarted {
                    client,
                    sequence: 1,
                    after: 6
                },
            ]
        );
        let row = &m.snapshot(now)[0];
        assert_eq!((row.received, row.lost, row.last_sequence), (6, 1, 1));
    }

    #[test]
    fn stopped_and_back() {
        let m = monitor();
        let start = Instant::now();
        let mut events = Vec::new();
        beat(&m, 1, start, &mut events);
        m.check(start + Duration::from_millis(250), |e| events.push(e));
        assert_eq!(events.len(), 1, "not yet dead: {events:?}");
        m.check(start + Duration::from_millis(300), |e| events.push(e));
        assert!(matches!(events[1], HeartbeatEvent::Stopped { .. }));
        m.check(start + Duration::from_millis(900), |e| events.push(e));
        assert_eq!(events.len(), 2, "stopped is reported once");
        assert!(!m.snapshot(start)[0].alive);
        beat(&m, 2, start + Duration::from_secs(1), &mut events);
        assert!(matches!(events[2], HeartbeatEvent::Back { .. }));
        assert!(m.snapshot(start)[0].alive);
    }
}
