//! Squid's native access.log line, one per request:
//! `time elapsed client code/status bytes method URL - hierarchy/peer type`.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// How a request was answered, in Squid's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheCode {
    /// A fresh cached copy was served.
    Hit,
    /// Served from the copy another client's request just fetched.
    CollapsedHit,
    /// Fetched from the origin (stored or not).
    Miss,
    /// A stale copy was revalidated and the origin sent a new one.
    RefreshModified,
    /// A stale copy was revalidated and the origin said it still holds.
    RefreshUnmodified,
    /// A stale copy was revalidated and the origin answered with an error,
    /// which was passed on.
    RefreshFailed,
    /// A stale copy was served because its revalidation failed
    /// (stale-if-error).
    RefreshFailedOld,
    /// A stale copy was served while it is refreshed in the background
    /// (stale-while-revalidate).
    StaleHit,
    /// A CONNECT tunnel.
    Tunnel,
    /// Refused: the client is not allowed, the port is not allowed, or the
    /// body is too large.
    Denied,
    /// The request could not be understood.
    None,
}

impl CacheCode {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheCode::Hit => "TCP_HIT",
            CacheCode::CollapsedHit => "TCP_CF_HIT",
            CacheCode::Miss => "TCP_MISS",
            CacheCode::RefreshModified => "TCP_REFRESH_MODIFIED",
            CacheCode::RefreshUnmodified => "TCP_REFRESH_UNMODIFIED",
            CacheCode::RefreshFailed => "TCP_REFRESH_FAIL_ERR",
            CacheCode::RefreshFailedOld => "TCP_REFRESH_FAIL_OLD",
            CacheCode::StaleHit => "TCP_STALE_HIT",
            CacheCode::Tunnel => "TCP_TUNNEL",
            CacheCode::Denied => "TCP_DENIED",
            CacheCode::None => "NONE_NONE",
        }
    }
}

/// Where the response came from: Squid's hierarchy code and peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Answered without contacting anyone.
    None,
    /// Went straight to the origin, at this address (or name, when no
    /// connection was made).
    Direct(String),
}

/// One line of the access log.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    /// When the request ended (its response sent, or its tunnel closed):
    /// Squid logs the time a transaction completes.
    pub time: SystemTime,
    pub elapsed: Duration,
    pub client: IpAddr,
    pub code: CacheCode,
    pub status: u16,
    /// Bytes sent to the client, headers included.
    pub bytes: u64,
    pub method: String,
    pub url: String,
    pub hierarchy: Hierarchy,
    pub content_type: Option<String>,
}

impl fmt::Display for AccessRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let (hierarchy, peer) = match &self.hierarchy {
            Hierarchy::None => ("HIER_NONE", "-"),
            Hierarchy::Direct(peer) => ("HIER_DIRECT", peer.as_str()),
        };
        write!(
            f,
            "{:>10}.{:03} {:>6} {} {}/{:03} {} {} {} - {}/{} {}",
            since.as_secs(),
            since.subsec_millis(),
            self.elapsed.as_millis(),
            self.client,
            self.code.as_str(),
            self.status,
            self.bytes,
            self.method,
            // A URL with spaces would shift every field after it.
            self.url.replace(' ', "%20"),
            hierarchy,
            peer,
            self.content_type
                .as_deref()
                .and_then(|t| t.split(';').next())
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.contains(' '))
                .unwrap_or("-"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squid_native_format() {
        let record = AccessRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_286_536_308_779),
            elapsed: Duration::from_millis(1183),
            client: "127.0.0.1".parse().unwrap(),
            code: CacheCode::Miss,
            status: 200,
            bytes: 2245,
            method: "GET".into(),
            url: "http://www.example.com/".into(),
            hierarchy: Hierarchy::Direct("93.184.216.34".into()),
            content_type: Some("text/html; charset=utf-8".into()),
        };
        assert_eq!(
            record.to_string(),
            "1286536308.779   1183 127.0.0.1 TCP_MISS/200 2245 GET http://www.example.com/ - HIER_DIRECT/93.184.216.34 text/html"
        );
        let hit = AccessRecord {
            code: CacheCode::Hit,
            hierarchy: Hierarchy::None,
            content_type: None,
            elapsed: Duration::ZERO,
            ..record
        };
        assert!(
            hit.to_string()
                .ends_with(" TCP_HIT/200 2245 GET http://www.example.com/ - HIER_NONE/- -")
        );
    }
}
