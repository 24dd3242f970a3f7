//! `netkit proxy serve` as a proxy, end to end: errors answered with the
//! right status, hop-by-hop headers, keep-alive both sides, the access log,
//! and the command line.

#[path = "proxy/netns.rs"]
mod netns;
#[path = "proxy/support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use netns::Netns;
use support::{Origin, Proxy, curl, netkit, raw, tools, via};

#[test]
fn origin_errors_pass_through_with_their_bodies() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    for status in [404, 500] {
        let path = format!("/missing?status={status}&body=nothing%20here");
        let reply = via(&proxy, &origin.url(&path), &[]);
        assert_eq!(reply.status, status);
        assert_eq!(reply.text(), "nothing here");
        // The proxy is still fine afterwards.
        assert_eq!(via(&proxy, &origin.url("/ok"), &[]).status, 200);
    }
    let log = proxy.log_lines(4);
    assert!(log[0].contains(" TCP_MISS/404 "), "{log:?}");
    assert!(log[2].contains(" TCP_MISS/500 "), "{log:?}");
}

#[test]
fn unreachable_origins_get_502_and_slow_ones_504() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let timeouts = ["--origin-timeout", "500ms", "--connect-timeout", "300ms"];
    let proxy = Proxy::start(dir.path(), &timeouts);

    let closed = testkit::closed_tcp_port();
    let reply = via(&proxy, &format!("http://{closed}/x"), &[]);
    assert_eq!(reply.status, 502);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.text().contains("502 Bad Gateway"), "{}", reply.text());
    assert!(reply.text().contains("refused"), "{}", reply.text());
    assert!(
        reply.text().contains(&closed.to_string()),
        "{}",
        reply.text()
    );

    // curl gives up after 30 s, the origin answers after 60: a 504 can only
    // come from the proxy keeping to its --origin-timeout.
    let reply = via(&proxy, &origin.url("/slow?delay=60"), &[]);
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(
        reply.text().contains("504 Gateway Timeout"),
        "{}",
        reply.text()
    );
    assert!(
        reply.text().contains("did not answer within 500ms"),
        "{}",
        reply.text()
    );

    // An origin that stops half-way through its body: the client's response
    // is cut off after --origin-timeout, not held open, and nothing is stored.
    let stalled = origin.url("/stalled?cc=max-age=300&size=10000&stall=60");
    let reply = via(&proxy, &stalled, &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 10_000, "the half that was sent");
    assert_eq!(reply.exit, Some(18), "cut short, not timed out: {reply:?}");
    assert_eq!(via(&proxy, &origin.url("/ok"), &[]).status, 200);
    assert_eq!(proxy.stats()["entries"], 0);

    // A listener whose accept queue is full: the kernel drops new SYNs, so
    // the proxy's connect hangs until --connect-timeout.
    let mut command = Command::new("python3");
    command.arg("-c").arg(FULL_BACKLOG);
    let silent = testkit::Server::start(command, 1);
    let reply = via(&proxy, &format!("http://{}/x", silent.addr()), &[]);
    assert_eq!(reply.status, 504, "{reply:?}");
    let expected = format!("could not connect to {} within 300ms", silent.addr());
    assert!(reply.text().contains(&expected), "{}", reply.text());

    // Then the stalled body, /ok and the stats page, each a line.
    let log = proxy.log_lines(6);
    assert!(log[0].contains("TCP_MISS/502"), "{log:?}");
    assert!(log[1].contains("TCP_MISS/504"), "{log:?}");
    assert!(log[5].contains("TCP_MISS/504"), "{log:?}");
}

/// Listens with a backlog of 0, fills the queue itself, never accepts.
const FULL_BACKLOG: &str = r#"
import socket, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(0)
queued = socket.create_connection(server.getsockname())
print("listening on %s:%d" % server.getsockname(), flush=True)
time.sleep(600)
"#;

