//! A real browser against `netkit web serve`: headless Chromium loads the
//! built-in site and a `--list` page. The DOM it dumps must show the page
//! and the logo decoded; screenshots are kept under
//! target/test-artifacts/ for people to look at.

#[path = "web/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

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

/// Runs headless Chromium with a fresh profile and `mode` (`--dump-dom` or
/// `--screenshot=FILE`) on `url`.
fn chromium(profile: &Path, mode: &str, url: &str) -> Output {
    let mut child = Command::new(BROWSER)
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
    if !testkit::require(BROWSER) {
        return;
    }
    let fixture = Fixture::new("browser-site");
    let server = serve(None, &["--loud"]);
    let page = url(&server, "/");

    let out = chromium(&fixture.base.join("profile-dom"), "--dump-dom", &page);
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
        &fixture.base.join("profile-shot"),
        &format!("--screenshot={}", shot.display()),
        &page,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_screenshot(&shot);
}

#[test]
fn chromium_renders_a_directory_listing() {
    if !testkit::require(BROWSER) {
        return;
    }
    let fixture = Fixture::new("browser-list");
    let server = serve(Some(&fixture.root()), &["--list"]);
    let page = url(&server, "/");

    let out = chromium(&fixture.base.join("profile-dom"), "--dump-dom", &page);
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
        &fixture.base.join("profile-shot"),
        &format!("--screenshot={}", shot.display()),
        &page,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    check_screenshot(&shot);
}
