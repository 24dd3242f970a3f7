//! `PURGE URL`, the request Squid's tools send to drop an entry, answered by
//! the proxy itself; and the client side that `netkit proxy purge` uses.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The method name, as Squid spells it.
pub const PURGE: &str = "PURGE";

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("cannot reach the proxy at {addr}: {source} (is `netkit proxy serve` running there?)")]
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
    #[error("HTTP error talking to the proxy: {0}")]
    Http(#[from] hyper::Error),
}

/// Asks the proxy at `addr` to drop every stored variant of `url`. Returns
/// how many were dropped (0 when the URL was not cached).
pub async fn purge(addr: SocketAddr, url: &str, wait: Duration) -> Result<u64, PurgeError> {
    let uri: http::Uri = url.parse().map_err(|_| PurgeError::Url(url.to_owned()))?;
    let target = crate::target::Target::parse(&uri).map_err(|_| PurgeError::Url(url.to_owned()))?;
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
        let body = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        match status {
            StatusCode::OK => Ok(serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["purged"].as_u64())
                .unwrap_or(1)),
            StatusCode::NOT_FOUND => Ok(0),
            other => Err(PurgeError::Refused(format!("{other}"))),
        }
    };
    tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| PurgeError::Timeout { addr, wait })?
}
