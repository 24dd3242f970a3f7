//! `netkit proxy serve` in front of `netkit web serve`: the static server's
//! validators (ETag, Last-Modified, no Cache-Control) drive heuristic
//! freshness and revalidation, and CONNECT reaches its HTTPS side.

#[path = "proxy/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use support::{Proxy, curl, netkit, via};
use testkit::Server;

/// `netkit web serve DIR` on an ephemeral port; its access log is stdout.
fn web_serve(dir: &Path, extra: &[&str]) -> Server {
    let mut command = netkit();
    command
        .args(["web", "serve"])
        .arg(dir)
        .args(["--bind", "127.0.0.1:0"])
        .args(extra);
    Server::start(command, 1)
}

/// Access log lines the web server prints for `path` within a short wait.
fn requests_seen(web: &Server, path: &str) -> usize {
    let mut seen = 0;
    while let Some(line) = web.next_line(Duration::from_millis(500)) {
        if line.contains(&format!("\"GET {path} ")) {
            seen += 1;
        }
    }
    seen
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.html");
    std::fs::write(&old, "<h1>written a month ago</h1>\n").unwrap();
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(month_ago)
        .unwrap();
    std::fs::write(dir.path().join("new.html"), "<h1>just written</h1>\n").unwrap();
    dir
}

#[test]
fn miss_then_hit_against_netkit_web_serve() {
    if !testkit::require("curl") {
        return;
    }
    let site = site();
    let web = web_serve(site.path(), &[]);
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &[]);
    let url = format!("http://{}/old.html", web.addr());

    let first = via(&proxy, &url, &[]);
    assert_eq!(first.status, 200);
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(first.text(), "<h1>written a month ago</h1>\n");
    // A month since Last-Modified gives about three days of heuristic
    // freshness (a tenth of the age), so the copy is served as it is.
    let second = via(&proxy, &url, &[]);
    assert_eq!(second.x_cache(), "HIT", "{second:?}");
    assert_eq!(second.text(), first.text());
    assert_eq!(second.header("etag"), first.header("etag"));
    let path_form = curl(&[&format!("{}/{}/old.html", proxy.url(), web.addr())]);
    assert_eq!(path_form.x_cache(), "HIT");
    assert_eq!(path_form.text(), first.text());
    assert_eq!(
        requests_seen(&web, "/old.html"),
        1,
        "web serve saw one request"
    );

    // A file written just now has no heuristic freshness: every later
    // request is revalidated, and web serve answers 304 from its ETag.
    let url = format!("http://{}/new.html", web.addr());
    assert_eq!(via(&proxy, &url, &[]).x_cache(), "MISS");
    for _ in 0..2 {
        let reply = via(&proxy, &url, &[]);
        assert_eq!(reply.x_cache(), "REVALIDATED", "{reply:?}");
        assert_eq!(reply.text(), "<h1>just written</h1>\n");
    }
    let log = proxy.log_lines(6);
    assert!(log[4].contains("TCP_REFRESH_UNMODIFIED/200"), "{log:#?}");
}

#[test]
fn connect_to_netkit_web_serve_self_signed() {
    if !testkit::require("curl") {
        return;
    }
    let site = site();
    let web = web_serve(site.path(), &["--self-signed"]);
    let port = web.addr().port().to_string();
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &["--connect-port", &port]);
    let url = format!("https://127.0.0.1:{port}/old.html");
    for _ in 0..2 {
        let reply = via(&proxy, &url, &["-k"]);
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.text(), "<h1>written a month ago</h1>\n");
        assert_eq!(reply.header("x-cache"), None, "the tunnel is opaque");
    }
    assert_eq!(
        requests_seen(&web, "/old.html"),
        2,
        "tunnels are never cached"
    );
    // Without -k curl refuses the self-signed certificate: the proxy did
    // not terminate TLS, web serve's own certificate reached the client.
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-x", &proxy.url(), &url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(60), "certificate problem");
    for line in proxy.log_lines(2) {
        assert!(line.contains(" TCP_TUNNEL/200 "), "{line}");
        assert!(
            line.contains(&format!("CONNECT 127.0.0.1:{port} ")),
            "{line}"
        );
    }
}
