//! The DATA transparency rules (RFC 5321 §4.5.2), both ways, as streaming
//! state machines so a message of any size passes through in chunks: the
//! client doubles a `.` at the start of a line and ends with `.` alone; the
//! receiver removes the extra dot and stops at that line.

/// Encodes message bytes for DATA: every line ending becomes CRLF (a bare LF
/// or CR too, since servers may reject or mangle them) and a line starting
/// with `.` gets a second one.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Appends the encoding of `input` to `out`.
    pub fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 2);
        while !input.is_empty() {
            if self.pending_cr {
                self.pending_cr = false;
                self.end_line(out);
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            if self.at_line_start && input[0] == b'.' {
                out.push(b'.');
            }
            let end = input
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(input.len());
            out.extend_from_slice(&input[..end]);
            if end > 0 {
                self.at_line_start = false;
            }
            match input.get(end) {
                None => return,
                Some(b'\r') => self.pending_cr = true,
                Some(_) => self.end_line(out),
            }
            input = &input[end + 1..];
        }
    }

    /// Ends the last line if it is open and appends the `.` line.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            self.end_line(out);
        }
        out.extend_from_slice(b".\r\n");
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.at_line_start = true;
    }
}

/// One DATA line as the receiver sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum DataLine<'a> {
    /// A message line with the transparency dot removed.
    Content(&'a [u8]),
    /// The lone `.` that ends the message.
    End,
}

/// Reverses the transparency rule for one line (without its CRLF).
pub fn unstuff(line: &[u8]) -> DataLine<'_> {
    match line {
        b"." => DataLine::End,
        [b'.', rest @ ..] => DataLine::Content(rest),
        _ => DataLine::Content(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stuffer = DotStuffer::new();
        let mut out = Vec::new();
        for chunk in chunks {
            stuffer.encode(chunk, &mut out);
        }
        stuffer.finish(&mut out);
        out
    }

    /// What the receiver rebuilds from DATA bytes.
    fn receive(data: &[u8]) -> Vec<u8> {
        let mut message = Vec::new();
        for line in data.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").expect("every line ends in CRLF");
            match unstuff(line) {
                DataLine::End => return message,
                DataLine::Content(content) => {
                    message.extend_from_slice(content);
                    message.extend_from_slice(b"\r\n");
                }
            }
        }
        panic!("no end of data in {:?}", String::from_utf8_lossy(data));
    }

    #[test]
    fn doubles_leading_dots_and_ends() {
        assert_eq!(
            stuff(&[b".hidden\r\n..two\r\nmid.dle\r\n.\r\nlast"]),
            b"..hidden\r\n...two\r\nmid.dle\r\n..\r\nlast\r\n.\r\n"
        );
        assert_eq!(stuff(&[b""]), b".\r\n");
        assert_eq!(
            stuff(&[b"ends with newline\r\n"]),
            b"ends with newline\r\n.\r\n"
        );
    }

    #[test]
    fn normalises_line_endings() {
        assert_eq!(
            stuff(&[b"a\nb\rc\r\n\n.d"]),
            b"a\r\nb\r\nc\r\n\r\n..d\r\n.\r\n"
        );
    }

    #[test]
    fn state_crosses_chunk_boundaries() {
        assert_eq!(
            stuff(&[b"a\r", b"\n", b".", b"b\r", b"", b"c"]),
            b"a\r\n..b\r\nc\r\n.\r\n"
        );
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_bytes(
            message in proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..400),
            cut in 0usize..400,
        ) {
            let cut = cut.min(message.len());
            prop_assert_eq!(stuff(&[&message]), stuff(&[&message[..cut], &message[cut..]]));
        }

        #[test]
        fn receiver_gets_the_message_back(lines in proptest::collection::vec("[.a-z ]{0,12}", 0..20)) {
            let message: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
            let data = stuff(&[message.as_bytes()]);
            prop_assert!(!data[..data.len() - 3].windows(5).any(|w| w == b"\r\n.\r\n"));
            prop_assert_eq!(receive(&data), message.into_bytes());
        }

        #[test]
        fn unstuff_never_panics(line in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = unstuff(&line);
        }
    }
}