/// A name that does not resolve: the proxy runs in a network namespace with
/// no route out, so its lookup fails there and no query leaves the host.
#[test]
fn unresolvable_hosts_get_502() {
    if !tools() || !netns::available() {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start_in(ns.runner(), dir.path(), &[]);
    let reply = via(&proxy, "http://no-such-host.invalid/", &[]);
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(reply.text().contains("502 Bad Gateway"), "{}", reply.text());
    assert!(reply.text().contains("cannot resolve"), "{}", reply.text());
    assert!(reply.text().contains("no-such-host.invalid"));
    // The same for a tunnel: curl sees the CONNECT answered 502.
    let output = (proxy.runner)("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_connect}", "-x"])
        .args([proxy.url(), "https://no-such-host.invalid/".into()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "502");
    let log = proxy.log_lines(2);
    for (line, request) in log.iter().zip([
        "GET http://no-such-host.invalid/",
        "CONNECT no-such-host.invalid:443",
    ]) {
        assert!(line.contains(" TCP_MISS/502 "), "{line}");
        assert!(
            line.contains(&format!("{request} - HIER_DIRECT/no-such-host.invalid ")),
            "{line}"
        );
    }
}

#[test]
fn malformed_requests_get_400() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    // No host anywhere: neither absolute-form nor the path form.
    let reply = raw(
        proxy.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("names no host"), "{reply}");
    let reply = raw(
        proxy.addr(),
        b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let reply = raw(
        proxy.addr(),
        b"GET /bad_host!/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // Asked to fetch from itself, again and again: a loop, cut short.
    let hop = proxy.addr().to_string();
    let nested = format!("/{}x", format!("{hop}/").repeat(12));
    let reply = curl(&[&format!("{}{nested}", proxy.url())]);
    assert_eq!(reply.status, 508, "{reply:?}");
    assert!(reply.text().contains("forwarding loop"));
    // Not HTTP at all.
    let reply = raw(proxy.addr(), b"HELLO THERE\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // Still serving.
    assert_eq!(
        curl(&["-x", &proxy.url(), "http://netkit.proxy/stats"]).status,
        200
    );

    // Requests the HTTP parser refuses are answered and logged too.
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    // More header fields than the parser takes (a small request, so it is
    // all sent before the proxy answers and closes).
    let many: String = (0..200).map(|n| format!("X-{n}: 1\r\n")).collect();
    let huge = format!("GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for (request, status) in [
        (&b"HELLO THERE\r\n\r\n"[..], "400"),
        (b"GET http://x/ HTTP/1.1\r\nno colon here\r\n\r\n", "400"),
        (huge.as_bytes(), "431"),
    ] {
        let reply = raw(proxy.addr(), request);
        assert!(reply.starts_with(&format!("HTTP/1.1 {status} ")), "{reply}");
        let line = &proxy.log_lines(1)[0];
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 10, "{line}");
        assert_eq!(fields[3], format!("NONE_NONE/{status}"), "{line}");
        assert_eq!(fields[4], (reply.len()).to_string(), "{line}");
        let url = if status == "431" {
            "error:request-too-large"
        } else {
            "error:invalid-request"
        };
        assert_eq!(
            fields[5..],
            ["NONE", url, "-", "HIER_NONE/-", "-"],
            "{line}"
        );
    }
}

#[test]
fn hop_by_hop_headers_are_removed_both_ways() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/hop?hop=1";
    let reply = via(
        &proxy,
        &origin.url(path),
        &[
            "-H",
            "Connection: X-Secret",
            "-H",
            "X-Secret: 1",
            "-H",
            "Keep-Alive: timeout=300",
            "-H",
            "Proxy-Authorization: Basic YWxpY2U6c2VjcmV0",
            "-H",
            "Proxy-Connection: keep-alive",
            "-H",
            "TE: trailers",
            "-H",
            "Trailer: X-Checksum",
            "-H",
            "Upgrade: websocket",
            "-H",
            "X-End: yes",
        ],
    );
    assert_eq!(reply.status, 200);
    let seen = origin.headers_seen(path);
    for gone in [
        "x-secret",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert!(seen.get(gone).is_none(), "origin saw {gone}: {seen}");
    }
    assert_eq!(seen["x-end"], "yes");
    assert_eq!(seen["host"], origin.addr().to_string());
    assert!(
        seen["via"].as_str().unwrap().contains("1.1 netkit"),
        "{seen}"
    );
    assert!(reply.header("x-internal").is_none(), "{reply:?}");
    assert!(reply.header("keep-alive").is_none(), "{reply:?}");
    assert_eq!(reply.header("x-end-to-end"), Some("kept"));
}

#[test]
fn keep_alive_to_clients_and_a_pool_to_origins() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let output = Command::new("curl")
        .args([
            "-sv",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-x",
            &proxy.url(),
        ])
        .args([origin.url("/k1"), origin.url("/k2"), origin.url("/k3")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Re-using existing connection").count(),
        2,
        "{stderr}"
    );
    // Separate clients, sequentially: the proxy reuses its origin connection.
    // (A request may beat the previous connection back into the pool, so a
    // second connection is allowed; without a pool there would be eleven.)
    for n in 4..12 {
        via(&proxy, &origin.url(&format!("/k{n}")), &[]);
    }
    let connections = origin.stats()["connections"].as_u64().unwrap();
    assert!(
        connections <= 2,
        "{connections} origin connections for 11 requests"
    );
}

#[test]
fn signals_shut_down_gracefully() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut proxy = Proxy::start(dir.path(), &["--grace", "2s"]);
        // An idle keep-alive client does not hold the proxy up.
        let _idle = std::net::TcpStream::connect(proxy.addr()).unwrap();
        proxy.server.signal(signal);
        let status = proxy
            .server
            .wait_timeout(Duration::from_secs(15))
            .expect("proxy exits after the signal");
        assert!(status.success(), "SIG{signal}: {status:?}");
    }
}

