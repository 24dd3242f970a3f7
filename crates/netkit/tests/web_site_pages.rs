//! What `web serve` answers in place of a missing file (`--spa`,
//! `--fallback`, `--error-page`), listings as JSON and sorted HTML, and
//! the JSON access log, through the binary with curl and Python urllib.

#[path = "web/support.rs"]
mod support;

use std::time::Duration;

use support::*;

const APP: &str = "<!DOCTYPE html><title>app</title><div id=app></div>\n";
const NOT_FOUND_PAGE: &str = "<!DOCTYPE html><title>lost</title><p>Nothing here.</p>\n";

fn site(fixture: &Fixture) {
    std::fs::write(fixture.path("index.html"), APP).unwrap();
    std::fs::write(fixture.path("404.html"), NOT_FOUND_PAGE).unwrap();
    std::fs::write(fixture.path("200.html"), "fallback\n").unwrap();
}

#[test]
fn spa_serves_index_for_routes_but_not_for_missing_files() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("pages-spa");
    site(&fixture);
    let server = serve(
        Some(&fixture.root()),
        &["--spa", "--error-page", "404=404.html"],
    );
    let route = curl(&[&url(&server, "/users/42/settings")]);
    assert_eq!(route.status, 200);
    assert_eq!(route.body_text(), APP);
    // A path with an extension is a missing file: the custom 404 page,
    // with status 404 and no validators.
    let missing = curl(&[&url(&server, "/assets/app.js")]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body_text(), NOT_FOUND_PAGE);
    assert_eq!(missing.header("etag"), None);
    // Real files are untouched.
    assert_eq!(curl(&[&url(&server, "/hello.txt")]).body_text(), HELLO);
}

#[test]
fn fallback_and_error_pages_with_urllib() {
    if !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("pages-fallback");
    site(&fixture);
    let fallback = serve(Some(&fixture.root()), &["--fallback", "200.html"]);
    let pages = serve(Some(&fixture.root()), &["--error-page", "404=/404.html"]);
    let script = r#"
import sys, urllib.request, urllib.error
for base in sys.argv[1:]:
    try:
        r = urllib.request.urlopen(base + "no/such.file")
        print(r.status, r.read().decode().strip())
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode().strip())
"#;
    let out = testkit::python(script, &[&url(&fallback, "/"), &url(&pages, "/")], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("200 fallback\n404 {}\n", NOT_FOUND_PAGE.trim())
    );
}

#[test]
fn missing_or_bad_page_flags_are_usage_errors() {
    let fixture = Fixture::new("pages-bad");
    for args in [
        &["--fallback", "nope.html"][..],
        &["--error-page", "404=nope.html"],
        &["--error-page", "200=hello.txt"],
        &["--error-page", "hello.txt"],
    ] {
        let out = netkit()
            .args(["web", "serve", "--bind", "127.0.0.1:0"])
            .arg(fixture.root())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn listings_as_json_and_sorted_html() {
    if !testkit::require("curl") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("pages-listing");
    let server = serve(Some(&fixture.root()), &["--list"]);
    let script = r#"
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "?sort=size&order=desc", headers={"Accept": "application/json"})
r = urllib.request.urlopen(req)
entries = json.load(r)
print(r.headers["Content-Type"])
for e in entries:
    print(e["type"], e["name"], e["size"], e["modified"][:2])
"#;
    let out = testkit::python(script, &[&url(&server, "/")], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "application/json");
    let files: Vec<&String> = lines.iter().filter(|l| l.starts_with("file ")).collect();
    // Largest first: data.bin (1 MiB), then big.txt.
    assert!(
        files[0].starts_with("file data.bin 1048576 20"),
        "{lines:#?}"
    );
    assert!(files[1].starts_with("file big.txt "), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("directory docs ")));
    assert!(
        !lines.iter().any(|l| l.contains(".env")),
        "dotfiles stay hidden"
    );

    let html = curl(&[&url(&server, "/?sort=size")]);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let body = html.body_text();
    assert!(
        body.contains("href=\"?sort=size&amp;order=desc\""),
        "{body}"
    );
    let small = body.find(">hello.txt<").unwrap();
    let large = body.find(">data.bin<").unwrap();
    assert!(small < large, "ascending by size");
}

#[test]
fn access_log_as_json_lines() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("pages-jsonlog");
    let server = serve(Some(&fixture.root()), &["--loud", "--log-format", "json"]);
    curl(&["-A", "agent \"quoted\"\n", &url(&server, "/hello.txt")]);
    let line = server
        .next_line(Duration::from_secs(10))
        .expect("a log line");
    let out = testkit::python(
        "import json,sys; e=json.loads(sys.stdin.read()); print(e['request'], e['status'], e['bytes'], e['client'], e['user_agent'])",
        &[],
        line.as_bytes(),
    );
    assert!(out.status.success(), "{line}: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "GET /hello.txt HTTP/1.1 200 {} 127.0.0.1 agent \"quoted\"\n",
            HELLO.len()
        )
    );
}
