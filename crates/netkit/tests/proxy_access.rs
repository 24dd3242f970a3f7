//! Who may use `netkit proxy serve` and how much they may send: loopback
//! only unless `--allow` says otherwise (checked from a non-loopback
//! address in a network namespace), PURGE from the proxy's own host only,
//! and request bodies over `--max-body` refused with 413.

#[path = "proxy/netns.rs"]
mod netns;
#[path = "proxy/support.rs"]
mod support;

use std::time::Duration;

use netns::{Netns, OUTSIDE_V4, OUTSIDE_V6};
use support::{Origin, Proxy, Reply, curl_command, tools, via};
use testkit::Server;

#[test]
fn clients_outside_allow_get_403() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &["--allow", "127.0.0.1/32"]);
    let url = origin.url("/private");
    let reply = via(&proxy, &url, &["--interface", "127.0.0.2"]);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(
        reply.text().contains("127.0.0.2 is not allowed"),
        "{}",
        reply.text()
    );
    let reply = via(&proxy, &url, &["--interface", "127.0.0.1"]);
    assert_eq!(reply.status, 200);
    assert_eq!(origin.count("/private"), 1, "the denied request never left");
    let log = proxy.log_lines(2);
    assert!(log[0].contains(" 127.0.0.2 TCP_DENIED/403 "), "{log:?}");
    assert!(log[1].contains(" 127.0.0.1 TCP_MISS/200 "), "{log:?}");
    // CONNECT is refused too, before any connection to the target.
    let output = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_connect}"])
        .args(["--interface", "127.0.0.2", "-x", &proxy.url()])
        .arg("https://127.0.0.1:443/")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "403");
    let log = proxy.log_lines(1);
    assert!(
        log[0].contains(" 127.0.0.2 TCP_DENIED/403 ") && log[0].contains(" CONNECT 127.0.0.1:443 "),
        "{log:?}"
    );
}

/// The proxy is never an open one by accident: without --allow, a client
/// from any address but loopback gets 403, checked from a non-loopback
/// address in a network namespace of its own.
#[test]
fn by_default_only_loopback_clients_are_served() {
    if !tools() || !netns::available() {
        return;
    }
    let ns = Netns::new();
    let mut command = ns.command("python3");
    command.arg("-c").arg(support::ORIGIN_PY);
    let origin = Server::start(command, 1);
    let path = "/who?cc=max-age=300";
    let url = format!("http://{}{path}", origin.addr());
    let served = || {
        let stats = curl_command(
            ns.command("curl"),
            &[&format!("http://{}/_stats", origin.addr())],
        );
        let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
        stats["counts"][path].as_u64().unwrap_or(0)
    };
    let dir = tempfile::tempdir().unwrap();
    let start = |extra: &[&str]| {
        let mut command = ns.command(env!("CARGO_BIN_EXE_netkit"));
        command
            .args(["proxy", "serve", "--allow-localhost-origins"])
            .args(["--bind", "[::]:0", "--cache-dir"])
            .arg(dir.path())
            .args(extra);
        Server::start(command, 1)
    };
    // From `source` to the proxy at `host`, the proxy's own address family.
    let from = |proxy: &Server, source: &str, host: &str, extra: &[&str]| -> Reply {
        let proxy_url = format!("http://{host}:{}", proxy.addr().port());
        let mut args = vec!["--interface", source, "-x", &proxy_url];
        args.extend_from_slice(extra);
        args.push(&url);
        curl_command(ns.command("curl"), &args)
    };
    let outside = [
        (OUTSIDE_V4, OUTSIDE_V4.to_owned()),
        (OUTSIDE_V6, format!("[{OUTSIDE_V6}]")),
    ];

    let proxy = start(&[]);
    // Loopback clients, IPv4 (mapped on this dual-stack socket) and IPv6.
    assert_eq!(
        from(&proxy, "127.0.0.1", "127.0.0.1", &[]).x_cache(),
        "MISS"
    );
    assert_eq!(from(&proxy, "::1", "[::1]", &[]).x_cache(), "HIT");
    for (source, host) in &outside {
        for extra in [&[][..], &["-X", "PURGE"]] {
            let reply = from(&proxy, source, host, extra);
            assert_eq!(reply.status, 403, "{source} {extra:?}: {reply:?}");
            assert!(
                reply.text().contains(&format!("{source} is not allowed")),
                "{}",
                reply.text()
            );
        }
    }
    assert_eq!(served(), 1, "refused requests never reach the origin");
    let log: Vec<String> = (0..6)
        .map(|_| proxy.next_line(Duration::from_secs(10)).unwrap())
        .collect();
    assert!(log[0].contains(" 127.0.0.1 TCP_MISS/200 "), "{log:#?}");
    // A hit that arrives while the miss is still being stored is served
    // from that fill (Squid's collapsed forwarding): a hit either way.
    assert!(
        log[1].contains(" ::1 TCP_HIT/200 ") || log[1].contains(" ::1 TCP_CF_HIT/200 "),
        "{log:#?}"
    );
    assert!(log[2].contains(" 192.0.2.1 TCP_DENIED/403 "), "{log:#?}");
    assert!(log[5].contains(" 2001:db8::1 TCP_DENIED/403 "), "{log:#?}");
    assert!(log[5].contains(" PURGE http://"), "{log:#?}");
    drop(proxy);

    // Opened to everyone on purpose: served, but PURGE stays local.
    let proxy = start(&["--allow", "0.0.0.0/0", "--allow", "::/0"]);
    for (source, host) in &outside {
        assert_eq!(from(&proxy, source, host, &[]).x_cache(), "HIT");
        let reply = from(&proxy, source, host, &["-X", "PURGE"]);
        assert_eq!(reply.status, 403, "{reply:?}");
        assert!(reply.text().contains("PURGE"), "{}", reply.text());
    }
    let reply = from(&proxy, "127.0.0.1", "127.0.0.1", &["-X", "PURGE"]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(from(&proxy, OUTSIDE_V4, OUTSIDE_V4, &[]).x_cache(), "MISS");
    assert_eq!(served(), 2);
}

#[test]
fn request_bodies_over_max_body_get_413() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &["--max-body", "1KiB"]);
    let url = origin.url("/upload");
    let big = "x".repeat(2000);
    let reply = via(&proxy, &url, &["--data-binary", &big]);
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(
        reply.text().contains("413 Payload Too Large"),
        "{}",
        reply.text()
    );
    // Without a Content-Length the limit is enforced while streaming.
    let reply = via(
        &proxy,
        &url,
        &["-H", "Transfer-Encoding: chunked", "--data-binary", &big],
    );
    assert_eq!(reply.status, 413, "{reply:?}");
    let reply = via(&proxy, &url, &["--data-binary", "small"]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "got small");
    let log = proxy.log_lines(3);
    assert!(log[0].contains("TCP_DENIED/413"), "{log:?}");
}
