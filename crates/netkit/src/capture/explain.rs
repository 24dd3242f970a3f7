//! `--explain`: each header as a table of labelled fields in the lab's
//! words, then what the connection view and the application decoder make
//! of the packet.

use std::fmt::Write as _;
use std::io::{self, Write};

use capture::app::{self, App};
use capture::decode::{self, Icmp, Link, Network, Tcp, TcpFlags, Transport};
use capture::tcp::{Analyzer, Note, Tracker, endpoints};
use capture::{Frame, LinkType};

use super::text::{clock, option_text};

pub struct Explainer<W: Write> {
    out: W,
    number: u64,
    tracker: Tracker,
    analyzer: Analyzer,
}

/// One table: a title and (label, value) rows.
struct Table {
    title: String,
    rows: Vec<(String, String)>,
}

impl Table {
    fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, label: impl Into<String>, value: impl ToString) -> &mut Table {
        self.rows.push((label.into(), value.to_string()));
        self
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "  {}", self.title);
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, value) in &self.rows {
            let _ = writeln!(out, "    {label:<width$}  {value}");
        }
    }
}

impl<W: Write> Explainer<W> {
    pub fn new(out: W) -> Explainer<W> {
        Explainer {
            out,
            number: 0,
            tracker: Tracker::default(),
            analyzer: Analyzer::default(),
        }
    }

    pub fn frame(&mut self, link: LinkType, frame: &Frame) -> io::Result<()> {
        self.number += 1;
        let packet = decode::decode(link, &frame.data);
        let mut out = format!(
            "packet {} at {} UTC: {} bytes on the wire, {} captured\n",
            self.number,
            clock(frame.timestamp),
            frame.original_len,
            frame.data.len()
        );
        let mut tables = vec![link_table(&packet.link)];
        tables.extend(network_table(&packet.network));
        let mut notes = Vec::new();
        match &packet.transport {
            Some(Transport::Tcp(tcp)) => {
                tables.push(tcp_table(tcp, packet.payload_len));
                if let Some((direction, _)) = endpoints(&packet) {
                    let relative = self.tracker.relative(direction, tcp);
                    if let (Some(seq), Some(ack)) = (relative.seq, relative.ack) {
                        notes.push(format!(
                            "relative to each side's initial sequence number: seq {seq}, ack {ack}"
                        ));
                    }
                    for note in self.analyzer.notes(direction, tcp, packet.payload_len) {
                        notes.push(note_text(&note, direction.0, direction.1));
                    }
                }
            }
            Some(Transport::Udp(udp)) => {
                let mut table = Table::new("UDP header: four fields of 2 bytes each (8 bytes)");
                table
                    .row("source port", udp.src_port)
                    .row("destination port", udp.dst_port)
                    .row(
                        "length",
                        format!(
                            "{} bytes: the 8-byte header and {} bytes of data",
                            udp.length,
                            udp.length.saturating_sub(8)
                        ),
                    )
                    .row("checksum", format!("{:#06x}", udp.checksum));
                tables.push(table);
            }
            Some(Transport::Icmp(icmp)) => tables.push(icmp_table("ICMP", icmp, 8, 0)),
            Some(Transport::Icmpv6(icmp)) => tables.push(icmp_table("ICMPv6", icmp, 128, 129)),
            Some(Transport::Other { protocol }) => {
                notes.push(format!("protocol {protocol}: not decoded further"));
            }
            None => {}
        }
        if let Some(app) = app::decode(&packet, &frame.data) {
            tables.push(app_table(&app));
        }
        for table in &tables {
            table.render(&mut out);
        }
        if !notes.is_empty() {
            let _ = writeln!(out, "  Connection");
            for note in notes {
                let _ = writeln!(out, "    {note}");
            }
        }
        writeln!(self.out, "{out}")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn link_table(link: &Link) -> Table {
    match link {
        Link::Ethernet {
            src,
            dst,
            ethertype,
        } => {
            let mut table = Table::new("Ethernet header (14 bytes)");
            table
                .row("destination MAC", dst)
                .row("source MAC", src)
                .row(
                    "type",
                    format!("{ethertype:#06x} ({})", ethertype_name(*ethertype)),
                );
            table
        }
        Link::Cooked {
            packet_type,
            ethertype,
        } => {
            let mut table = Table::new("Linux cooked header");
            table.row("packet type", packet_type).row(
                "protocol",
                format!("{ethertype:#06x} ({})", ethertype_name(*ethertype)),
            );
            table
        }
        Link::Raw => Table::new("No link header: the packet starts at the IP header"),
        Link::Null { family } => {
            let mut table = Table::new("BSD loopback header (4 bytes)");
            table.row("address family", family);
            table
        }
    }
}

fn ethertype_name(ethertype: u16) -> &'static str {
    match ethertype {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x0806 => "ARP",
        _ => "other",
    }
}

fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        1 => "ICMP",
        6 => "TCP",
        17 => "UDP",
        58 => "ICMPv6",
        _ => "other",
    }
}

