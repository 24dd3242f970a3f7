//! The probe engine: any number of targets over one socket per address
//! family, a send schedule, and replies matched to probes by source
//! address, identifier and sequence number.
//!
//! It runs on the calling thread, waiting in `ppoll` with nanosecond
//! timeouts so intervals and timeouts are kept exactly; round trips are
//! measured from the kernel's receive timestamp (`SO_TIMESTAMPNS`), so
//! nothing the caller does in its event callback delays a measurement.
//!
//! Timing follows iputils: the next probe goes `interval` after the last
//! one was sent; below a millisecond ping "floods", sending as soon as the
//! last probe is answered or 10 ms have passed; after the last probe it
//! waits twice the longest round trip (at least one interval) when replies
//! have come, the timeout otherwise. Unlike iputils, each probe also has
//! its own timeout: a reply after it counts as late, not as received.

mod host;
mod receive;
mod schedule;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::socket::{self, IcmpSocket, OpenError, SocketKind};
use crate::wire::icmpv4;
use crate::{Error, Event, Family, Remote, Statistics};

use host::Host;

/// Probes sent in one go before the sockets are read again, so replies
/// never pile up past the receive buffer.
const SEND_BATCH: usize = 64;
/// Receive buffer per socket, plus a share per target.
const RECEIVE_BUFFER: usize = 256 * 1024;
const RECEIVE_BUFFER_PER_TARGET: usize = 2 * 1024;
const RECEIVE_BUFFER_MAX: usize = 64 * 1024 * 1024;

/// How a run probes each target.
#[derive(Debug, Clone)]
pub struct Config {
    /// Probes per target (`-c`); `None` runs until stopped or the deadline.
    pub count: Option<u64>,
    /// Between probes to the same target (`-i`).
    pub interval: Duration,
    /// How long each probe waits for its reply (`-W`).
    pub timeout: Duration,
    /// End the whole run after this long (`-w`). As in iputils, with a
    /// deadline a target is probed until `count` replies or errors come.
    pub deadline: Option<Duration>,
    /// Echo data bytes per probe (`-s`).
    pub payload_len: usize,
    /// TTL or hop limit of the probes (`-t`).
    pub hop_limit: Option<u8>,
    /// Report probes still unanswered when the next one is sent (`-O`).
    pub report_outstanding: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            count: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            deadline: None,
            payload_len: 56,
            hop_limit: None,
            report_outstanding: false,
        }
    }
}

impl Config {
    fn flood(&self) -> bool {
        self.interval < Duration::from_millis(1)
    }
}

/// One address to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    /// The interface of a link-local IPv6 address; 0 otherwise.
    pub scope_id: u32,
}

impl From<IpAddr> for Target {
    fn from(addr: IpAddr) -> Self {
        Target { addr, scope_id: 0 }
    }
}

