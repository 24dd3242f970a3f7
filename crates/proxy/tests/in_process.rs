//! The proxy library driven in-process: an origin on hyper that counts what
//! it serves, the proxy in front of it, and hyper clients; the access log
//! arrives as typed records.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use proxy::{CacheCode, Config, Proxy};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Serves `max-age=60` bodies after `delay`, counting requests.
async fn origin(delay: Duration) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(delay).await;
                    let body = format!("body of {}", request.uri().path());
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("cache-control", "max-age=60")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, served)
}

async fn get(proxy: SocketAddr, url: &str) -> (u16, String, String) {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let x_cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, x_cache, String::from_utf8_lossy(&body).into_owned())
}

async fn start(
    dir: &std::path::Path,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<proxy::AccessRecord>,
    CancellationToken,
) {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.to_owned());
    // The origin these tests start is on loopback.
    config.allow_localhost_origins = true;
    let mut proxy = Proxy::bind(config).await.unwrap();
    let addr = proxy.local_addr();
    let log = proxy.take_access_log().unwrap();
    let token = CancellationToken::new();
    tokio::spawn(proxy.run(token.clone()));
    (addr, log, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_collapse_into_one_origin_request() {
    let (origin, served) = origin(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, mut log, token) = start(dir.path()).await;
    let url = format!("http://{origin}/shared");
    let clients: Vec<_> = (0..30)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(proxy, &url).await })
        })
        .collect();
    for client in clients {
        let (status, _, body) = client.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, "body of /shared");
    }
    assert_eq!(served.load(Ordering::SeqCst), 1);
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(log.recv().await.unwrap().code);
    }
    assert_eq!(
        codes.iter().filter(|c| **c == CacheCode::Miss).count(),
        1,
        "{codes:?}"
    );
    token.cancel();
}

#[tokio::test]
async fn hits_and_the_access_log() {
    let (origin, served) = origin(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, mut log, token) = start(dir.path()).await;
    let url = format!("http://{origin}/a");
    assert_eq!(get(proxy, &url).await.1, "MISS");
    assert_eq!(get(proxy, &url).await.1, "HIT");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    let miss = log.recv().await.unwrap();
    assert_eq!(
        (miss.code, miss.status, miss.url.as_str()),
        (CacheCode::Miss, 200, url.as_str())
    );
    let hit = log.recv().await.unwrap();
    // Right after the miss the entry may still be being written: the second
    // request then waits for it (a collapsed hit) instead of going out.
    assert!(
        matches!(hit.code, CacheCode::Hit | CacheCode::CollapsedHit),
        "{hit:?}"
    );
    assert_eq!(hit.hierarchy, proxy::Hierarchy::None);
    assert!(hit.bytes > "body of /a".len() as u64);

    // Stopping the proxy closes its log.
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), async {
        while log.recv().await.is_some() {}
    })
    .await
    .expect("the access log closes once the proxy has stopped");
}
