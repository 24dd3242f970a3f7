//! `PURGE URL`, the request Squid's tools send to drop an entry, answered by
//! the proxy itself; the client side that `netkit proxy purge` uses; and
//! the same removal done directly in the cache directory of a proxy that is
//! not running.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::cache::Disk;
use crate::headers::our_hops;
use crate::target::Target;

/// The method name, as Squid spells it.
pub const PURGE: &str = "PURGE";

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("cannot reach the proxy at {addr} (is `netkit proxy serve` running there?)")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the proxy at {addr} did not answer within {wait:?}")]
    Timeout { addr: SocketAddr, wait: Duration },
    #[error("`{0}` is not a URL the proxy caches (http://HOST/PATH)")]
    Url(String),
    #[error("the proxy refused the purge: {0}")]
    Refused(String),
    #[error("what answers at {addr} is not a netkit proxy")]
    NotOurs { addr: SocketAddr },
    #[error("{} is in use by a running netkit proxy", dir.display())]
    InUse { dir: PathBuf },
    #[error("cannot open the cache directory {}: {source}", dir.display())]
    CacheDir { dir: PathBuf, source: io::Error },
    #[error("HTTP error talking to the proxy: {0}")]
    Http(#[from] hyper::Error),
}

/// Asks the proxy at `addr` to drop every stored variant of `url`. Returns
/// how many were dropped (0 when the URL was not cached).
pub async fn purge(addr: SocketAddr, url: &str, wait: Duration) -> Result<u64, PurgeError> {
    let target = parse_url(url)?;
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| PurgeError::Connect { addr, source })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(Method::from_bytes(PURGE.as_bytes()).expect("valid method"))
            .uri(target.uri())
            .header(http::header::HOST, target.origin.authority())
            .body(Empty::<Bytes>::new())
            .expect("valid request");
        let response = sender.send_request(request).await?;
        let status = response.status();
        let ours = our_hops(response.headers()) > 0;
        let body = response.into_body().collect().await?.to_bytes();
        let purged = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["purged"].as_u64());
        match (status, purged) {
            _ if !ours => Err(PurgeError::NotOurs { addr }),
            (StatusCode::OK | StatusCode::NOT_FOUND, Some(purged)) => Ok(purged),
            (other, _) => Err(PurgeError::Refused(other.to_string())),
        }
    };
    tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| PurgeError::Timeout { addr, wait })?
}

/// Removes every stored variant of `url` from `dir`, the cache directory of
/// a proxy that is not running (a running one holds the directory's lock:
/// [`PurgeError::InUse`]). Returns how many were removed. Blocks.
pub fn purge_dir(dir: &Path, url: &str) -> Result<u64, PurgeError> {
    let key = parse_url(url)?.url();
    if !dir.join("entries").is_dir() {
        return Ok(0);
    }
    let (disk, found) = Disk::open(dir).map_err(|source| match source.kind() {
        io::ErrorKind::WouldBlock => PurgeError::InUse {
            dir: dir.to_owned(),
        },
        _ => PurgeError::CacheDir {
            dir: dir.to_owned(),
            source,
        },
    })?;
    let mut purged = 0;
    for (meta, _) in found.iter().filter(|(meta, _)| meta.url == key) {
        disk.remove(meta.id, meta.body_hash);
        purged += 1;
    }
    Ok(purged)
}

/// The URL as the cache keys it.
fn parse_url(url: &str) -> Result<Target, PurgeError> {
    let invalid = || PurgeError::Url(url.to_owned());
    let uri: http::Uri = url.parse().map_err(|_| invalid())?;
    match Target::parse(&uri) {
        Ok(target) if uri.scheme().is_some() && !target.is_proxy_itself() => Ok(target),
        _ => Err(invalid()),
    }
}
