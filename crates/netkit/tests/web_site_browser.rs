//! CORS as a browser applies it: headless Chromium loads a page from one
//! `netkit web serve` and `fetch()`es (with a custom header, so a
//! preflight comes first) from a second one that allows only the first
//! page's origin. From an allowed origin the data arrives; from another
//! origin the browser refuses it. With credentials (`credentials:
//! "include"` and an `Authorization` header for Basic auth), a listed
//! origin reads the protected file, and `--cors`'s wildcard is refused by
//! the browser, as the Fetch standard has it.
//!
//! Server and browser run in a network namespace of the test's own with
//! nothing but loopback, as in web_browser.rs.

#[path = "web/support.rs"]
mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use support::*;
use testkit::{Netns, Server};

/// The Debian package installs it as `chromium`.
const BROWSER: &str = "chromium";

/// Whether this test can run: Chromium, and a namespace to run it in.
fn tools() -> bool {
    testkit::require(BROWSER) && Netns::available()
}

/// `netkit web serve` inside `netns`, on its loopback.
fn serve_in(netns: &Netns, dir: Option<&Path>, extra: &[&str]) -> Server {
    let mut command = netns.command(env!("CARGO_BIN_EXE_netkit"));
    command.args(["web", "serve", "--bind", "127.0.0.1:0"]);
    if let Some(dir) = dir {
        command.arg(dir);
    }
    command.args(extra);
    Server::start(command, 1)
}

/// Runs headless Chromium in `netns` with a fresh profile and `mode`
/// (`--dump-dom` or `--screenshot=FILE`) on `url`.
fn chromium(netns: &Netns, profile: &Path, mode: &str, url: &str) -> Output {
    let mut child = netns
        .command(BROWSER)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1024,768",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
        out
    });
    let status = testkit::wait_timeout(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        panic!("chromium did not finish within 60 s on {url}");
    }
    let stdout = reader.join().unwrap();
    let mut output = child.wait_with_output().unwrap();
    output.stdout = stdout;
    output
}

/// A page whose script fetches `data` with an `X-Token` header and shows
/// the outcome in `#out`.
fn fetching_page(data: &str) -> String {
    page_fetching(data, r#"{ headers: { "X-Token": "abc" } }"#)
}

/// A page whose script fetches `data` with these `fetch()` options (a
/// JavaScript object) and shows the outcome in `#out`.
fn page_fetching(data: &str, options: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>cors</title></head><body>
<pre id="out">pending</pre>
<script>
fetch("{data}", {options})
  .then(r => r.text())
  .then(t => {{ document.getElementById("out").textContent = "allowed: " + t.trim(); }})
  .catch(e => {{ document.getElementById("out").textContent = "refused: " + e.name; }});
</script>
</body></html>
"#
    )
}

#[test]
fn chromium_fetch_across_origins_follows_the_cors_settings() {
    if !tools() {
        return;
    }
    let fixture = Fixture::new("browser-cors");
    let netns = Netns::new("nkcors");
    let pages = fixture.base.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    // Two page servers: the allowed origin and another one.
    let allowed = serve_in(&netns, Some(&pages), &["-q"]);
    let other = serve_in(&netns, Some(&pages), &["-q"]);
    let allowed_origin = format!("http://{}", allowed.addr());
    let data = serve_in(
        &netns,
        Some(&fixture.root()),
        &["--cors-origin", &allowed_origin],
    );
    std::fs::write(
        pages.join("index.html"),
        fetching_page(&url(&data, "/hello.txt")),
    )
    .unwrap();

    let out = chromium(
        &netns,
        &fixture.base.join("profile-allowed"),
        "--dump-dom",
        &url(&allowed, "/"),
    );
    let dom = text(&out.stdout);
    assert!(
        dom.contains(&format!("allowed: {}", HELLO.trim())),
        "{dom}\n{}",
        text(&out.stderr)
    );

    let out = chromium(
        &netns,
        &fixture.base.join("profile-other"),
        "--dump-dom",
        &url(&other, "/"),
    );
    let dom = text(&out.stdout);
    assert!(dom.contains("refused: TypeError"), "{dom}");

    // The browser asked first (a preflight, for the custom header) in
    // both cases, and only the allowed origin went on to the GET.
    let mut log = Vec::new();
    while let Some(line) = data.next_line(Duration::from_secs(2)) {
        log.push(line);
    }
    let preflights = log
        .iter()
        .filter(|line| line.contains("\"OPTIONS /hello.txt HTTP/1.1\""))
        .collect::<Vec<_>>();
    assert!(
        preflights.iter().any(|line| line.contains("\" 204 "))
            && preflights.iter().any(|line| line.contains("\" 403 ")),
        "{log:#?}"
    );
    assert_eq!(
        log.iter()
            .filter(|line| line.contains("\"GET /hello.txt HTTP/1.1\" 200 "))
            .count(),
        1,
        "{log:#?}"
    );
}

/// An htpasswd file with one bcrypt user, made by Apache's tool.
fn htpasswd_file(dir: &Path, user: &str, password: &str) -> std::path::PathBuf {
    let file = dir.join("users.htpasswd");
    let status = std::process::Command::new("htpasswd")
        .args(["-cbB"])
        .arg(&file)
        .args([user, password])
        .output()
        .expect("htpasswd runs")
        .status;
    assert!(status.success());
    file
}

#[test]
fn chromium_sends_credentials_only_to_a_listed_origin() {
    if !tools() || !testkit::require("htpasswd") {
        return;
    }
    let fixture = Fixture::new("browser-cors-credentials");
    let netns = Netns::new("nkcred");
    let pages = fixture.base.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    let page = serve_in(&netns, Some(&pages), &["-q"]);
    let origin = format!("http://{}", page.addr());
    let users = htpasswd_file(&fixture.base, "alice", "wonderland");
    let auth = ["--auth-file", users.to_str().unwrap()];
    let listed = serve_in(
        &netns,
        Some(&fixture.root()),
        &[&auth[..], &["-q", "--cors-origin", &origin]].concat(),
    );
    let wildcard = serve_in(
        &netns,
        Some(&fixture.root()),
        &[&auth[..], &["-q", "--cors"]].concat(),
    );
    // alice:wonderland; Authorization is no safelisted header, so the
    // browser asks first (a preflight, which carries no credentials).
    let options = r#"{ credentials: "include", headers: { "Authorization": "Basic YWxpY2U6d29uZGVybGFuZA==" } }"#;
    let run = |data: &Server, profile: &str| {
        std::fs::write(
            pages.join("index.html"),
            page_fetching(&url(data, "/hello.txt"), options),
        )
        .unwrap();
        let out = chromium(
            &netns,
            &fixture.base.join(profile),
            "--dump-dom",
            &url(&page, "/"),
        );
        text(&out.stdout)
    };
    let dom = run(&listed, "profile-listed");
    assert!(dom.contains(&format!("allowed: {}", HELLO.trim())), "{dom}");
    let dom = run(&wildcard, "profile-wildcard");
    assert!(dom.contains("refused: TypeError"), "{dom}");
}
