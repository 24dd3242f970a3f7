//! The load generator: N clients join one room (netkit's protocol or IRC),
//! then each sends R messages per second, for one or more rates in turn.
//! Every client counts the benchmark messages it receives; a sample of them
//! also measures each message's delivery latency from the time stamp in its
//! text (sender and receiver share this process's clock).

mod rss;
mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::connection::LineBuffer;
pub use rss::{cpu_time, find_listener_pid, resident_kib};
pub use wire::{Line, Protocol, WireError};

/// Clients that measure latency; the others only count.
const OBSERVERS: usize = 50;

/// Logins in flight at once, so a server hashing passwords on one core is
/// not asked for a thousand at the same moment.
const LOGINS_IN_FLIGHT: usize = 16;

/// Bound on connecting and joining, per client.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A step keeps up when at least this share of the expected deliveries
/// arrived within it...
pub const KEEPS_UP_DELIVERY: f64 = 0.98;
/// ...and 99% of messages arrived within this long.
pub const KEEPS_UP_P99: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The servers to load: clients are spread over them round-robin (a
    /// cluster's nodes), and latency is still measured on this process's
    /// one clock.
    pub servers: Vec<SocketAddr>,
    pub protocol: Protocol,
    pub clients: usize,
    /// Messages per second per client, one step per rate, stopping after
    /// the first step that does not keep up.
    pub rates: Vec<f64>,
    /// How long each step is measured.
    pub duration: Duration,
    /// Time at each new rate before measuring, for queues to settle.
    pub warmup: Duration,
    /// User names are this prefix and a number.
    pub prefix: String,
    /// The server processes, for their memory and CPU; found from the
    /// first server's port when empty.
    pub server_pids: Vec<u32>,
    /// Other processes whose memory and CPU are reported beside the
    /// servers' but not counted in their total (a cluster's Redis).
    pub watched: Vec<Watched>,
}

/// A process reported beside the servers, by a name of the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

/// One process's memory at the end of a step and CPU during it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessUsage {
    pub name: String,
    pub pid: u32,
    pub rss_kib: Option<u64>,
    pub cpu: Option<Duration>,
}

impl ProcessUsage {
    /// CPU time per delivered message, the cost a node or the bus adds to
    /// each delivery.
    pub fn cpu_per_delivery(&self, delivered: u64) -> Option<Duration> {
        let cpu = self.cpu?;
        (delivered > 0).then(|| cpu.div_f64(delivered as f64))
    }
}

/// What one step measured.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub rate: f64,
    pub clients: usize,
    /// Clients still connected at the end of the step.
    pub connected: usize,
    pub measured: Duration,
    pub sent: u64,
    pub delivered: u64,
    /// Deliveries if every message reached every other client.
    pub expected: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Every server's resident memory, summed.
    pub server_rss_kib: Option<u64>,
    /// CPU time every server used during the measured window, summed.
    pub server_cpu: Option<Duration>,
    /// Each server (named `server`, `server 2`, ...), then each watched
    /// process.
    pub processes: Vec<ProcessUsage>,
}

impl StepReport {
    pub fn delivered_per_second(&self) -> f64 {
        self.delivered as f64 / self.measured.as_secs_f64()
    }

    pub fn sent_per_second(&self) -> f64 {
        self.sent as f64 / self.measured.as_secs_f64()
    }

    pub fn delivery_ratio(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        self.delivered as f64 / self.expected as f64
    }

    /// The server's CPU time per million deliveries: what fan-out costs,
    /// whatever else the machine is doing.
    pub fn cpu_per_million(&self) -> Option<Duration> {
        let cpu = self.server_cpu?;
        (self.delivered > 0).then(|| cpu.mul_f64(1e6 / self.delivered as f64))
    }

    /// Delivery kept up with sending, at a bounded latency.
    pub fn keeps_up(&self) -> bool {
        self.connected == self.clients
            && self.delivery_ratio() >= KEEPS_UP_DELIVERY
            && self.p99 <= KEEPS_UP_P99
    }
}

/// What the run reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    Joined { clients: usize, took: Duration },
    Step(StepReport),
}

