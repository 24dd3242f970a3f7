//! Streaming a composed message: in-memory pieces as they are, attachment
//! files read and base64-encoded a block at a time.

use std::io;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::fs::File;
use tokio::io::AsyncReadExt;

use super::{BASE64_LINE_INPUT, Segment};

/// Lines encoded per read: 1024 lines of 57 bytes, about 57 KiB of file.
const FILE_BLOCK: usize = 1024 * BASE64_LINE_INPUT as usize;

/// The message as a sequence of byte chunks.
#[derive(Debug)]
pub struct Chunks<'m> {
    segments: std::slice::Iter<'m, Segment>,
    file: Option<OpenFile>,
    input: Vec<u8>,
    output: Vec<u8>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    first_line: bool,
}

impl<'m> Chunks<'m> {
    pub(super) fn new(segments: &'m [Segment]) -> Self {
        Self {
            segments: segments.iter(),
            file: None,
            input: Vec::new(),
            output: Vec::new(),
        }
    }

    /// The next chunk, or `None` at the end of the message. An error names
    /// the attachment that could not be read.
    pub async fn next(&mut self) -> Result<Option<&[u8]>, (PathBuf, io::Error)> {
        loop {
            if let Some(open) = &mut self.file {
                self.input.resize(FILE_BLOCK, 0);
                let filled = fill(&mut open.file, &mut self.input)
                    .await
                    .map_err(|err| (open.path.clone(), err))?;
                if filled > 0 {
                    encode_lines(&self.input[..filled], open.first_line, &mut self.output);
                    open.first_line = false;
                    return Ok(Some(&self.output));
                }
                self.file = None;
                continue;
            }
            match self.segments.next() {
                None => return Ok(None),
                Some(Segment::Bytes(bytes)) => return Ok(Some(bytes)),
                Some(Segment::Base64File { path, .. }) => {
                    let file = File::open(path).await.map_err(|err| (path.clone(), err))?;
                    self.file = Some(OpenFile {
                        file,
                        path: path.clone(),
                        first_line: true,
                    });
                }
            }
        }
    }
}

/// Reads until `buf` is full or the file ends, so every block but the last
/// is a whole number of base64 lines.
async fn fill(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Encodes `input` as 76-character lines, with CRLF between lines (and
/// before the first, unless it is the file's first line).
fn encode_lines(input: &[u8], first_line: bool, output: &mut Vec<u8>) {
    output.clear();
    for (i, line) in input.chunks(BASE64_LINE_INPUT as usize).enumerate() {
        if i > 0 || !first_line {
            output.extend_from_slice(b"\r\n");
        }
        let start = output.len();
        output.resize(
            start + base64::encoded_len(line.len(), true).unwrap_or(0),
            0,
        );
        let written = STANDARD
            .encode_slice(line, &mut output[start..])
            .expect("buffer sized for the encoding");
        output.truncate(start + written);
    }
}
