//! The proxy in the demo: the demo's web server (in-process, serving a page
//! last modified a month ago, so it is heuristically fresh), the proxy in
//! front of it with a throwaway cache directory, and two GETs through the
//! proxy: the first a miss, the second a hit the web server never sees.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use web::{AccessLog, Root, Server, ServerConfig};

const PAGE: &str = "<h1>cached by netkit proxy</h1>\n";
const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

pub async fn check() -> anyhow::Result<String> {
    let scratch = Scratch::new("proxy")?;
    let site = scratch.0.join("site");
    std::fs::create_dir_all(&site)?;
    let page = site.join("page.html");
    std::fs::write(&page, PAGE)?;
    std::fs::File::options()
        .write(true)
        .open(&page)?
        .set_modified(SystemTime::now() - MONTH)?;

    let token = CancellationToken::new();
    let _stop = token.clone().drop_guard();
    let served = Arc::new(AtomicU64::new(0));
    let mut web_config = ServerConfig::new("127.0.0.1:0".parse()?);
    web_config.site.root = Root::Directory(site);
    web_config.access_log = Some(AccessLog::new({
        let served = served.clone();
        move |_| {
            served.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let web = Server::bind(web_config).await?;
    let origin = web.local_addr();
    tokio::spawn(web.run(token.clone()));

    let mut config = proxy::Config::new("127.0.0.1:0".parse()?, scratch.0.join("cache"));
    // The demo's web server is on loopback, which a proxy refuses by default.
    config.allow_localhost_origins = true;
    let server = proxy::Proxy::bind(config).await?;
    let proxy_addr = server.local_addr();
    tokio::spawn(server.run(token.clone()));

    let url = format!("http://{origin}/page.html");
    let first = get_through(proxy_addr, &url).await?;
    let second = get_through(proxy_addr, &url).await?;
    ensure!(
        first == ("MISS".to_owned(), PAGE.to_owned()),
        "first GET: {first:?}"
    );
    ensure!(
        second.0 == "HIT" && second.1 == PAGE,
        "second GET: {second:?}"
    );
    // The web server logs a response once its body is sent, which may be a
    // moment after the client has it.
    for _ in 0..100 {
        if served.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = served.load(Ordering::SeqCst);
    ensure!(seen == 1, "the web server saw {seen} requests, expected 1");
    Ok(format!(
        "proxy {proxy_addr} in front of web {origin}: GET /page.html MISS then HIT, web asked once"
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
    let request = Request::get(url).body(Empty::<Bytes>::new())?;
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

/// A directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("netkit-demo-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", Path::new(&dir).display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
