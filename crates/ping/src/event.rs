//! What a session reports while it runs, in the order it happens.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::Statistics;
use crate::wire::{icmpv4, icmpv6, payload::Mismatch};

/// One thing that happened to one target (`host` indexes the targets the
/// session was given).
#[derive(Debug)]
pub enum Event {
    Reply(Reply),
    Error(ProbeError),
    /// A probe got no reply within its timeout, or before its target (or
    /// the run) was done.
    NoReply {
        host: usize,
        seq: u16,
        sent: SystemTime,
    },
    /// About to send the next probe while the last one has no reply yet
    /// (reported when `Config::report_outstanding` is set).
    NoAnswerYet {
        host: usize,
        seq: u16,
        at: SystemTime,
    },
    /// The kernel refused to send a probe (no route, for instance). The
    /// probe counts as sent, as in iputils.
    SendFailed {
        host: usize,
        seq: u16,
        error: io::Error,
    },
    /// The statistics so far, when asked for (`Remote::ask_status`).
    Status {
        host: usize,
        stats: Statistics,
    },
    /// This host's stack reported an error for a probe (`ee_origin` local,
    /// e.g. a message too long for the path MTU). Counted as an error.
    LocalError {
        host: usize,
        error: LocalError,
    },
}

/// An error this host's own stack queued for a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalError {
    /// The probe does not fit the path MTU.
    MessageTooLong { mtu: u32 },
    /// Any other errno.
    Os(i32),
}

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalError::MessageTooLong { mtu } => write!(f, "message too long, mtu={mtu}"),
            LocalError::Os(errno) => f.write_str(&crate::socket::describe_errno(*errno)),
        }
    }
}

/// How a reply counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The first reply to a probe still waiting for one.
    Fresh,
    /// Another reply to a probe already answered (`DUP!`).
    Duplicate,
    /// A reply to a probe that had already timed out: reported, not counted
    /// as received.
    Late,
    /// The checksum did not verify; not counted as received.
    BadChecksum,
}

/// An echo reply matched to one of our probes.
#[derive(Debug, Clone)]
pub struct Reply {
    pub host: usize,
    pub seq: u16,
    pub from: IpAddr,
    /// ICMP message length: header and data.
    pub bytes: usize,
    /// TTL or hop limit of the reply, when the kernel reported it.
    pub hop_limit: Option<u8>,
    /// Kernel receive time minus send time; `None` for probes too short to
    /// be timed, as in iputils.
    pub rtt: Option<Duration>,
    pub status: ReplyStatus,
    /// The reply came from another address than the one probed.
    pub wrong_source: bool,
    /// The echoed data differs from what we sent.
    pub mismatch: Option<DataMismatch>,
    /// When the probe was sent and the reply arrived (wall clock).
    pub sent: SystemTime,
    pub at: SystemTime,
}

impl Reply {
    /// The round trip in whole microseconds as iputils computes it (both
    /// times truncated, then subtracted), which is what ping prints and
    /// what the statistics add up; `None` when the probe was not timed.
    pub fn rtt_micros(&self) -> Option<i64> {
        self.rtt
            .map(|_| crate::stats::micros_between(self.sent, self.at))
    }
}

/// The first echoed byte that differs, and the data as received (from
/// where the pattern starts) for a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMismatch {
    pub first: Mismatch,
    pub data: Vec<u8>,
    /// Offset in the echo data of `data[0]`.
    pub offset: usize,
}

/// An ICMP error or advice matched to one of our probes.
#[derive(Debug, Clone)]
pub struct ProbeError {
    pub host: usize,
    pub seq: u16,
    /// Who sent the error: a router, or this host for an unreachable
    /// neighbour.
    pub from: IpAddr,
    pub message: IcmpError,
    /// When the probe was sent and the error arrived (wall clock).
    pub sent: SystemTime,
    pub at: SystemTime,
}

/// An ICMP or ICMPv6 error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    V4(icmpv4::ErrorMessage),
    V6(icmpv6::ErrorMessage),
}

impl IcmpError {
    /// Whether the probe failed (and the error counts in the summary).
    /// Redirects and source quench are only advice.
    pub fn is_failure(&self) -> bool {
        match self {
            IcmpError::V4(message) => message.is_failure(),
            IcmpError::V6(_) => true,
        }
    }

    pub fn msg_type(&self) -> u8 {
        match self {
            IcmpError::V4(message) => message.msg_type().into(),
            IcmpError::V6(message) => message.msg_type().into(),
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            IcmpError::V4(message) => message.code(),
            IcmpError::V6(message) => message.code(),
        }
    }
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcmpError::V4(message) => message.fmt(f),
            IcmpError::V6(message) => message.fmt(f),
        }
    }
}
