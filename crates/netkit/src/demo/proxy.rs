//! The proxy in the demo: a small in-process origin that counts requests,
//! the proxy in front of it with a throwaway cache directory, and two GETs
//! through it: the first a miss, the second a hit the origin never sees.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const BODY: &str = "cached by netkit proxy\n";

pub async fn check() -> anyhow::Result<String> {
    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let (origin, served) = start_origin(token.clone()).await?;

    let dir = std::env::temp_dir().join(format!("netkit-demo-proxy-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(dir.clone());
    let config = proxy::Config::new("127.0.0.1:0".parse()?, dir);
    let server = proxy::Proxy::bind(config).await?;
    let proxy_addr = server.local_addr();
    tokio::spawn(server.run(token.clone()));

    let url = format!("http://{origin}/demo");
    let first = get_through(proxy_addr, &url).await?;
    let second = get_through(proxy_addr, &url).await?;
    ensure!(
        first == ("MISS".to_owned(), BODY.to_owned()),
        "first GET: {first:?}"
    );
    ensure!(
        second == ("HIT".to_owned(), BODY.to_owned()),
        "second GET: {second:?}"
    );
    let seen = served.load(Ordering::SeqCst);
    ensure!(seen == 1, "the origin saw {seen} requests, expected 1");
    Ok(format!(
        "proxy {proxy_addr}: GET {url} MISS then HIT, origin asked once"
    ))
}

/// `GET url` in absolute-form through the proxy: X-Cache and the body.
async fn get_through(proxy: SocketAddr, url: &str) -> anyhow::Result<(String, String)> {
    let stream = TcpStream::connect(proxy)
        .await
        .with_context(|| format!("cannot connect to the proxy at {proxy}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get(url)
        .header(
            hyper::header::HOST,
            url.trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or(""),
        )
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let x_cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((x_cache, String::from_utf8_lossy(&body).into_owned()))
}

/// An origin answering every request with a cacheable body; counts them.
async fn start_origin(token: CancellationToken) -> anyhow::Result<(SocketAddr, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = token.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let counter = counter.clone();
            let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("cache-control", "max-age=60")
                            .header("content-type", "text/plain")
                            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                            .expect("valid response"),
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok((addr, served))
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