fn network_table(network: &Network) -> Option<Table> {
    Some(match network {
        Network::Ipv4(ip) => {
            let mut table = Table::new(format!("IPv4 header ({} bytes)", ip.header_len));
            table
                .row("version", 4)
                .row("header length", format!("{} bytes", ip.header_len))
                .row("type of service", format!("{:#04x}", ip.tos))
                .row("total length", format!("{} bytes", ip.total_len))
                .row("identification", ip.id)
                .row(
                    "flags",
                    format!(
                        "don't fragment {}, more fragments {}",
                        yes(ip.dont_fragment),
                        yes(ip.more_fragments)
                    ),
                )
                .row("fragment offset", ip.fragment_offset)
                .row("time to live", ip.ttl)
                .row(
                    "protocol",
                    format!("{} ({})", ip.protocol, protocol_name(ip.protocol)),
                )
                .row("header checksum", format!("{:#06x}", ip.checksum))
                .row("source address", ip.src)
                .row("destination address", ip.dst);
            table
        }
        Network::Ipv6(ip) => {
            let mut table = Table::new("IPv6 header (40 bytes)");
            table
                .row("version", 6)
                .row("traffic class", format!("{:#04x}", ip.traffic_class))
                .row("flow label", format!("{:#07x}", ip.flow_label))
                .row("payload length", format!("{} bytes", ip.payload_len))
                .row(
                    "next header",
                    format!("{} ({})", ip.next_header, protocol_name(ip.next_header)),
                )
                .row("hop limit", ip.hop_limit)
                .row("source address", ip.src)
                .row("destination address", ip.dst);
            table
        }
        Network::Arp => Table::new("ARP"),
        Network::Other { .. } => return None,
    })
}