/// Counters shared by every client task.
#[derive(Debug, Default)]
struct Tally {
    measuring: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
    connected: AtomicU64,
    latencies: Mutex<Vec<u32>>,
    closing: Mutex<Option<String>>,
}

/// Runs every step; `progress` hears about each as it completes.
pub async fn run(
    config: BenchConfig,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<StepReport>, WireError> {
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let (rate_tx, rate_rx) = watch::channel(0.0f64);
    let stop = CancellationToken::new();
    let _stop_on_return = stop.clone().drop_guard();
    let logins = Arc::new(Semaphore::new(LOGINS_IN_FLIGHT));
    let mut joining = JoinSet::new();
    for index in 0..config.clients {
        let client = Client {
            index,
            name: format!("{}{index:04}", config.prefix),
            config: config.clone(),
            tally: tally.clone(),
            rate: rate_rx.clone(),
            epoch: started,
            stop: stop.clone(),
        };
        let logins = logins.clone();
        joining.spawn(async move {
            let permit = logins.acquire_owned().await.expect("never closed");
            let joined = timeout(JOIN_TIMEOUT, client.join()).await;
            drop(permit);
            match joined {
                Ok(Ok((stream, lines))) => {
                    tokio::spawn(client.run(stream, lines));
                    Ok(())
                }
                Ok(Err(err)) => Err(err),
                Err(_) => Err(WireError::Closed(client.name.clone())),
            }
        });
    }
    while let Some(joined) = joining.join_next().await {
        joined.expect("join task does not panic")?;
    }
    progress(Progress::Joined {
        clients: config.clients,
        took: started.elapsed(),
    });
    let servers = if config.server_pids.is_empty() {
        config
            .servers
            .first()
            .and_then(|server| find_listener_pid(*server))
            .into_iter()
            .collect()
    } else {
        config.server_pids.clone()
    };
    let processes = process_names(&servers, &config.watched);

    let mut reports = Vec::new();
    for &rate in &config.rates {
        rate_tx.send_replace(rate);
        sleep(config.warmup).await;
        tally.sent.store(0, Ordering::Relaxed);
        tally.delivered.store(0, Ordering::Relaxed);
        tally.latencies.lock().expect("not poisoned").clear();
        let window = Instant::now();
        let cpu_before: Vec<_> = processes.iter().map(|(_, pid)| cpu_time(*pid)).collect();
        tally.measuring.store(true, Ordering::Release);
        sleep(config.duration).await;
        tally.measuring.store(false, Ordering::Release);
        let cpu_after: Vec<_> = processes.iter().map(|(_, pid)| cpu_time(*pid)).collect();
        let measured = window.elapsed();
        let sent = tally.sent.load(Ordering::Relaxed);
        let mut latencies = std::mem::take(&mut *tally.latencies.lock().expect("not poisoned"));
        latencies.sort_unstable();
        let at = |q: f64| {
            let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            Duration::from_micros(latencies.get(index).copied().unwrap_or(0).into())
        };
        let report = StepReport {
            rate,
            clients: config.clients,
            connected: tally.connected.load(Ordering::Relaxed) as usize,
            measured,
            sent,
            delivered: tally.delivered.load(Ordering::Relaxed),
            expected: sent * (config.clients as u64).saturating_sub(1),
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
            server_rss_kib: None,
            server_cpu: None,
            processes: processes
                .iter()
                .zip(cpu_before.iter().zip(&cpu_after))
                .map(|((name, pid), (before, after))| ProcessUsage {
                    name: name.clone(),
                    pid: *pid,
                    rss_kib: resident_kib(*pid),
                    cpu: after
                        .zip(*before)
                        .map(|(after, before)| after.saturating_sub(before)),
                })
                .collect(),
        };
        let servers = &report.processes[..servers.len()];
        let report = StepReport {
            server_rss_kib: total(servers.iter().map(|usage| usage.rss_kib)),
            server_cpu: total(servers.iter().map(|usage| usage.cpu)),
            ..report
        };
        progress(Progress::Step(report.clone()));
        let keeps_up = report.keeps_up();
        reports.push(report);
        // Rates are raised until delivery falls behind; higher ones would
        // only fall further behind.
        if !keeps_up {
            break;
        }
    }
    if let Some(why) = tally.closing.lock().expect("not poisoned").take() {
        tracing::warn!(%why, "the server closed a benchmark client");
    }
    Ok(reports)
}

/// The servers named `server`, `server 2`, ... then the watched
/// processes by their own names, each with its pid.
fn process_names(servers: &[u32], watched: &[Watched]) -> Vec<(String, u32)> {
    let servers = servers.iter().enumerate().map(|(index, pid)| {
        let name = match index {
            0 => "server".to_string(),
            n => format!("server {}", n + 1),
        };
        (name, *pid)
    });
    servers
        .chain(watched.iter().map(|w| (w.name.clone(), w.pid)))
        .collect()
}

/// The sum, when every part is known (a total missing a part would
/// understate it), and there is at least one.
fn total<T: std::iter::Sum<T>>(parts: impl Iterator<Item = Option<T>>) -> Option<T> {
    let parts: Option<Vec<T>> = parts.collect();
    parts
        .filter(|parts| !parts.is_empty())
        .map(|parts| parts.into_iter().sum())
}

/// The server client `index` connects to: round-robin over `servers`.
fn server_for(servers: &[SocketAddr], index: usize) -> SocketAddr {
    servers[index % servers.len()]
}

/// Connects client `index`. To a server on 127.0.0.0/8 each client comes
/// from an address of its own in that network (127.100.0.1, 127.100.0.2,
/// ...), as a thousand real users would: a server's per-address limits
/// then apply to each client, not to the whole benchmark.
async fn connect(server: SocketAddr, index: usize) -> std::io::Result<TcpStream> {
    let SocketAddr::V4(v4) = server else {
        return TcpStream::connect(server).await;
    };
    if !v4.ip().is_loopback() {
        return TcpStream::connect(server).await;
    }
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((spread_source(index), 0)))?;
    socket.connect(server).await
}