#[test]
fn requests_in_flight_finish_after_sigterm() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let mut proxy = Proxy::start(dir.path(), &["--grace", "10s"]);
    let path = "/slow?delay=1&size=5000";
    let url = origin.url(path);
    let proxy_url = proxy.url();
    let client = std::thread::spawn(move || curl(&["-x", &proxy_url, &url]));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while origin.count(path) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached the origin"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.server.signal("TERM");
    let reply = client.join().unwrap();
    assert_eq!((reply.status, reply.body.len()), (200, 5000), "{reply:?}");
    let status = proxy.server.wait_timeout(Duration::from_secs(15));
    assert!(status.expect("proxy exits").success());
}

#[test]
fn command_line() {
    let out = netkit()
        .args(["proxy", "serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--allow",
        "--connect-port",
        "--cache-dir",
        "--cache-size",
        "--max-object-size",
        "--memory-size",
        "--max-body",
        "--origin-timeout",
        "--access-log",
        "--grace",
    ] {
        assert!(help.contains(flag), "serve --help documents {flag}");
    }
    assert!(help.contains("127.0.0.1:8888"));
    let out = netkit().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("proxy"));

    for bad in [
        &["proxy", "serve", "--allow", "not-a-cidr"][..],
        &["proxy", "serve", "--cache-size", "5 parsecs"],
        &["proxy", "serve", "--connect-port", "0"],
        &["proxy", "purge"],
    ] {
        let out = netkit().args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = netkit()
        .args(["proxy", "serve", "--bind", &addr, "--cache-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));

    // One cache directory, one proxy.
    let _running = Proxy::start(dir.path(), &[]);
    let out = netkit()
        .args(["proxy", "serve", "--bind", "127.0.0.1:0", "--cache-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another netkit proxy"));

    let out = netkit()
        .args([
            "proxy",
            "serve",
            "--cache-size",
            "1MiB",
            "--max-object-size",
            "2MiB",
            "--cache-dir",
        ])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // Without --cache-dir: netkit-proxy-cache under the user's cache
    // directory, $XDG_CACHE_HOME or else ~/.cache.
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("xdg");
    for (xdg_cache_home, expected) in [
        (Some(&xdg), xdg.join("netkit-proxy-cache")),
        (None, home.path().join(".cache/netkit-proxy-cache")),
    ] {
        let mut command = netkit();
        command
            .env("HOME", home.path())
            .env_remove("XDG_CACHE_HOME")
            .args(["proxy", "serve", "--bind", "127.0.0.1:0"]);
        if let Some(dir) = xdg_cache_home {
            command.env("XDG_CACHE_HOME", dir);
        }
        let _proxy = testkit::Server::start(command, 1);
        assert!(expected.join("lock").is_file(), "{}", expected.display());
        assert!(expected.join("entries").is_dir(), "{}", expected.display());
    }
}

#[test]
fn access_log_to_a_file() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let proxy = Proxy::start(
        &dir.path().join("cache"),
        &["--access-log", log.to_str().unwrap()],
    );
    via(&proxy, &origin.url("/logged?cc=max-age=60"), &[]);
    via(&proxy, &origin.url("/logged?cc=max-age=60"), &[]);
    proxy.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("TCP_MISS/200"));
    assert!(lines[1].contains("HIT/200"), "{text}");
}

#[test]
fn demo_has_a_proxy_line() {
    let out = netkit().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("proxy"))
        .expect("a proxy line");
    assert!(line.contains(" ok "), "{line}");
    assert!(line.contains("MISS then HIT"), "{line}");
    assert!(line.contains("in front of web"), "{line}");
}

#[test]
fn idle_client_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &["--idle-timeout", "300ms"]);
    let mut stream = std::net::TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let n = std::io::Read::read_to_end(&mut stream, &mut rest).expect("closed, not timed out");
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&rest));
}

#[test]
fn concurrent_uncacheable_requests_all_reach_the_origin() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let url = origin.url("/live?cc=no-store&delay=0.3");
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "-s",
        "--max-time",
        "30",
        "-Z",
        "--parallel-immediate",
        "--parallel-max",
        "20",
        "-x",
    ]
    .map(String::from)
    .to_vec();
    args.push(proxy.url());
    args.extend(["-w".into(), "%{http_code}\\n".into()]);
    for i in 0..20 {
        args.push("-o".into());
        args.push(out.path().join(i.to_string()).display().to_string());
        args.push(url.clone());
    }
    let output = Command::new("curl").args(&args).output().unwrap();
    let codes = String::from_utf8_lossy(&output.stdout);
    assert_eq!(codes.lines().filter(|c| *c == "200").count(), 20, "{codes}");
    assert_eq!(origin.count("/live?cc=no-store&delay=0.3"), 20);
}
