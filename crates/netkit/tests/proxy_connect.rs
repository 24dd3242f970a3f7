//! CONNECT through `netkit proxy serve`: a tunnel to a python3 TLS origin
//! that curl verifies end to end, and the ports a tunnel may not reach.

#[path = "proxy/support.rs"]
mod support;

use std::process::Command;

use support::{Origin, Proxy, raw, tools, via};

fn self_signed(dir: &std::path::Path) -> std::path::PathBuf {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let both = dir.join("both.pem");
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(&key).unwrap());
    std::fs::write(&both, pem).unwrap();
    cert
}

#[test]
fn connect_tunnels_to_a_tls_origin() {
    if !tools() || !testkit::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = self_signed(dir.path());
    let origin = Origin::start_tls(&dir.path().join("both.pem"));
    let port = origin.addr().port().to_string();
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &["--connect-port", &port]);
    let url = format!("https://127.0.0.1:{port}/secure?cc=max-age=300");

    let reply = via(&proxy, &url, &["-k"]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text(), "GET /secure");
    // The origin's own certificate reached curl: the tunnel is end to end.
    let reply = via(&proxy, &url, &["--cacert", cert.to_str().unwrap()]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("x-cache"),
        None,
        "nothing inside a tunnel is touched"
    );
    assert_eq!(
        origin.count("/secure?cc=max-age=300"),
        2,
        "tunnels are never cached"
    );

    let log = proxy.log_lines(2);
    for line in &log {
        assert!(line.contains(" TCP_TUNNEL/200 "), "{line}");
        assert!(
            line.contains(&format!("CONNECT 127.0.0.1:{port} - HIER_DIRECT/127.0.0.1")),
            "{line}"
        );
    }

    // Ports other than 443 and --connect-port are refused.
    let other = Proxy::start(tempfile::tempdir().unwrap().path(), &[]);
    let reply = via(&other, &url, &["-k", "-v"]);
    assert_ne!(reply.status, 200);
    assert!(
        reply.stderr.contains("403") || reply.stderr.is_empty(),
        "{}",
        reply.stderr
    );
    let reply = raw(
        other.addr(),
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains("not allowed"), "{reply}");
    // A refused tunnel is a 502.
    let closed = testkit::closed_tcp_port();
    let open = Proxy::start(
        tempfile::tempdir().unwrap().path(),
        &["--connect-port", &closed.port().to_string()],
    );
    let reply = raw(
        open.addr(),
        format!("CONNECT {closed} HTTP/1.1\r\nHost: {closed}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(reply.starts_with("HTTP/1.1 502"), "{reply}");
}
