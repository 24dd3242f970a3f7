//! Several listeners in one `web serve`: IPv4 and IPv6, cleartext and
//! TLS at once (`--bind`, `--tls-bind`), the cleartext ones redirecting
//! to HTTPS (`--redirect-http-to-https`) and HSTS on HTTPS (`--hsts`),
//! checked with curl and Python urllib.

#[path = "web/support.rs"]
mod support;

use testkit::Server;

use support::*;

fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
        || testkit::skip_or_fail("IPv6 loopback (::1) is not available")
}

fn serve_many(fixture: &Fixture, extra: &[&str], listeners: usize) -> Server {
    let mut command = netkit();
    command
        .args(["web", "serve", "-q", "--self-signed"])
        .arg(fixture.root())
        .args(extra);
    Server::start(command, listeners)
}

#[test]
fn ipv4_ipv6_cleartext_and_tls_at_once() {
    if !testkit::require("curl") || !ipv6_loopback() {
        return;
    }
    let fixture = Fixture::new("listeners-many");
    let server = serve_many(
        &fixture,
        &[
            "--bind",
            "127.0.0.1:0",
            "--bind",
            "[::1]:0",
            "--tls-bind",
            "127.0.0.1:0",
            "--tls-bind",
            "[::1]:0",
            "--hsts",
        ],
        4,
    );
    let addrs = server.addrs();
    assert_eq!(addrs.iter().filter(|a| a.is_ipv6()).count(), 2, "{addrs:?}");
    // TLS listeners come first in the output.
    for (i, addr) in addrs.iter().enumerate() {
        let secure = i < 2;
        let scheme = if secure { "https" } else { "http" };
        let reply = curl(&["-k", &format!("{scheme}://{addr}/hello.txt")]);
        assert_eq!(reply.status, 200, "{scheme}://{addr}");
        assert_eq!(reply.body_text(), HELLO);
        assert_eq!(
            reply.header("strict-transport-security").is_some(),
            secure,
            "HSTS only over TLS: {scheme}://{addr}"
        );
    }
}

#[test]
fn cleartext_redirects_to_https_for_curl_and_urllib() {
    if !testkit::require("curl") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("listeners-redirect");
    let server = serve_many(
        &fixture,
        &[
            "--bind",
            "127.0.0.1:0",
            "--tls-bind",
            "127.0.0.1:0",
            "--redirect-http-to-https",
            "--hsts",
            "600",
        ],
        2,
    );
    let (https, http) = (server.addrs()[0], server.addrs()[1]);
    let first = curl(&[&format!("http://{http}/docs/a.txt?x=1")]);
    assert_eq!(first.status, 308);
    assert_eq!(
        first.header("location"),
        Some(format!("https://127.0.0.1:{}/docs/a.txt?x=1", https.port()).as_str())
    );
    assert_eq!(first.header("strict-transport-security"), None);
    let followed = curl_output(
        &["-s", "-k", "-L", "-w", "%{http_code} %{url_effective}"],
        &[&format!("http://{http}/hello.txt")],
    );
    assert_eq!(
        text(&followed.stdout),
        format!("{HELLO}200 https://127.0.0.1:{}/hello.txt", https.port())
    );
    let direct = curl(&["-k", &format!("https://{https}/hello.txt")]);
    assert_eq!(
        direct.header("strict-transport-security"),
        Some("max-age=600")
    );

    let out = testkit::python(
        r#"
import ssl, sys, urllib.request
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
r = urllib.request.urlopen(sys.argv[1], context=ctx)
print(r.status, r.url.split("://")[0], r.read().decode(), end="")
"#,
        &[&format!("http://{http}/hello.txt")],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("200 https {HELLO}"));
}

#[test]
fn tls_listener_flags_need_a_certificate() {
    let out = netkit()
        .args(["web", "serve", "--tls-bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
