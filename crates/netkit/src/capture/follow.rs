//! `--follow tcp ADDR:PORT`: the payload of the connections to or from one
//! endpoint, in order and each byte once (retransmissions dropped), as
//! Wireshark's Follow TCP Stream shows it, with chat passwords and SMTP
//! AUTH secrets masked.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::SocketAddr;

use capture::app;
use capture::decode::{self, TcpFlags};
use capture::tcp::{Direction, after, endpoints};
use capture::{Frame, LinkType};

pub struct Follower<W: Write> {
    out: W,
    endpoint: SocketAddr,
    /// Per direction, the sequence number of the next new byte.
    next: HashMap<Direction, u32>,
    last: Option<Direction>,
    /// Directions whose last words were an SMTP `334` challenge.
    challenged: HashSet<Direction>,
}

impl<W: Write> Follower<W> {
    pub fn new(out: W, endpoint: SocketAddr) -> Follower<W> {
        Follower {
            out,
            endpoint,
            next: HashMap::new(),
            last: None,
            challenged: HashSet::new(),
        }
    }

    pub fn frame(&mut self, link: LinkType, frame: &Frame) -> io::Result<()> {
        let packet = decode::decode(link, &frame.data);
        let Some((direction, tcp)) = endpoints(&packet) else {
            return Ok(());
        };
        if direction.0 != self.endpoint && direction.1 != self.endpoint {
            return Ok(());
        }
        let payload = frame.data.get(packet.payload.clone()).unwrap_or_default();
        if payload.is_empty() {
            return Ok(());
        }
        let start = tcp
            .seq
            .wrapping_add(u32::from(tcp.flags.has(TcpFlags::SYN)));
        let next = *self.next.entry(direction).or_insert(start);
        let end = start.wrapping_add(payload.len() as u32);
        if !after(end, next) {
            return Ok(());
        }
        // Skip what an overlapping retransmission repeats.
        let skip = if after(next, start) {
            next.wrapping_sub(start) as usize
        } else {
            0
        };
        self.next.insert(direction, end);
        if self.last != Some(direction) {
            writeln!(self.out, "\n===== {} > {} =====", direction.0, direction.1)?;
            self.last = Some(direction);
        }
        let fresh = &payload[skip.min(payload.len())..];
        // After an SMTP `334` challenge the client's answer is a secret.
        if self.challenged.remove(&(direction.1, direction.0)) {
            return writeln!(self.out, "{}", app::MASK);
        }
        if fresh.starts_with(b"334 ") {
            self.challenged.insert(direction);
        }
        match std::str::from_utf8(fresh) {
            Ok(text) => self.out.write_all(app::mask_text(text).as_bytes()),
            Err(_) => self.out.write_all(fresh),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        writeln!(self.out)?;
        self.out.flush()
    }
}
