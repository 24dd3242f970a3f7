//! tcpdump's one line per packet, `-v`'s IP header fields and `-X`'s hex
//! and ASCII dump.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use capture::decode::{self, Icmp, Network, Packet, Tcp, TcpOption, Transport};
use capture::tcp::{Tracker, endpoint, endpoints};
use capture::{Frame, LinkType};

use super::Style;

pub struct Printer<W: Write> {
    out: W,
    style: Style,
    tracker: Tracker,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, style: Style) -> Printer<W> {
        Printer {
            out,
            style,
            tracker: Tracker::default(),
        }
    }

    pub fn frame(&mut self, link: LinkType, frame: &Frame) -> io::Result<()> {
        let packet = decode::decode(link, &frame.data);
        let line = line(&packet, frame, &mut self.tracker, self.style);
        writeln!(self.out, "{} {line}", clock(frame.timestamp))?;
        if self.style.hex {
            let from = match packet.network {
                Network::Ipv4(_) | Network::Ipv6(_) => header_start(link, &frame.data),
                _ => 0,
            };
            write!(
                self.out,
                "{}",
                hex_dump(frame.data.get(from..).unwrap_or_default())
            )?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn header_start(link: LinkType, data: &[u8]) -> usize {
    let start = match link {
        LinkType::Ethernet => 14,
        LinkType::LinuxSll => 16,
        LinkType::LinuxSll2 => 20,
        LinkType::Null => 4,
        LinkType::Raw => 0,
    };
    start.min(data.len())
}

/// `HH:MM:SS.uuuuuu` in UTC.
pub fn clock(timestamp: Duration) -> String {
    let seconds = timestamp.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        timestamp.subsec_micros()
    )
}

/// Everything after the timestamp.
pub fn line(packet: &Packet, frame: &Frame, tracker: &mut Tracker, style: Style) -> String {
    let (family, ip_fields) = match &packet.network {
        Network::Ipv4(ip) => (
            "IP",
            format!(
                "(tos {:#x}, ttl {}, id {}, offset {}, flags [{}], proto {} ({}), length {})",
                ip.tos,
                ip.ttl,
                ip.id,
                ip.fragment_offset,
                match (ip.dont_fragment, ip.more_fragments) {
                    (true, true) => "DF+",
                    (true, false) => "DF",
                    (false, true) => "+",
                    (false, false) => "none",
                },
                protocol_name(ip.protocol),
                ip.protocol,
                ip.total_len
            ),
        ),
        Network::Ipv6(ip) => (
            "IP6",
            format!(
                "(flowlabel {:#x}, hlim {}, next-header {} ({}), payload length {})",
                ip.flow_label,
                ip.hop_limit,
                protocol_name(ip.next_header),
                ip.next_header,
                ip.payload_len
            ),
        ),
        Network::Arp => return format!("ARP, length {}", frame.original_len),
        Network::Other { ethertype } => {
            return format!("ethertype {ethertype:#06x}, length {}", frame.original_len);
        }
    };
    let Some((src, dst)) = packet.network.addresses() else {
        return family.to_owned();
    };
    let head = if style.verbose {
        format!("{family} {ip_fields}\n    ")
    } else {
        format!("{family} ")
    };
    let body = match &packet.transport {
        Some(Transport::Tcp(tcp)) => {
            let relative = if style.absolute {
                None
            } else {
                endpoints(packet).map(|(direction, _)| tracker.relative(direction, tcp))
            };
            format!(
                "{} > {}: {}",
                endpoint(src, tcp.src_port),
                endpoint(dst, tcp.dst_port),
                tcp_summary(tcp, relative, packet.payload_len, style.verbose)
            )
        }
        Some(Transport::Udp(udp)) => format!(
            "{} > {}: UDP, length {}",
            endpoint(src, udp.src_port),
            endpoint(dst, udp.dst_port),
            udp.length.saturating_sub(8)
        ),
        Some(Transport::Icmp(icmp)) => format!(
            "{src} > {dst}: ICMP {}, length {}",
            icmp_summary(icmp, 8, frame.data.get(packet.payload.clone())),
            packet.payload_len + 8
        ),
        Some(Transport::Icmpv6(icmp)) => format!(
            "{src} > {dst}: ICMP6, {}, length {}",
            icmp_summary(icmp, 128, None),
            packet.payload_len + 8
        ),
        Some(Transport::Other { protocol }) => {
            format!("{src} > {dst}: ip-proto-{protocol} {}", packet.payload_len)
        }
        None => format!("{src} > {dst}: truncated"),
    };
    format!("{head}{body}")
}

fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "ICMPv6",
        _ => "unknown",
    }
}

