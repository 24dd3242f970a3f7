//! pcap and pcapng files through the `pcap-file` crate: a reader that takes
//! either (tcpdump writes pcap, dumpcap/tshark pcapng) and a pcapng writer.

use std::borrow::Cow;
use std::io::{Chain, Cursor, Read, Write};
use std::time::Duration;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, PcapError};

use crate::{Error, Frame, LinkType};

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// What the writer records as the timestamp resolution: nanoseconds.
const NANOSECONDS: u8 = 9;

type Source<R> = Chain<Cursor<[u8; 4]>, R>;

/// Reads frames from a pcap or pcapng stream. A file cut short mid-record
/// (still being written, or its writer killed) ends quietly, as tcpdump
/// reads it.
pub struct Reader<R: Read> {
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Pcap(PcapReader<Source<R>>, LinkType),
    PcapNg(Box<PcapNgReader<Source<R>>>),
}

impl<R: Read> std::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl<R: Read> Reader<R> {
    /// Opens a stream, telling pcap from pcapng by its first four bytes.
    pub fn open(mut source: R) -> Result<Reader<R>, Error> {
        let mut magic = [0u8; 4];
        source
            .read_exact(&mut magic)
            .map_err(|err| Error::NotCapture(err.to_string()))?;
        let source = Cursor::new(magic).chain(source);
        let inner = if magic == PCAPNG_MAGIC {
            let reader =
                PcapNgReader::new(source).map_err(|err| Error::NotCapture(err.to_string()))?;
            Inner::PcapNg(Box::new(reader))
        } else {
            let reader =
                PcapReader::new(source).map_err(|err| Error::NotCapture(err.to_string()))?;
            let number = u32::from(reader.header().datalink);
            let link = LinkType::from_number(number).ok_or(Error::UnsupportedLink(number))?;
            Inner::Pcap(reader, link)
        };
        Ok(Reader { inner })
    }

    /// The next frame and its link type; `None` at the end of the file.
    pub fn next_frame(&mut self) -> Option<Result<(LinkType, Frame), Error>> {
        match &mut self.inner {
            Inner::Pcap(reader, link) => match reader.next_packet()? {
                Ok(packet) => Some(Ok((
                    *link,
                    Frame {
                        timestamp: packet.timestamp,
                        original_len: packet.orig_len,
                        data: packet.data.into_owned(),
                    },
                ))),
                Err(err) => ended(err),
            },
            Inner::PcapNg(reader) => loop {
                let block = match reader.next_block()? {
                    Ok(block) => block,
                    Err(err) => return ended(err),
                };
                let Block::EnhancedPacket(packet) = block else {
                    continue;
                };
                let (id, ticks, original_len) = (
                    packet.interface_id,
                    packet.timestamp.as_nanos(),
                    packet.original_len,
                );
                let data = packet.data.into_owned();
                let Some(interface) = reader.interfaces().get(id as usize) else {
                    return Some(Err(Error::NotCapture(format!(
                        "packet names interface {} before it is described",
                        id
                    ))));
                };
                let number = u32::from(interface.linktype);
                let Some(link) = LinkType::from_number(number) else {
                    return Some(Err(Error::UnsupportedLink(number)));
                };
                // pcap-file 2 hands back the raw tick count as nanoseconds
                // whatever the interface's resolution; scale it here.
                let timestamp = ticks_to_time(ticks, resolution(interface));
                return Some(Ok((
                    link,
                    Frame {
                        timestamp,
                        original_len,
                        data,
                    },
                )));
            },
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<(LinkType, Frame), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
    }
}

fn ended<T>(err: PcapError) -> Option<Result<T, Error>> {
    match err {
        PcapError::IncompleteBuffer => None,
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => None,
        other => Some(Err(Error::NotCapture(other.to_string()))),
    }
}

/// `if_tsresol`: 6 (microseconds) unless the interface says otherwise.
fn resolution(interface: &InterfaceDescriptionBlock) -> u8 {
    interface
        .options
        .iter()
        .find_map(|option| match option {
            InterfaceDescriptionOption::IfTsResol(resol) => Some(*resol),
            _ => None,
        })
        .unwrap_or(6)
}

/// Ticks of 10^-n (high bit clear) or 2^-n (high bit set) seconds.
fn ticks_to_time(ticks: u128, resol: u8) -> Duration {
    let exponent = u32::from(resol & 0x7f);
    let per_second: u128 = if resol & 0x80 == 0 {
        10u128.checked_pow(exponent).unwrap_or(u128::MAX)
    } else {
        1u128.checked_shl(exponent).unwrap_or(u128::MAX)
    };
    let per_second = per_second.max(1);
    let seconds = ticks / per_second;
    let nanos = (ticks % per_second) * 1_000_000_000 / per_second;
    Duration::new(
        u64::try_from(seconds).unwrap_or(u64::MAX),
        u32::try_from(nanos).unwrap_or(0),
    )
}

/// Writes pcapng: one section, one interface (named, with its link type and
/// snapshot length), nanosecond timestamps.
pub struct Writer<W: Write> {
    inner: PcapNgWriter<W>,
}

impl<W: Write> std::fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl<W: Write> Writer<W> {
    pub fn new(sink: W, link: LinkType, snaplen: u32, interface: &str) -> Result<Writer<W>, Error> {
        let mut inner = PcapNgWriter::new(sink).map_err(write_error)?;
        let description = InterfaceDescriptionBlock {
            linktype: DataLink::from(link.number()),
            snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(interface.to_owned())),
                InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
            ],
        };
        inner
            .write_block(&Block::InterfaceDescription(description))
            .map_err(write_error)?;
        Ok(Writer { inner })
    }

    pub fn write(&mut self, frame: &Frame) -> Result<(), Error> {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            // With if_tsresol 9 a tick is a nanosecond, as pcap-file assumes.
            timestamp: frame.timestamp,
            original_len: frame.original_len,
            data: Cow::Borrowed(&frame.data),
            options: Vec::new(),
        };
        self.inner
            .write_block(&Block::EnhancedPacket(block))
            .map_err(write_error)?;
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.inner.get_mut()
    }

    pub fn into_inner(self) -> W {
        self.inner.into_inner()
    }
}

fn write_error(err: PcapError) -> Error {
    Error::Write(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_scale_ticks() {
        assert_eq!(ticks_to_time(1_500_000, 6), Duration::from_millis(1500));
        assert_eq!(ticks_to_time(1_500_000_000, 9), Duration::from_millis(1500));
        assert_eq!(ticks_to_time(3, 0x81), Duration::from_millis(1500));
    }

    #[test]
    fn garbage_is_not_a_capture() {
        assert!(Reader::open(&b"hello world, not a capture"[..]).is_err());
        assert!(Reader::open(&b"ab"[..]).is_err());
    }
}