/// 127.100.0.1 to 127.100.0.250, then 127.100.1.1, ...: never a network
/// or broadcast-looking host byte.
fn spread_source(index: usize) -> Ipv4Addr {
    let host = (index % 250) as u8 + 1;
    let block = ((index / 250) % 256) as u8;
    Ipv4Addr::new(127, 100, block, host)
}

struct Client {
    index: usize,
    name: String,
    config: BenchConfig,
    tally: Arc<Tally>,
    rate: watch::Receiver<f64>,
    epoch: Instant,
    stop: CancellationToken,
}

impl Client {
    async fn join(&self) -> Result<(TcpStream, LineBuffer), WireError> {
        let server = server_for(&self.config.servers, self.index);
        let mut stream = connect(server, self.index).await?;
        stream.set_nodelay(true)?;
        let mut lines = LineBuffer::new();
        self.config
            .protocol
            .join(&mut stream, &mut lines, &self.name)
            .await?;
        Ok((stream, lines))
    }

    async fn run(self, stream: TcpStream, mut lines: LineBuffer) {
        self.tally.connected.fetch_add(1, Ordering::Relaxed);
        let (mut reader, writer) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let sending = tokio::spawn(send(
            self.index,
            self.config.clients,
            self.config.protocol.clone(),
            writer.clone(),
            self.rate.clone(),
            self.tally.clone(),
            self.epoch,
            self.stop.clone(),
        ));
        let observer = self.index < OBSERVERS;
        let protocol = &self.config.protocol;
        let mut chunk = vec![0u8; 64 * 1024];
        let mut samples = Vec::new();
        'read: loop {
            let n = tokio::select! {
                _ = self.stop.cancelled() => break,
                n = reader.read(&mut chunk) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                },
            };
            lines.extend(&chunk[..n]);
            let now = self.epoch.elapsed().as_micros() as u64;
            let mut delivered = 0;
            loop {
                let line = match lines.next_line() {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(_) => break 'read,
                };
                match protocol.classify(&line) {
                    Line::Message(sent_at) => {
                        delivered += 1;
                        if let (true, Some(sent_at)) = (observer, sent_at) {
                            samples.push(now.saturating_sub(sent_at).min(u32::MAX.into()) as u32);
                        }
                    }
                    Line::Ping(ping) => {
                        let _ = writer.lock().await.write_all(&protocol.answer(&ping)).await;
                    }
                    Line::Closing(why) => {
                        *self.tally.closing.lock().expect("not poisoned") = Some(why);
                    }
                    Line::Other => {}
                }
            }
            if self.tally.measuring.load(Ordering::Acquire) {
                self.tally.delivered.fetch_add(delivered, Ordering::Relaxed);
                if !samples.is_empty() {
                    self.tally
                        .latencies
                        .lock()
                        .expect("not poisoned")
                        .append(&mut samples);
                }
            }
            samples.clear();
        }
        self.tally.connected.fetch_sub(1, Ordering::Relaxed);
        sending.abort();
    }
}