fn icmp_summary(icmp: &Icmp, request: u8, quoted: Option<&[u8]>) -> String {
    if let Some((id, seq)) = icmp.echo {
        let what = if icmp.kind == request {
            "request"
        } else {
            "reply"
        };
        return format!("echo {what}, id {id}, seq {seq}");
    }
    match (
        icmp.kind,
        quoted.and_then(|quoted| unreachable(icmp.code, quoted)),
    ) {
        (3, Some(text)) => text,
        _ => format!("type {}, code {}", icmp.kind, icmp.code),
    }
}

/// tcpdump's words for an ICMPv4 destination unreachable, from the IPv4
/// header (and the ports after it) that the error quotes.
fn unreachable(code: u8, quoted: &[u8]) -> Option<String> {
    let ip = quoted.get(..20)?;
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let dst = std::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let protocol = ip[9];
    let port = quoted
        .get(header_len + 2..header_len + 4)
        .map(|b| u16::from_be_bytes([b[0], b[1]]));
    Some(match (code, protocol, port) {
        (0, ..) => format!("net {dst} unreachable"),
        (1, ..) => format!("host {dst} unreachable"),
        (2, ..) => format!("{dst} protocol {protocol} unreachable"),
        (3, 6, Some(port)) => format!("{dst} tcp port {port} unreachable"),
        (3, 17, Some(port)) => format!("{dst} udp port {port} unreachable"),
        _ => return None,
    })
}

fn tcp_summary(
    tcp: &Tcp,
    relative: Option<capture::tcp::Relative>,
    length: usize,
    verbose: bool,
) -> String {
    use capture::decode::TcpFlags;
    let mut out = format!("Flags [{}]", tcp.flags.letters());
    if verbose {
        let _ = write!(out, ", cksum {:#06x}", tcp.checksum);
    }
    let (seq, ack) = match relative {
        Some(capture::tcp::Relative { seq, ack }) => {
            (seq.unwrap_or(tcp.seq), ack.unwrap_or(tcp.ack))
        }
        None => (tcp.seq, tcp.ack),
    };
    let flags = tcp.flags;
    if length > 0 || flags.has(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST) {
        let _ = write!(out, ", seq {seq}");
        if length > 0 {
            let _ = write!(out, ":{}", seq.wrapping_add(length as u32));
        }
    }
    if flags.has(TcpFlags::ACK) {
        let _ = write!(out, ", ack {ack}");
    }
    let _ = write!(out, ", win {}", tcp.window);
    if flags.has(TcpFlags::URG) {
        let _ = write!(out, ", urg {}", tcp.urgent);
    }
    if !tcp.options.is_empty() {
        let options: Vec<String> = tcp.options.iter().map(option_text).collect();
        let _ = write!(out, ", options [{}]", options.join(","));
    }
    let _ = write!(out, ", length {length}");
    out
}

pub fn option_text(option: &TcpOption) -> String {
    match option {
        TcpOption::Eol => "eol".to_owned(),
        TcpOption::Nop => "nop".to_owned(),
        TcpOption::Mss { value } => format!("mss {value}"),
        TcpOption::WindowScale { shift } => format!("wscale {shift}"),
        TcpOption::SackPermitted => "sackOK".to_owned(),
        TcpOption::Sack { blocks } => {
            let blocks: Vec<String> = blocks.iter().map(|(l, r)| format!("{{{l}:{r}}}")).collect();
            format!("sack {} {}", blocks.len(), blocks.join(""))
        }
        TcpOption::Timestamp { value, echo } => format!("TS val {value} ecr {echo}"),
        TcpOption::Unknown { code, len } => format!("opt-{code}:len {len}"),
    }
}

/// tcpdump -X: offset, eight 16-bit groups, then the printable bytes.
pub fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "\t0x{:04x}:  ", row * 16);
        let mut hex = String::new();
        for pair in chunk.chunks(2) {
            for byte in pair {
                let _ = write!(hex, "{byte:02x}");
            }
            hex.push(' ');
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        let _ = writeln!(out, "{hex:<40} {ascii}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_rows_match_tcpdump() {
        let dump = hex_dump(b"E\x00\x00\x34hello world, more");
        let second = format!("\t0x0010:  {:<40} .more\n", "206d 6f72 65 ");
        assert_eq!(
            dump,
            format!(
                "\t0x0000:  4500 0034 6865 6c6c 6f20 776f 726c 642c  E..4hello.world,\n{second}"
            )
        );
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(
            clock(Duration::new(86_400 + 3_723, 1_000)),
            "01:02:03.000001"
        );
    }
}
