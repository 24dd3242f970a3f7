//! One transfer's response: status rules (`--fail`, `--retry`), where the
//! body goes (stdout, `-o`, `-O`, resumed with `-C -`, or into the JSON
//! report), decoding (`--compressed`), pacing (`--limit-rate`) and
//! progress bars.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use http::StatusCode;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, RANGE, RETRY_AFTER};
use serde_json::{Value, json};
use web::ClientRequest;

use super::exit::{
    BAD_CONTENT_ENCODING, Failure, HTTP_ERROR, RANGE_ERROR, WRITE_ERROR, write_error,
};
use super::render::progress_bar;
use super::report::Exchange;
use super::{Session, observer, show_progress};

/// How a transfer ended when it did not fail.
#[derive(Debug)]
pub enum Done {
    Complete,
    /// A transient HTTP status (`--retry`): nothing was written.
    Retry {
        status: u16,
        after: Option<Duration>,
    },
}

/// Statuses curl's `--retry` treats as transient.
fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

pub async fn transfer(
    session: &Session<'_>,
    mut request: ClientRequest,
    destination: Option<PathBuf>,
    exchange: &mut Exchange,
    may_retry: bool,
) -> anyhow::Result<Done> {
    let args = session.args;
    // -C -: continue from what the output file already holds.
    let mut resume_from = 0;
    if let Some(offset) = &args.continue_at {
        resume_from = match (offset.as_str(), &destination) {
            ("-", Some(path)) => std::fs::metadata(path).map_or(0, |meta| meta.len()),
            ("-", None) => anyhow::bail!("-C - needs an output file (-o or -O)"),
            (number, _) => number
                .parse()
                .with_context(|| format!("-C `{number}` is not an offset"))?,
        };
        if resume_from > 0 {
            request.headers.insert(
                RANGE,
                http::HeaderValue::from_str(&format!("bytes={resume_from}-"))?,
            );
        }
    }
    let uploaded = request.uploaded.clone();
    let upload_bar = (args.upload_file.is_some() && show_progress(args))
        .then(|| progress_bar(Some(request.body.len())));
    let ticker = upload_bar.clone().map(|bar| {
        let uploaded = uploaded.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(uploaded.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let sent = {
        let mut events = observer(args, exchange, destination.is_some());
        session.client.send(request, &mut events).await
    };
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(bar) = upload_bar {
        bar.finish_and_clear();
    }
    let mut response = sent?;
    exchange.url_effective = response.url.to_string();
    exchange.num_redirects = response.redirects;
    let status = response.status;

    if may_retry && transient(status) {
        let after = response
            .headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse().ok())
            .map(Duration::from_secs);
        while response.chunk().await?.is_some() {}
        return Ok(Done::Retry {
            status: status.as_u16(),
            after,
        });
    }
    let failed = (status.as_u16() >= 400 && (args.fail || args.fail_with_body)).then(|| {
        Failure::new(
            HTTP_ERROR,
            format!(
                "HTTP {} {} from {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                response.url
            ),
        )
    });
    let failed = match failed {
        Some(failure) if args.fail => return Err(failure.into()),
        failed => failed,
    };
    let finish = |failed: Option<Failure>| match failed {
        Some(failure) => Err(failure.into()),
        None => Ok(Done::Complete),
    };
    // -I without an output file has printed all there is; with one, the
    // heads go into it below.
    if args.head && destination.is_none() {
        return finish(failed);
    }
    let append = resume_from > 0 && status == StatusCode::PARTIAL_CONTENT;
    if resume_from > 0 && !append {
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            // The file is already complete.
            return finish(failed);
        }
        if status.is_success() {
            return Err(Failure::new(
                RANGE_ERROR,
                "the server does not support byte ranges: cannot resume",
            )
            .into());
        }
    }

    let length = response
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    let capture = args.json_output && destination.is_none();
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (mut out, progress): (Box<dyn Write>, _) = match &destination {
        Some(path) => {
            if args.create_dirs
                && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let file = if append {
                OpenOptions::new().append(true).open(path)
            } else {
                File::create(path)
            }
            .map_err(|err| {
                Failure::new(
                    WRITE_ERROR,
                    format!("cannot create {}: {err}", path.display()),
                )
            })?;
            let progress = show_progress(args).then(|| progress_bar(length));
            (
                Box::new(BufWriter::with_capacity(256 * 1024, file)),
                progress,
            )
        }
        None if capture => (Box::new(Captured(kept.clone())), None),
        None => (
            Box::new(BufWriter::with_capacity(
                64 * 1024,
                std::io::stdout().lock(),
            )),
            None,
        ),
    };
    out.write_all(&std::mem::take(&mut exchange.heads))
        .map_err(write_error)?;
    let encoding = response
        .headers
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase);
    let mut sink = if args.compressed {
        Sink::decoding(encoding.as_deref(), out)?
    } else {
        Sink::Plain(out)
    };
    let started = Instant::now();
    let written = async {
        while let Some(chunk) = response.chunk().await? {
            exchange.size_download += chunk.len() as u64;
            sink.write_all(&chunk)?;
            if let Some(progress) = &progress {
                progress.inc(chunk.len() as u64);
            }
            if let Some(rate) = args.limit_rate {
                let due = Duration::from_secs_f64(exchange.size_download as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    if let Some(progress) = progress {
        progress.finish_and_clear();
    }
    written?;
    sink.finish()?;
    if capture {
        exchange.captured = Some(std::mem::take(&mut *kept.lock().expect("body")));
    }
    finish(failed)
}

/// The body as `--json-output` shows it: text, or base64 for bytes.
pub fn captured_body(exchange: &Exchange) -> Option<Value> {
    let body = exchange.captured.as_ref()?;
    Some(match std::str::from_utf8(body) {
        Ok(text) => json!(text),
        Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(body)}),
    })
}

/// A body kept in memory for the JSON report.
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("body").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where body bytes go, decoded on the way as they arrive if asked.
enum Sink {
    Plain(Box<dyn Write>),
    Gzip(flate2::write::MultiGzDecoder<Box<dyn Write>>),
    Deflate(flate2::write::ZlibDecoder<Box<dyn Write>>),
    Brotli(Box<brotli::DecompressorWriter<Box<dyn Write>>>),
    Zstd(zstd::stream::write::Decoder<'static, Box<dyn Write>>),
}

impl Sink {
    fn decoding(encoding: Option<&str>, out: Box<dyn Write>) -> anyhow::Result<Sink> {
        Ok(match encoding {
            Some("gzip" | "x-gzip") => Sink::Gzip(flate2::write::MultiGzDecoder::new(out)),
            Some("deflate") => Sink::Deflate(flate2::write::ZlibDecoder::new(out)),
            Some("br") => Sink::Brotli(Box::new(brotli::DecompressorWriter::new(out, 64 * 1024))),
            Some("zstd") => {
                Sink::Zstd(zstd::stream::write::Decoder::new(out).map_err(decoding_error)?)
            }
            _ => Sink::Plain(out),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let result = match self {
            Sink::Plain(out) => return out.write_all(bytes).map_err(write_error),
            Sink::Gzip(decoder) => decoder.write_all(bytes),
            Sink::Deflate(decoder) => decoder.write_all(bytes),
            Sink::Brotli(decoder) => decoder.write_all(bytes),
            Sink::Zstd(decoder) => decoder.write_all(bytes),
        };
        result.map_err(decoding_error)
    }

    /// Ends any encoding and flushes everything.
    fn finish(self) -> anyhow::Result<()> {
        let mut out = match self {
            Sink::Plain(out) => out,
            Sink::Gzip(decoder) => decoder.finish().map_err(decoding_error)?,
            Sink::Deflate(decoder) => decoder.finish().map_err(decoding_error)?,
            Sink::Brotli(decoder) => decoder
                .into_inner()
                .map_err(|_| Failure::new(BAD_CONTENT_ENCODING, "the brotli body is cut short"))?,
            // Unlike into_inner, finish reports a frame cut short.
            Sink::Zstd(decoder) => decoder.finish().map_err(decoding_error)?,
        };
        out.flush().map_err(write_error)
    }
}

/// A decoder fails for bad input, or because its output failed.
fn decoding_error(err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        write_error(err)
    } else {
        Failure::new(
            BAD_CONTENT_ENCODING,
            format!("cannot decode the body: {err}"),
        )
        .into()
    }
}