impl Target {
    fn socket_addr(&self) -> SocketAddr {
        match self.addr {
            IpAddr::V6(addr) => SocketAddr::V6(SocketAddrV6::new(addr, 0, 0, self.scope_id)),
            IpAddr::V4(_) => SocketAddr::new(self.addr, 0),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per target, in the order given.
    pub hosts: Vec<Statistics>,
    /// The run was stopped (SIGINT) before it finished.
    pub stopped: bool,
}

/// A ready-to-run set of probes: sockets open, targets checked.
#[derive(Debug)]
pub struct Session {
    sockets: Sockets,
    state: State,
}

#[derive(Debug, Default)]
struct Sockets {
    v4: Option<IcmpSocket>,
    v6: Option<IcmpSocket>,
}

impl Sockets {
    fn get(&self, family: Family) -> Option<&IcmpSocket> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }
}

/// Everything but the sockets, so a socket can be read while the state
/// it feeds is updated.
#[derive(Debug)]
struct State {
    config: Config,
    hosts: Vec<Host>,
    by_addr: HashMap<IpAddr, usize>,
    /// The only target of a family, which claims replies from addresses
    /// that were not probed (a broadcast, a NAT rewriting the source).
    only: [Option<usize>; 2],
    schedule: BinaryHeap<Reverse<(Instant, usize)>>,
    /// (deadline, host, probe number), in send order: every probe has the
    /// same timeout, so this is also deadline order.
    expiry: VecDeque<(Instant, usize, u64)>,
    lingering: BinaryHeap<Reverse<(Instant, usize)>>,
    remaining: usize,
    start: Instant,
    /// Settled probes are remembered this long, for duplicates and late
    /// replies.
    keep: Duration,
}

impl Session {
    /// Checks the targets and opens one socket per address family they use.
    pub fn new(config: Config, targets: &[Target]) -> Result<Session, Error> {
        if targets.is_empty() {
            return Err(Error::NoTargets);
        }
        if config.interval < crate::MIN_USER_INTERVAL && !crate::is_privileged() {
            return Err(Error::IntervalTooShort {
                interval: config.interval,
            });
        }
        let mut by_addr = HashMap::with_capacity(targets.len());
        let mut families = [0usize; 2];
        for (index, target) in targets.iter().enumerate() {
            if by_addr.insert(target.addr, index).is_some() {
                return Err(Error::DuplicateTarget { addr: target.addr });
            }
            let family = Family::of(&target.addr);
            let max = family.max_payload(crate::is_privileged());
            if config.payload_len > max {
                return Err(Error::PayloadTooLarge {
                    size: config.payload_len,
                    max,
                });
            }
            families[family_index(family)] += 1;
        }
        let ident = next_ident();
        let mut sockets = Sockets::default();
        for family in [Family::V4, Family::V6] {
            if families[family_index(family)] == 0 {
                continue;
            }
            let socket = IcmpSocket::open(family, ident).map_err(|err| match err {
                OpenError::NotPermitted => Error::NotPermitted {
                    family,
                    gid: socket::effective_ids().1,
                },
                OpenError::Failed(source) => Error::Socket { family, source },
            })?;
            if let Some(hops) = config.hop_limit {
                socket
                    .set_hop_limit(hops)
                    .map_err(|source| Error::SocketOption {
                        what: "the TTL",
                        source,
                    })?;
            }
            socket.set_receive_buffer(
                (RECEIVE_BUFFER + RECEIVE_BUFFER_PER_TARGET * targets.len())
                    .min(RECEIVE_BUFFER_MAX),
            );
            match family {
                Family::V4 => sockets.v4 = Some(socket),
                Family::V6 => sockets.v6 = Some(socket),
            }
        }
        let only_of = |family: Family| {
            (families[family_index(family)] == 1)
                .then(|| targets.iter().position(|t| Family::of(&t.addr) == family))
                .flatten()
        };
        let now = Instant::now();
        let keep = (config.timeout * 2).max(Duration::from_secs(1));
        Ok(Session {
            state: State {
                hosts: targets
                    .iter()
                    .map(|target| Host::new(target.socket_addr(), now))
                    .collect(),
                only: [only_of(Family::V4), only_of(Family::V6)],
                by_addr,
                schedule: BinaryHeap::with_capacity(targets.len()),
                expiry: VecDeque::new(),
                lingering: BinaryHeap::new(),
                remaining: targets.len(),
                start: now,
                keep,
                config,
            },
            sockets,
        })
    }

    /// The kind of socket carrying this family's probes, if any target
    /// uses the family.
    pub fn socket_kind(&self, family: Family) -> Option<SocketKind> {
        self.sockets.get(family).map(IcmpSocket::kind)
    }

