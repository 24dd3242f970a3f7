//! What the proxy refuses to reach, as Squid does by default (issue 14):
//! its own host (unless --allow-localhost-origins), plain HTTP outside its
//! safe ports; and the X-Forwarded-For it adds.

#[path = "proxy/support.rs"]
mod support;

use support::{Origin, Proxy, netkit, on_host, raw, tools, via};

/// An address of one of this host's interfaces other than loopback, if it
/// has one (`ip -o addr` lists them).
fn interface_address() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(word.split('/').next()?.to_owned())
}

#[test]
fn origins_on_the_proxys_own_host_are_refused_by_default() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let port = origin.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let port_text = port.to_string();
    let proxy = Proxy::start_guarded(on_host(), dir.path(), &["--connect-port", &port_text]);
    let mut urls = vec![
        origin.url("/own?cc=max-age=60"),
        format!("http://localhost:{port}/own?cc=max-age=60"),
        format!("http://[::1]:{port}/own?cc=max-age=60"),
        format!("http://0.0.0.0:{port}/own?cc=max-age=60"),
    ];
    urls.extend(interface_address().map(|ip| format!("http://{ip}:{port}/own?cc=max-age=60")));
    for url in &urls {
        let reply = via(&proxy, url, &[]);
        assert_eq!(reply.status, 403, "{url}: {reply:?}");
        assert!(reply.text().contains("--allow-localhost-origins"), "{url}");
        assert_eq!(reply.x_cache(), "BYPASS");
        assert!(reply.header("via").is_some());
    }
    let tunnel = raw(
        proxy.addr(),
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
    );
    assert!(tunnel.starts_with("HTTP/1.1 403"), "{tunnel}");
    assert_eq!(
        origin.count("/own?cc=max-age=60"),
        0,
        "the origin was reached"
    );
    let denied = proxy.stats()["denied"].as_u64().unwrap();
    assert_eq!(denied as usize, urls.len() + 1);

    // With --allow-localhost-origins (as every other proxy test runs).
    let dir = tempfile::tempdir().unwrap();
    let allowed = Proxy::start(dir.path(), &[]);
    let reply = via(&allowed, &urls[0], &[]);
    assert_eq!((reply.status, reply.x_cache()), (200, "MISS"), "{reply:?}");
    assert_eq!(origin.count("/own?cc=max-age=60"), 1);
}

#[test]
fn plain_http_only_to_safe_ports() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    // The origin's port is in the default list (1025-65535); 25 is not.
    assert_eq!(via(&proxy, &origin.url("/safe"), &[]).status, 200);
    let reply = via(&proxy, "http://127.0.0.1:25/", &[]);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.text().contains("port 25"), "{}", reply.text());

    let dir = tempfile::tempdir().unwrap();
    let strict = Proxy::start(dir.path(), &["--safe-ports", "80,443,8000-8080"]);
    let reply = via(&strict, &origin.url("/unsafe"), &[]);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.text().contains("--safe-ports"));
    assert_eq!(origin.count("/unsafe"), 0);

    for bad in ["0", "90-80", "http", "1-70000"] {
        let out = netkit()
            .args(["proxy", "serve", "--safe-ports", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--safe-ports {bad}");
    }
}

#[test]
fn x_forwarded_for_gets_the_client_appended() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let seen = |proxy: &Proxy, path: &str, extra: &[&str]| {
        assert_eq!(via(proxy, &origin.url(path), extra).status, 200);
        origin.headers_seen(path)["x-forwarded-for"].clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    assert_eq!(seen(&proxy, "/xff-1", &[]), "127.0.0.1");
    let chain = ["-H", "X-Forwarded-For: 192.0.2.7"];
    assert_eq!(seen(&proxy, "/xff-2", &chain), "192.0.2.7, 127.0.0.1");

    let dir = tempfile::tempdir().unwrap();
    let transparent = Proxy::start(dir.path(), &["--forwarded-for", "transparent"]);
    assert_eq!(seen(&transparent, "/xff-3", &chain), "192.0.2.7");
    assert_eq!(seen(&transparent, "/xff-4", &[]), serde_json::Value::Null);

    let dir = tempfile::tempdir().unwrap();
    let delete = Proxy::start(dir.path(), &["--forwarded-for", "delete"]);
    assert_eq!(seen(&delete, "/xff-5", &chain), serde_json::Value::Null);
}
