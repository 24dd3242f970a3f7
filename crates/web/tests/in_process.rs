//! The library's server and client together, in process, on port 0: what
//! other code (the demo, the proxy's tests) relies on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;
use web::{
    AccessLog, Client, ClientConfig, ClientRequest, Event, HttpVersion, Root, Server, ServerConfig,
};

const WAIT: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Running {
    url: String,
    addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(config: ServerConfig) -> Running {
    let server = Server::bind(config).await.unwrap();
    let (url, addr) = (server.url(), server.local_addr());
    let token = CancellationToken::new();
    let task = tokio::spawn(server.run(token.clone()));
    Running {
        url,
        addr,
        token,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn client_fetches_the_built_in_site_with_events() {
    let running = start(ServerConfig::new(loopback())).await;
    assert!(running.url.starts_with("http://127.0.0.1:"));
    let client = Client::new(ClientConfig::default()).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let url = Client::parse_url(&format!("{}netkit.png", running.url)).unwrap();
    let response = client
        .send(ClientRequest::get(url), &mut move |event| {
            seen.lock().unwrap().push(event)
        })
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.version, Version::HTTP_11);
    assert_eq!(response.headers["content-type"], "image/png");
    let body = response.bytes().await.unwrap();
    assert!(body.starts_with(b"\x89PNG"));
    // The name is resolved first (Resolved), then connected to.
    let events: Vec<Event> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|event| !matches!(event, Event::Resolved { .. }))
        .cloned()
        .collect();
    assert!(matches!(events[0], Event::Connecting { .. }));
    assert!(matches!(events[1], Event::Connected { .. }));
    assert!(matches!(&events[2], Event::Request(head) if head.target == "/netkit.png"));
    assert!(matches!(&events[3], Event::Response(head) if head.status == 200));
    running.stop().await;
}

#[tokio::test]
async fn http2_multiplexes_streams_on_one_connection() {
    let running = start(ServerConfig::new(loopback())).await;
    let stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let requests = ["/", "/netkit.png", "/missing", "/"].map(|path| {
        let mut sender = sender.clone();
        let uri = format!("{}{}", running.url.trim_end_matches('/'), path);
        tokio::spawn(async move {
            let request = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body.len())
        })
    });
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap().0.as_u16());
    }
    assert_eq!(statuses, [200, 200, 404, 200]);
    running.stop().await;
}

#[tokio::test]
async fn idle_http2_connections_are_closed() {
    let mut config = ServerConfig::new(loopback());
    config.header_read_timeout = Duration::from_millis(200);
    let running = start(config).await;
    let stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = Request::get(running.url.clone())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    // Then nothing: the server closes the connection on its own.
    tokio::time::timeout(WAIT, connection)
        .await
        .expect("the server closed the idle connection")
        .unwrap()
        .unwrap();
    running.stop().await;
}

#[tokio::test]
async fn tls_negotiates_http2_and_http1() {
    let mut config = ServerConfig::new(loopback());
    config.tls = Some(tls::Identity::SelfSigned);
    let running = start(config).await;
    assert!(running.url.starts_with("https://"));
    let url = Client::parse_url(&running.url.replace("127.0.0.1", "localhost")).unwrap();
    for (version, expected) in [
        (HttpVersion::Auto, Version::HTTP_2),
        (HttpVersion::Http1, Version::HTTP_11),
        (HttpVersion::Http2, Version::HTTP_2),
    ] {
        let client = Client::new(ClientConfig {
            tls: tls::ClientOptions {
                insecure: true,
                ca_file: None,
            },
            version,
            ..ClientConfig::default()
        })
        .unwrap();
        let response = client
            .send(ClientRequest::get(url.clone()), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(response.version, expected, "{version:?}");
        assert_eq!(response.status, 200);
    }
    // Verification is on by default.
    let client = Client::new(ClientConfig::default()).unwrap();
    let err = client
        .send(ClientRequest::get(url), &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    running.stop().await;
}

#[tokio::test]
async fn access_log_entries_reach_the_callback() {
    let entries = Arc::new(Mutex::new(Vec::new()));
    let sink = entries.clone();
    let mut config = ServerConfig::new(loopback());
    config.access_log = Some(AccessLog::new(move |entry| {
        sink.lock().unwrap().push(entry)
    }));
    let running = start(config).await;
    let client = Client::new(ClientConfig::default()).unwrap();
    let url = Client::parse_url(&format!("{}missing", running.url)).unwrap();
    let response = client
        .send(ClientRequest::get(url), &mut |_| {})
        .await
        .unwrap();
    let body = response.bytes().await.unwrap();
    running.stop().await;
    let entries = entries.lock().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].status, 404);
    assert_eq!(entries[0].bytes, body.len() as u64);
    assert_eq!(entries[0].request_line, "GET /missing HTTP/1.1");
}

#[tokio::test]
async fn shutdown_waits_for_a_download_in_flight() {
    let dir = std::env::temp_dir().join(format!("web-shutdown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = vec![7u8; 8 * 1024 * 1024];
    std::fs::write(dir.join("large.bin"), &data).unwrap();
    let mut config = ServerConfig::new(loopback());
    config.site.root = Root::Directory(dir.clone());
    let running = start(config).await;
    let client = Client::new(ClientConfig::default()).unwrap();
    let url = Client::parse_url(&format!("{}large.bin", running.url)).unwrap();
    let mut response = client
        .send(ClientRequest::get(url), &mut |_| {})
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    // Shut down mid-download: the response in flight still completes.
    running.token.cancel();
    let mut received = first.len();
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, data.len());
    tokio::time::timeout(WAIT, running.task)
        .await
        .unwrap()
        .unwrap();
    // And nothing is accepted afterwards.
    assert!(tokio::net::TcpStream::connect(running.addr).await.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bind_and_root_errors_are_typed() {
    let taken = std::net::TcpListener::bind(loopback()).unwrap();
    let err = Server::bind(ServerConfig::new(taken.local_addr().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, web::Error::Bind { .. }), "{err}");
    let mut config = ServerConfig::new(loopback());
    config.site.root = Root::Directory("/nonexistent/web/root".into());
    let err = Server::bind(config).await.unwrap_err();
    assert!(matches!(err, web::Error::Root { .. }), "{err}");
}