    /// Probes every target until each is done, the deadline passes or
    /// `remote` stops it, calling `on_event` as things happen.
    pub fn run(
        mut self,
        remote: &Remote,
        mut on_event: impl FnMut(Event),
    ) -> Result<Report, Error> {
        let emit: &mut dyn FnMut(Event) = &mut on_event;
        let config = &self.state.config;
        let mut probe = vec![0u8; icmpv4::HEADER_LEN + config.payload_len];
        let mut data = vec![0u8; config.payload_len];
        let mut buf = vec![0u8; (config.payload_len + 256).max(2048)];
        let mut control = [0u8; 512];
        self.state.begin(Instant::now());
        let deadline = self
            .state
            .config
            .deadline
            .map(|after| self.state.start + after);
        let mut stopped = false;
        loop {
            if remote.is_stopped() {
                stopped = true;
                break;
            }
            if remote.take_status() {
                self.state.report_status(emit);
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                break;
            }
            let more = self.send_due(now, &mut probe, &mut data, emit);
            self.state.expire(Instant::now(), emit);
            if self.state.remaining == 0 {
                break;
            }
            let wake = match (more, self.state.next_wake(), deadline) {
                (true, _, _) => Some(Instant::now()),
                (false, Some(next), Some(deadline)) => Some(next.min(deadline)),
                (false, next, deadline) => next.or(deadline),
            };
            self.wait(wake, remote, &mut buf, &mut control, emit)?;
        }
        Ok(self.state.finish(stopped, emit))
    }

    /// Sends the probes that are due, at most a batch; returns whether more
    /// are due right away.
    fn send_due(
        &mut self,
        now: Instant,
        probe: &mut [u8],
        data: &mut [u8],
        emit: &mut dyn FnMut(Event),
    ) -> bool {
        let mut sent = 0;
        while let Some(&Reverse((at, index))) = self.state.schedule.peek() {
            if at > now {
                return false;
            }
            if sent == SEND_BATCH {
                return true;
            }
            self.state.schedule.pop();
            let host = &self.state.hosts[index];
            if host.done || host.next_send != Some(at) {
                continue;
            }
            let Some(socket) = self.sockets.get(host.family) else {
                continue;
            };
            if !self.state.send(socket, index, probe, data, emit) {
                // The socket's send buffer is full: give the kernel a moment.
                let retry = Instant::now() + Duration::from_millis(1);
                self.state.hosts[index].next_send = Some(retry);
                self.state.schedule.push(Reverse((retry, index)));
                return false;
            }
            sent += 1;
        }
        false
    }

    /// Waits until `wake` (or forever) for replies, errors or a word from
    /// `remote`, and reads whatever arrived.
    fn wait(
        &mut self,
        wake: Option<Instant>,
        remote: &Remote,
        buf: &mut [u8],
        control: &mut [u8],
        emit: &mut dyn FnMut(Event),
    ) -> Result<(), Error> {
        let pollfd = |fd: std::os::fd::BorrowedFd<'_>| libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [pollfd(remote.wake_fd()); 3];
        let mut families = [None; 3];
        let mut len = 1;
        for socket in [&self.sockets.v4, &self.sockets.v6].into_iter().flatten() {
            fds[len] = pollfd(socket.as_fd());
            families[len] = Some(socket.family());
            len += 1;
        }
        let timeout = wake.map(|wake| wake.saturating_duration_since(Instant::now()));
        socket::poll(&mut fds[..len], timeout).map_err(Error::Poll)?;
        if fds[0].revents != 0 {
            remote.drain();
        }
        for (fd, family) in fds[..len].iter().zip(families) {
            let Some(socket) = family.and_then(|family| self.sockets.get(family)) else {
                continue;
            };
            if fd.revents & libc::POLLERR != 0 {
                self.state.drain_errors(socket, buf, control, emit);
            }
            if fd.revents & libc::POLLIN != 0 {
                self.state.drain(socket, buf, control, emit);
            }
        }
        Ok(())
    }
}

fn family_index(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// The echo identifier for raw sockets: the process id, offset for each
/// session so concurrent sessions in one process do not take each other's
/// replies.
fn next_ident() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static SESSIONS: AtomicU16 = AtomicU16::new(0);
    let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
    (std::process::id() as u16).wrapping_add(session.wrapping_mul(7919))
}