fn yes(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn tcp_table(tcp: &Tcp, payload_len: usize) -> Table {
    let mut table = Table::new(format!("TCP header ({} bytes)", tcp.header_len));
    let names: Vec<&str> = [
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
    ]
    .into_iter()
    .filter(|(flag, _)| tcp.flags.has(*flag))
    .map(|(_, name)| name)
    .collect();
    table
        .row("source port", tcp.src_port)
        .row("destination port", tcp.dst_port)
        .row("sequence number", tcp.seq)
        .row("acknowledgement number", tcp.ack)
        .row("header length", format!("{} bytes", tcp.header_len))
        .row(
            "flags",
            format!("{:#05x} ({})", tcp.flags.0, names.join(", ")),
        )
        .row("window", tcp.window)
        .row("checksum", format!("{:#06x}", tcp.checksum))
        .row("urgent pointer", tcp.urgent);
    if !tcp.options.is_empty() {
        let options: Vec<String> = tcp.options.iter().map(option_text).collect();
        table.row("options", options.join(", "));
    }
    table.row("data", format!("{payload_len} bytes"));
    table
}

fn icmp_table(name: &str, icmp: &Icmp, request: u8, reply: u8) -> Table {
    let what = match icmp.kind {
        k if k == request => "echo request",
        k if k == reply => "echo reply",
        3 if request == 8 => "destination unreachable",
        11 if request == 8 => "time exceeded",
        1 if request == 128 => "destination unreachable",
        3 if request == 128 => "time exceeded",
        _ => "other",
    };
    let mut table = Table::new(format!("{name} header"));
    table
        .row("type", format!("{} ({what})", icmp.kind))
        .row("code", icmp.code)
        .row("checksum", format!("{:#06x}", icmp.checksum));
    if let Some((id, seq)) = icmp.echo {
        table.row("identifier", id).row("sequence number", seq);
    }
    table
}

fn app_table(app: &App) -> Table {
    match app {
        App::Http { start, headers } => {
            let mut table = Table::new("HTTP/1.x");
            let first = if start.starts_with("HTTP/") {
                "status line"
            } else {
                "request line"
            };
            table.row(first, start);
            for (name, value) in headers {
                table.row(name.clone(), value);
            }
            table
        }
        App::Smtp { lines } => {
            let mut table = Table::new("SMTP (AUTH secrets masked)");
            for line in lines {
                let kind = if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    "reply"
                } else {
                    "command"
                };
                table.row(kind, line);
            }
            table
        }
        App::Chat { frames } => {
            let mut table = Table::new("netkit chat frames (passwords masked)");
            for (kind, frame) in frames {
                table.row(kind.clone(), frame);
            }
            table
        }
        App::Udping {
            word,
            sequence,
            time,
        } => {
            let mut table = Table::new("lab UDP pinger");
            table
                .row("word", word)
                .row("sequence", sequence)
                .row("sender's time", time);
            table
        }
        App::Stamp(stamp) => {
            let mut table = Table::new(format!("STAMP {} packet (RFC 8762)", stamp.role));
            table
                .row("sequence number", stamp.sequence)
                .row(
                    "timestamp",
                    format!("{}.{:010} (NTP)", stamp.timestamp.0, stamp.timestamp.1),
                )
                .row("error estimate", format!("{:#06x}", stamp.error_estimate));
            if let Some((secs, fraction)) = stamp.receive_timestamp {
                table.row("receive timestamp", format!("{secs}.{fraction:010} (NTP)"));
            }
            if let Some(seq) = stamp.sender_sequence {
                table.row("sender sequence number", seq);
            }
            if let Some(ttl) = stamp.sender_ttl {
                table.row("sender TTL", ttl);
            }
            table
        }
        App::Tls(tls) => {
            let mut table = Table::new("TLS record (not decrypted)");
            table
                .row(
                    "content type",
                    format!("{} ({})", tls.content_type, tls.content_name()),
                )
                .row("version", format!("{:#06x}", tls.version))
                .row("length", tls.length);
            if let (Some(kind), Some(name)) = (tls.handshake_type, tls.handshake_name()) {
                table.row("handshake type", format!("{kind} ({name})"));
            }
            if let Some(sni) = &tls.server_name {
                table.row("server name (SNI)", sni);
            }
            table
        }
    }
}

fn note_text(note: &Note, from: std::net::SocketAddr, to: std::net::SocketAddr) -> String {
    match note {
        Note::Syn { isn } => {
            format!("three-way handshake 1/3: SYN from {from}, initial sequence number {isn}")
        }
        Note::SynAck { isn, acknowledges } => format!(
            "three-way handshake 2/3: SYN-ACK from {from}, initial sequence number {isn}, \
             acknowledging {acknowledges} (the client's ISN + 1)"
        ),
        Note::HandshakeDone => {
            format!("three-way handshake 3/3: ACK from {from}; the connection is established")
        }
        Note::Fin => format!("FIN: {from} has nothing more to send to {to}"),
        Note::Rst => format!("RST: {from} resets the connection"),
        Note::Retransmission => "retransmission: these bytes were sent before".to_owned(),
        Note::DuplicateAck(n) => format!("duplicate ACK #{n}"),
    }
}