/// Sends at the current rate, each client offset by its index so sends
/// are spread evenly over each period.
#[allow(clippy::too_many_arguments)]
async fn send(
    index: usize,
    clients: usize,
    protocol: Protocol,
    writer: Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>,
    mut rate: watch::Receiver<f64>,
    tally: Arc<Tally>,
    epoch: Instant,
    stop: CancellationToken,
) {
    loop {
        let current = *rate.borrow_and_update();
        if current <= 0.0 {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = rate.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let period = Duration::from_secs_f64(1.0 / current);
        let mut next = Instant::now() + period.mul_f64(index as f64 / clients as f64);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = rate.changed() => {
                    if changed.is_err() { return }
                    break;
                }
                _ = sleep_until(next) => {}
            }
            let message = protocol.message(epoch.elapsed().as_micros() as u64);
            if writer.lock().await.write_all(&message).await.is_err() {
                return;
            }
            if tally.measuring.load(Ordering::Acquire) {
                tally.sent.fetch_add(1, Ordering::Relaxed);
            }
            next += period;
            // Behind schedule (the generator is saturated): do not burst to
            // catch up, which would hide it; the sent rate will show it.
            let now = Instant::now();
            if next < now {
                next = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_clients_come_from_a_thousand_loopback_addresses() {
        let sources: std::collections::HashSet<Ipv4Addr> = (0..1000).map(spread_source).collect();
        assert_eq!(sources.len(), 1000);
        assert!(
            sources
                .iter()
                .all(|ip| ip.is_loopback() && ip.octets()[3] != 0)
        );
        assert_eq!(spread_source(0), Ipv4Addr::new(127, 100, 0, 1));
        assert_eq!(spread_source(250), Ipv4Addr::new(127, 100, 1, 1));
    }

    #[test]
    fn clients_are_spread_round_robin_over_the_servers() {
        let servers: Vec<SocketAddr> = vec![
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        ];
        let ports: Vec<u16> = (0..5).map(|i| server_for(&servers, i).port()).collect();
        assert_eq!(ports, [1000, 2000, 1000, 2000, 1000]);
    }

    #[test]
    fn servers_are_numbered_and_watched_processes_keep_their_names() {
        let watched = [Watched {
            name: "redis".into(),
            pid: 30,
        }];
        let names = process_names(&[10, 20], &watched);
        assert_eq!(
            names,
            [
                ("server".to_string(), 10),
                ("server 2".to_string(), 20),
                ("redis".to_string(), 30)
            ]
        );
    }

    #[test]
    fn a_total_needs_every_part() {
        assert_eq!(total([Some(1u64), Some(2)].into_iter()), Some(3));
        assert_eq!(total([Some(1u64), None].into_iter()), None);
        assert_eq!(total(std::iter::empty::<Option<u64>>()), None);
    }

    #[test]
    fn cpu_per_delivery_divides_by_what_was_delivered() {
        let usage = ProcessUsage {
            name: "server".into(),
            pid: 1,
            rss_kib: None,
            cpu: Some(Duration::from_secs(1)),
        };
        assert_eq!(usage.cpu_per_delivery(1000), Some(Duration::from_millis(1)));
        assert_eq!(usage.cpu_per_delivery(0), None);
    }
}
