//! Frame bytes to header values, smoltcp-style in spirit: every field read
//! is bounds-checked once, unknown types are kept as numbers, and a frame
//! cut by the snapshot length decodes as far as its bytes go.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use serde::Serialize;

use crate::LinkType;

/// A decoded frame. `payload` indexes the frame's bytes after the last
/// header understood; `payload_len` is the length the headers announce
/// (more than the range holds when the capture was cut short).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    pub link: Link,
    pub network: Network,
    pub transport: Option<Transport>,
    #[serde(skip)]
    pub payload: Range<usize>,
    pub payload_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Link {
    Ethernet {
        src: String,
        dst: String,
        ethertype: u16,
    },
    Cooked {
        packet_type: u16,
        ethertype: u16,
    },
    Raw,
    Null {
        family: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Network {
    Ipv4(Ipv4),
    Ipv6(Ipv6),
    Arp,
    /// An EtherType netkit does not decode, or a header cut short.
    Other {
        ethertype: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv4 {
    pub header_len: u8,
    pub tos: u8,
    pub total_len: u16,
    pub id: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    pub fragment_offset: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub checksum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6 {
    pub traffic_class: u8,
    pub flow_label: u32,
    pub payload_len: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

impl Network {
    pub fn addresses(&self) -> Option<(IpAddr, IpAddr)> {
        match self {
            Network::Ipv4(ip) => Some((ip.src.into(), ip.dst.into())),
            Network::Ipv6(ip) => Some((ip.src.into(), ip.dst.into())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Transport {
    Tcp(Tcp),
    Udp(Udp),
    Icmp(Icmp),
    Icmpv6(Icmp),
    Other { protocol: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub header_len: u8,
    pub flags: TcpFlags,
    pub window: u16,
    pub checksum: u16,
    pub urgent: u16,
    pub options: Vec<TcpOption>,
}

/// The nine flag bits, low bit FIN, as tshark's `tcp.flags` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;

    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }

    /// tcpdump's letters: `S`, `F`, `R`, `P`, `U`, `E`, `W`, then `.` for ACK.
    pub fn letters(self) -> String {
        let mut out = String::new();
        for (flag, letter) in [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
            (Self::ACK, '.'),
        ] {
            if self.has(flag) {
                out.push(letter);
            }
        }
        if out.is_empty() {
            out.push_str("none");
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TcpOption {
    Eol,
    Nop,
    Mss { value: u16 },
    WindowScale { shift: u8 },
    SackPermitted,
    Sack { blocks: Vec<(u32, u32)> },
    Timestamp { value: u32, echo: u32 },
    Unknown { code: u8, len: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Udp {
    pub src_port: u16,
    pub dst_port: u16,
    pub length: u16,
    pub checksum: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icmp {
    #[serde(rename = "icmp_type")]
    pub kind: u8,
    pub code: u8,
    pub checksum: u16,
    /// Identifier and sequence of an echo request or reply.
    pub echo: Option<(u16, u16)>,
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Decodes one frame. Never fails: what cannot be read is left undecoded.
pub fn decode(link: LinkType, data: &[u8]) -> Packet {
    let (link_header, network_at, ethertype) = match link {
        LinkType::Ethernet if data.len() >= 14 => (
            Link::Ethernet {
                dst: mac(&data[0..6]),
                src: mac(&data[6..12]),
                ethertype: be16(data, 12).unwrap_or(0),
            },
            14,
            be16(data, 12),
        ),
        LinkType::LinuxSll if data.len() >= 16 => (
            Link::Cooked {
                packet_type: be16(data, 0).unwrap_or(0),
                ethertype: be16(data, 14).unwrap_or(0),
            },
            16,
            be16(data, 14),
        ),
        LinkType::LinuxSll2 if data.len() >= 20 => (
            Link::Cooked {
                packet_type: u16::from(data[10]),
                ethertype: be16(data, 0).unwrap_or(0),
            },
            20,
            be16(data, 0),
        ),
        LinkType::Null if data.len() >= 4 => {
            let family = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
            (Link::Null { family }, 4, None)
        }
        LinkType::Raw => (Link::Raw, 0, None),
        _ => (Link::Raw, data.len(), Some(0)),
    };
    let ethertype = ethertype.or_else(|| match data.get(network_at).map(|b| b >> 4) {
        Some(4) => Some(0x0800),
        Some(6) => Some(0x86dd),
        _ => Some(0),
    });
    let mut packet = Packet {
        link: link_header,
        network: Network::Other {
            ethertype: ethertype.unwrap_or(0),
        },
        transport: None,
        payload: network_at.min(data.len())..data.len(),
        payload_len: data.len().saturating_sub(network_at),
    };
    match ethertype {
        Some(0x0800) => ipv4(data, network_at, &mut packet),
        Some(0x86dd) => ipv6(data, network_at, &mut packet),
        Some(0x0806) => packet.network = Network::Arp,
        _ => {}
    }
    packet
}

fn ipv4(data: &[u8], at: usize, packet: &mut Packet) {
    let Some(header) = data.get(at..at + 20) else {
        return;
    };
    let header_len = (header[0] & 0x0f) * 4;
    if header[0] >> 4 != 4 || header_len < 20 {
        return;
    }
    let fragment = be16(header, 6).unwrap_or(0);
    let ip = Ipv4 {
        header_len,
        tos: header[1],
        total_len: be16(header, 2).unwrap_or(0),
        id: be16(header, 4).unwrap_or(0),
        dont_fragment: fragment & 0x4000 != 0,
        more_fragments: fragment & 0x2000 != 0,
        fragment_offset: (fragment & 0x1fff) * 8,
        ttl: header[8],
        protocol: header[9],
        checksum: be16(header, 10).unwrap_or(0),
        src: Ipv4Addr::new(header[12], header[13], header[14], header[15]),
        dst: Ipv4Addr::new(header[16], header[17], header[18], header[19]),
    };
    let start = at + usize::from(header_len);
    let len = usize::from(ip.total_len).saturating_sub(usize::from(header_len));
    let (protocol, first) = (ip.protocol, ip.fragment_offset == 0);
    packet.network = Network::Ipv4(ip);
    packet.payload = start.min(data.len())..data.len().min(start + len);
    packet.payload_len = len;
    if first {
        transport(data, protocol, false, packet);
    } else {
        packet.transport = Some(Transport::Other { protocol });
    }
}

fn ipv6(data: &[u8], at: usize, packet: &mut Packet) {
    let Some(header) = data.get(at..at + 40) else {
        return;
    };
    if header[0] >> 4 != 6 {
        return;
    }
    let word = be32(header, 0).unwrap_or(0);
    let octets =
        |from: usize| -> [u8; 16] { header[from..from + 16].try_into().unwrap_or([0; 16]) };
    let ip = Ipv6 {
        traffic_class: ((word >> 20) & 0xff) as u8,
        flow_label: word & 0x000f_ffff,
        payload_len: be16(header, 4).unwrap_or(0),
        next_header: header[6],
        hop_limit: header[7],
        src: Ipv6Addr::from(octets(8)),
        dst: Ipv6Addr::from(octets(24)),
    };
    let mut next = ip.next_header;
    let mut start = at + 40;
    let mut len = usize::from(ip.payload_len);
    // Hop-by-hop, routing and destination options: skip to what they carry.
    while matches!(next, 0 | 43 | 60) {
        let (Some(&following), Some(&units)) = (data.get(start), data.get(start + 1)) else {
            break;
        };
        let skip = (usize::from(units) + 1) * 8;
        next = following;
        start += skip;
        len = len.saturating_sub(skip);
    }
    packet.network = Network::Ipv6(ip);
    packet.payload = start.min(data.len())..data.len().min(start + len);
    packet.payload_len = len;
    transport(data, next, true, packet);
}

fn transport(data: &[u8], protocol: u8, v6: bool, packet: &mut Packet) {
    let at = packet.payload.start;
    let end = packet.payload.end;
    let segment = &data[at..end];
    let decoded = match (protocol, v6) {
        (6, _) => tcp(segment).map(|(tcp, len)| (Transport::Tcp(tcp), len)),
        (17, _) => udp(segment).map(|udp| (Transport::Udp(udp), 8)),
        (1, false) => icmp(segment, 8, 0).map(|icmp| (Transport::Icmp(icmp), 8)),
        (58, true) => icmp(segment, 128, 129).map(|icmp| (Transport::Icmpv6(icmp), 8)),
        _ => None,
    };
    match decoded {
        Some((transport, header_len)) => {
            packet.transport = Some(transport);
            packet.payload = (at + header_len).min(end)..end;
            packet.payload_len = packet.payload_len.saturating_sub(header_len);
        }
        None => packet.transport = Some(Transport::Other { protocol }),
    }
}

fn tcp(segment: &[u8]) -> Option<(Tcp, usize)> {
    let header = segment.get(..20)?;
    let header_len = (header[12] >> 4) * 4;
    if header_len < 20 {
        return None;
    }
    let options = segment
        .get(20..usize::from(header_len))
        .map(tcp_options)
        .unwrap_or_default();
    let tcp = Tcp {
        src_port: be16(header, 0)?,
        dst_port: be16(header, 2)?,
        seq: be32(header, 4)?,
        ack: be32(header, 8)?,
        header_len,
        flags: TcpFlags(be16(header, 12)? & 0x01ff),
        window: be16(header, 14)?,
        checksum: be16(header, 16)?,
        urgent: be16(header, 18)?,
        options,
    };
    Some((tcp, usize::from(header_len)))
}

fn tcp_options(mut bytes: &[u8]) -> Vec<TcpOption> {
    let mut options = Vec::new();
    while let Some(&code) = bytes.first() {
        match code {
            0 => {
                options.push(TcpOption::Eol);
                break;
            }
            1 => {
                options.push(TcpOption::Nop);
                bytes = &bytes[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = bytes.get(1) else { break };
        let Some(body) = bytes.get(2..usize::from(len)) else {
            options.push(TcpOption::Unknown { code, len });
            break;
        };
        options.push(match (code, body.len()) {
            (2, 2) => TcpOption::Mss {
                value: be16(body, 0).unwrap_or(0),
            },
            (3, 1) => TcpOption::WindowScale { shift: body[0] },
            (4, 0) => TcpOption::SackPermitted,
            (5, n) if n % 8 == 0 => TcpOption::Sack {
                blocks: body
                    .chunks(8)
                    .map(|c| (be32(c, 0).unwrap_or(0), be32(c, 4).unwrap_or(0)))
                    .collect(),
            },
            (8, 8) => TcpOption::Timestamp {
                value: be32(body, 0).unwrap_or(0),
                echo: be32(body, 4).unwrap_or(0),
            },
            _ => TcpOption::Unknown { code, len },
        });
        bytes = &bytes[usize::from(len).max(2)..];
    }
    options
}

fn udp(segment: &[u8]) -> Option<Udp> {
    Some(Udp {
        src_port: be16(segment, 0)?,
        dst_port: be16(segment, 2)?,
        length: be16(segment, 4)?,
        checksum: be16(segment, 6)?,
    })
}

fn icmp(segment: &[u8], request: u8, reply: u8) -> Option<Icmp> {
    let kind = *segment.first()?;
    let echo = if kind == request || kind == reply {
        Some((be16(segment, 4)?, be16(segment, 6)?))
    } else {
        None
    };
    Some(Icmp {
        kind,
        code: *segment.get(1)?,
        checksum: be16(segment, 2)?,
        echo,
    })
}
