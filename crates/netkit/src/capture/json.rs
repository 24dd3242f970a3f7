//! `--json`: one object per packet, with exact (absolute) field values so a
//! script can compare them with tshark's.

use std::io::{self, Write};

use capture::app::{self, App};
use capture::decode::{self, Packet};
use capture::{Frame, LinkType};
use serde::Serialize;

#[derive(Serialize)]
struct Line<'a> {
    number: u64,
    /// When it was captured, RFC 3339 (UTC), as every netkit JSON time.
    time: String,
    /// The same as seconds since the epoch with nine decimals, as tshark's
    /// `frame.time_epoch`, to compare with it.
    time_epoch: String,
    length: u32,
    captured: usize,
    #[serde(flatten)]
    packet: &'a Packet,
    /// What netkit recognises in the payload, secrets masked.
    app: Option<App>,
}

pub struct Printer<W: Write> {
    out: W,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W) -> Printer<W> {
        Printer { out }
    }

    pub fn frame(&mut self, number: u64, link: LinkType, frame: &Frame) -> io::Result<()> {
        let packet = decode::decode(link, &frame.data);
        let line = Line {
            number,
            time: crate::json::rfc3339(std::time::UNIX_EPOCH + frame.timestamp),
            time_epoch: format!(
                "{}.{:09}",
                frame.timestamp.as_secs(),
                frame.timestamp.subsec_nanos()
            ),
            length: frame.original_len,
            captured: frame.data.len(),
            packet: &packet,
            app: app::decode(&packet, &frame.data),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        writeln!(self.out)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
