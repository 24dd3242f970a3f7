//! Access logging in the Combined Log Format, the format Apache and nginx
//! write and log analysers read:
//!
//! `127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 2326 "-" "curl/8.5.0"`
//!
//! The library produces one `AccessEntry` per response once its body has
//! been sent (or abandoned), with the bytes actually sent, and hands it to
//! the `AccessLog` the server was configured with; where it is written is
//! the caller's business.

use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{REFERER, USER_AGENT};
use http::{Request, Version};
use http_body::{Frame, SizeHint};

use crate::body::Body;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// One request as the access log records it.
#[derive(Debug, Clone)]
pub struct AccessEntry {
    pub client: IpAddr,
    pub time: SystemTime,
    /// `GET /index.html HTTP/1.1`
    pub request_line: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

impl AccessEntry {
    pub fn start<B>(client: IpAddr, request: &Request<B>) -> Self {
        let text = |name| {
            request
                .headers()
                .get(name)
                .map(|value: &http::HeaderValue| {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                })
        };
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        Self {
            client,
            time: SystemTime::now(),
            request_line: format!(
                "{} {target} {}",
                request.method(),
                version_text(request.version())
            ),
            status: 0,
            bytes: 0,
            referer: text(REFERER),
            user_agent: text(USER_AGENT),
        }
    }
}

impl AccessEntry {
    /// One JSON object, for `--log-format json`: `time` (RFC 3339, UTC),
    /// `client`, `request` (the request line), `status`, `bytes`,
    /// `referer`, `user_agent` (null when absent). serde_json escapes
    /// every control character, so a client cannot forge lines.
    pub fn to_json(&self) -> String {
        let time = OffsetDateTime::from(self.time).replace_nanosecond(0);
        serde_json::json!({
            "time": time.ok().and_then(|time| time.format(&Rfc3339).ok()),
            "client": self.client.to_string(),
            "request": self.request_line,
            "status": self.status,
            "bytes": self.bytes,
            "referer": self.referer,
            "user_agent": self.user_agent,
        })
        .to_string()
    }
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

impl fmt::Display for AccessEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = match self.bytes {
            0 => "-".to_owned(),
            n => n.to_string(),
        };
        write!(
            f,
            "{} - - [{}] \"{}\" {} {bytes} \"{}\" \"{}\"",
            self.client,
            OffsetDateTime::from(self.time)
                .format(format_description!(
                    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
                ))
                .unwrap_or_default(),
            Quoted(&self.request_line),
            self.status,
            Quoted(self.referer.as_deref().unwrap_or("-")),
            Quoted(self.user_agent.as_deref().unwrap_or("-")),
        )
    }
}

/// A field inside double quotes: quotes, backslashes and control
/// characters are escaped (as nginx does), so a client cannot forge
/// log lines or fields.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\x{:02X}", c as u32)?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// Where access entries go.
#[derive(Clone)]
pub struct AccessLog(Arc<dyn Fn(AccessEntry) + Send + Sync>);

impl AccessLog {
    pub fn new(record: impl Fn(AccessEntry) + Send + Sync + 'static) -> Self {
        Self(Arc::new(record))
    }

    pub(crate) fn record(&self, entry: AccessEntry) {
        (self.0)(entry)
    }
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessLog")
    }
}

/// A response body that counts what it sends and records the entry when it
/// is finished or dropped (a client that disconnects mid-file still gets
/// its line, with the bytes that made it out).
#[derive(Debug)]
pub struct LoggedBody {
    body: Body,
    pending: Option<(AccessEntry, AccessLog)>,
}

impl LoggedBody {
    pub fn new(body: Body, pending: Option<(AccessEntry, AccessLog)>) -> Self {
        Self { body, pending }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some((entry, _))) = (&polled, &mut this.pending)
            && let Some(data) = frame.data_ref()
        {
            entry.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some((entry, log)) = self.pending.take() {
            log.record(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn combined_log_format() {
        let entry = AccessEntry {
            client: "127.0.0.1".parse().unwrap(),
            time: UNIX_EPOCH + Duration::from_secs(971_186_136),
            request_line: "GET /apache_pb.gif HTTP/1.0".into(),
            status: 200,
            bytes: 2326,
            referer: Some("http://www.example.com/start.html".into()),
            user_agent: Some("Mozilla/4.08 [en] (Win98; I ;Nav)".into()),
        };
        assert_eq!(
            entry.to_string(),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \
             \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\""
        );
        assert!(entry.to_json().contains(r#""time":"2000-10-10T13:55:36Z""#));
    }

    #[test]
    fn fields_cannot_forge_lines() {
        let entry = AccessEntry {
            client: "::1".parse().unwrap(),
            time: UNIX_EPOCH,
            request_line: "GET / HTTP/1.1".into(),
            status: 304,
            bytes: 0,
            referer: None,
            user_agent: Some("evil\"\n127.0.0.1 - - fake\\".into()),
        };
        let line = entry.to_string();
        assert!(!line.contains('\n'));
        assert!(
            line.ends_with("304 - \"-\" \"evil\\\"\\x0A127.0.0.1 - - fake\\\\\""),
            "{line}"
        );
    }
}
