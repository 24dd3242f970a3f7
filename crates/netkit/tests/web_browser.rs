//! A real browser against `netkit web serve`: headless Chromium loads the
//! built-in site and a `--list` page. The DOM it dumps must show the page
//! and the logo decoded; screenshots are kept under
//! target/test-artifacts/ for people to look at.
//!
//! Chromium makes requests of its own (update checks, sign-in) whatever its
//! flags say, so the server and the browser both run in a network namespace
//! of the test's own that has nothing but loopback: nothing leaves the host.

#[path = "web/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use support::*;
use testkit::{Netns, Server};

/// The Debian package installs it as `chromium`.
const BROWSER: &str = "chromium";

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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

fn check_screenshot(path: &Path) {
    let png = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank page compresses to almost nothing; a rendered one does not.
    assert!(
        png.len() > 10_000,
        "{} is only {} bytes",
        path.display(),
        png.len()
    );
}

#[test]
fn chromium_renders_the_built_in_site() {
    if !tools() {
        return;
    }
    let fixture = Fixture::new("browser-site");
    let netns = Netns::new("nkweb");
    let server = serve_in(&netns, None, &[]);
    let page = url(&server, "/");

    let out = chromium(
        &netns,
        &fixture.base.join("profile-dom"),
        "--dump-dom",
        &page,
    );
    let dom = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dom.contains("<h1>It works: netkit web</h1>"), "{dom}");
    // Set by the page's own script once the logo has been decoded.
    assert!(
        dom.contains("data-logo=\"loaded\""),
        "logo not loaded: {dom}"
    );
    assert!(dom.contains("Logo loaded: 256×256 pixels."), "{dom}");

    let mut log = Vec::new();
    while let Some(line) = server.next_line(Duration::from_secs(2)) {
        log.push(line);
    }
    assert!(
        log.iter()
            .any(|line| line.contains("\"GET /netkit.png HTTP/1.1\" 200 ")),
        "the logo was fetched: {log:#?}"
    );
    assert!(
        log.iter().any(|line| line.contains("HeadlessChrome")),
        "{log:#?}"
    );

    let shot = artifacts().join("web-built-in-site.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &netns,
        &fixture.base.join("profile-shot"),
        &format!("--screenshot={}", shot.display()),
        &page,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_screenshot(&shot);
}

#[test]
fn chromium_renders_a_directory_listing() {
    if !tools() {
        return;
    }
    let fixture = Fixture::new("browser-list");
    let netns = Netns::new("nkweb");
    let server = serve_in(&netns, Some(&fixture.root()), &["--list", "-q"]);
    let page = url(&server, "/");

    let out = chromium(
        &netns,
        &fixture.base.join("profile-dom"),
        "--dump-dom",
        &page,
    );
    let dom = text(&out.stdout);
    assert!(dom.contains("<title>Index of /</title>"), "{dom}");
    assert!(dom.contains("<a href=\"./docs/\">docs/</a>"), "{dom}");
    assert!(
        dom.contains("<a href=\"./hello.txt\">hello.txt</a>"),
        "{dom}"
    );
    // The odd name stays text: the browser parsed no element from it.
    assert!(dom.contains("odd &lt;name&gt; &amp; \"q\".txt"), "{dom}");
    assert!(!dom.contains("<name>"));
    assert!(!dom.contains(".env"));

    let shot = artifacts().join("web-directory-listing.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &netns,
        &fixture.base.join("profile-shot"),
        &format!("--screenshot={}", shot.display()),
        &page,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_screenshot(&shot);
}
