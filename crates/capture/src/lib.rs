//! Packet capture for netkit: read and write pcap/pcapng files, capture live
//! from an `AF_PACKET` socket with a classic BPF program attached in the
//! kernel, compile tcpdump's filter language to that program, and decode
//! frames into values the command line renders.
//!
//! The decoders' entry points are [`decode::decode`] (a frame's bytes and link
//! type to a [`decode::Packet`]), [`file::Reader::open`] over any bytes, and
//! [`filter::parse`] / [`filter::compile`]: all take untrusted input and never
//! panic on it.

pub mod app;
pub mod decode;
mod error;
pub mod file;
pub mod filter;
pub mod live;
pub mod tcp;

pub use error::Error;

use std::time::Duration;

/// How a frame's first bytes are laid out, as pcap's LINKTYPE_ numbers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1): what Linux gives for `lo` and Ethernet devices.
    Ethernet,
    /// LINKTYPE_RAW (101): the packet starts at the IP header.
    Raw,
    /// LINKTYPE_LINUX_SLL (113): the "cooked" header of `-i any`.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): tcpdump's newer cooked header.
    LinuxSll2,
    /// LINKTYPE_NULL (0): BSD loopback, a 4-byte host-order family.
    Null,
}

impl LinkType {
    pub fn from_number(number: u32) -> Option<LinkType> {
        Some(match number {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            101 | 228 | 229 => LinkType::Raw,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    pub fn number(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// The name tcpdump prints (`link-type EN10MB (Ethernet)`).
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Null => "NULL (BSD loopback)",
            LinkType::Ethernet => "EN10MB (Ethernet)",
            LinkType::Raw => "RAW (Raw IP)",
            LinkType::LinuxSll => "LINUX_SLL (Linux cooked v1)",
            LinkType::LinuxSll2 => "LINUX_SLL2 (Linux cooked v2)",
        }
    }
}

/// One captured frame: when it was seen, how long it was on the wire, and the
/// bytes kept (at most the snapshot length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Since the Unix epoch, to the nanosecond when the source has it.
    pub timestamp: Duration,
    pub original_len: u32,
    pub data: Vec<u8>,
}
