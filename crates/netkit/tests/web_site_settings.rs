//! The site settings of `web serve` through the binary, with curl and
//! Python's urllib as clients: extra headers, Cache-Control, CORS
//! (preflight and simple requests) and Basic auth against files made by
//! Apache's `htpasswd`.

#[path = "web/support.rs"]
mod support;

use std::process::Command;

use support::*;

/// Runs a urllib script and returns its stdout; the script gets the
/// base URL as its first argument.
fn urllib(script: &str, base: &str) -> String {
    let out = testkit::python(script, &[base], b"");
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn headers_and_cache_control_on_responses() {
    if !testkit::require("curl") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("settings-headers");
    let server = serve(
        Some(&fixture.root()),
        &[
            "--header",
            "X-Frame-Options: DENY",
            "--header",
            "Content-Security-Policy: default-src 'self'",
            "--cache-control",
            "public, max-age=31536000, immutable",
        ],
    );
    let reply = curl(&[&url(&server, "/hello.txt")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        reply.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // An error keeps the headers but is not made cacheable.
    let missing = curl(&[&url(&server, "/nope.txt")]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-frame-options"), Some("DENY"));
    assert_eq!(missing.header("cache-control"), None);

    let out = urllib(
        r#"
import sys, urllib.request, urllib.error
r = urllib.request.urlopen(sys.argv[1] + "hello.txt")
print(r.status, r.headers["X-Frame-Options"], r.headers["Cache-Control"])
print(r.read().decode(), end="")
"#,
        &url(&server, "/"),
    );
    assert_eq!(
        out,
        format!("200 DENY public, max-age=31536000, immutable\n{HELLO}")
    );
}

#[test]
fn a_bad_header_flag_is_a_usage_error() {
    for bad in ["Bad Name: x", "no colon here", "X-Ok: line\nbreak"] {
        let out = netkit()
            .args(["web", "serve", "--bind", "127.0.0.1:0", "--header", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            text(&out.stderr).contains("--header"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn cors_preflight_and_simple_requests_from_allowed_and_other_origins() {
    if !testkit::require("curl") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("settings-cors");
    let server = serve(
        Some(&fixture.root()),
        &["--cors-origin", "http://app.test", "http://admin.test"],
    );
    let target = url(&server, "/hello.txt");
    let preflight = |origin: &str| {
        curl(&[
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Access-Control-Request-Method: GET",
            "-H",
            "Access-Control-Request-Headers: x-token, content-type",
            &target,
        ])
    };
    let ok = preflight("http://admin.test");
    assert_eq!(ok.status, 204);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://admin.test")
    );
    assert_eq!(ok.header("access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(
        ok.header("access-control-allow-headers"),
        Some("x-token, content-type")
    );
    assert!(ok.header("access-control-max-age").is_some());
    assert!(ok.header("vary").unwrap().contains("Origin"));
    let refused = preflight("http://evil.test");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    // A plain OPTIONS and other methods stay refused.
    let options = curl(&["-X", "OPTIONS", &target]);
    assert_eq!(options.status, 405);
    let put = curl(&["-X", "PUT", "-H", "Origin: http://app.test", &target]);
    assert_eq!(put.status, 405);

    // Simple requests: the allowed origin is echoed; others get nothing.
    let out = urllib(
        r#"
import sys, urllib.request
for origin in ["http://app.test", "http://evil.test"]:
    req = urllib.request.Request(sys.argv[1] + "hello.txt", headers={"Origin": origin})
    r = urllib.request.urlopen(req)
    print(r.status, r.headers.get("Access-Control-Allow-Origin"), "Origin" in r.headers.get("Vary", ""))
"#,
        &url(&server, "/"),
    );
    assert_eq!(out, "200 http://app.test True\n200 None True\n");

    let any = serve(Some(&fixture.root()), &["--cors"]);
    let reply = curl(&["-H", "Origin: http://x.test", &url(&any, "/hello.txt")]);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
}

/// An htpasswd file made by Apache's own tool, with bcrypt (`-B`).
fn htpasswd_file(dir: &std::path::Path, users: &[(&str, &str)]) -> std::path::PathBuf {
    let file = dir.join("users.htpasswd");
    for (i, (user, password)) in users.iter().enumerate() {
        let mut command = Command::new("htpasswd");
        command.arg("-bB");
        if i == 0 {
            command.arg("-c");
        }
        let status = command
            .arg(&file)
            .arg(user)
            .arg(password)
            .output()
            .expect("htpasswd runs")
            .status;
        assert!(status.success());
    }
    file
}

#[test]
fn basic_auth_with_htpasswd_bcrypt_and_throttling() {
    if !testkit::require("curl") || !testkit::require("htpasswd") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("settings-auth");
    let file = htpasswd_file(
        &fixture.base,
        &[("alice", "correct horse"), ("bob", "battery staple")],
    );
    let file = file.to_str().unwrap();
    let server = serve(
        Some(&fixture.root()),
        &[
            "--auth-file",
            file,
            "--realm",
            "Team docs",
            "--log",
            &fixture.base.join("access.log").display().to_string(),
        ],
    );
    let target = url(&server, "/hello.txt");

    let missing = curl(&[&target]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Basic realm=\"Team docs\", charset=\"UTF-8\"")
    );
    let ok = curl(&["-u", "alice:correct horse", &target]);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body_text(), HELLO);

    // urllib answers the challenge itself with the password it was given.
    let out = urllib(
        r#"
import sys, urllib.request, urllib.error
base = sys.argv[1]
auth = urllib.request.HTTPBasicAuthHandler(urllib.request.HTTPPasswordMgrWithDefaultRealm())
auth.add_password(None, base, "bob", "battery staple")
r = urllib.request.build_opener(auth).open(base + "hello.txt")
print(r.status, r.read().decode(), end="")
try:
    urllib.request.urlopen(base + "hello.txt")
except urllib.error.HTTPError as e:
    print(e.code)
"#,
        &url(&server, "/"),
    );
    assert_eq!(out, format!("200 {HELLO}401\n"));

    // Wrong passwords, and an unknown user, are refused; after five
    // failures this client waits (429) even with the right password.
    let wrong = curl(&["-u", "alice:Correct horse", &target]);
    assert_eq!(wrong.status, 401);
    let unknown = curl(&["-u", "mallory:correct horse", &target]);
    assert_eq!(unknown.status, 401);
    for _ in 0..3 {
        assert_eq!(curl(&["-u", "alice:guess", &target]).status, 401);
    }
    let throttled = curl(&["-u", "alice:correct horse", &target]);
    assert_eq!(throttled.status, 429);
    assert!(throttled.header("retry-after").is_some());

    drop(server);
    let log = std::fs::read_to_string(fixture.base.join("access.log")).unwrap();
    assert!(log.contains("\"GET /hello.txt HTTP/1.1\" 401 "), "{log}");
    for secret in ["correct horse", "battery staple", "guess", "Y29ycmVjdC"] {
        assert!(!log.contains(secret), "{secret} logged: {log}");
    }
}

#[test]
fn basic_auth_refuses_plain_http_beyond_loopback() {
    if !testkit::require("htpasswd") {
        return;
    }
    let fixture = Fixture::new("settings-insecure");
    let file = htpasswd_file(&fixture.base, &[("alice", "pw")]);
    let out = netkit()
        .args(["web", "serve", "--bind", "0.0.0.0:0", "--auth-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--allow-insecure-auth"),
        "{}",
        text(&out.stderr)
    );

    // An htpasswd line with a weak hash is refused, naming its line.
    let md5 = fixture.base.join("md5.htpasswd");
    let made = Command::new("htpasswd")
        .args(["-cbm"])
        .arg(&md5)
        .args(["carol", "pw"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let out = netkit()
        .args(["web", "serve", "--bind", "127.0.0.1:0", "--auth-file"])
        .arg(&md5)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 1") && stderr.contains("htpasswd -B"),
        "{stderr}"
    );
}
