//! A real browser through `netkit proxy serve`: headless Chromium loads a
//! page with images from a local origin twice, each time with a fresh
//! profile so its own cache cannot help; the second load comes from the
//! proxy's cache and renders the same. Chromium also shows the stats page.
//! Screenshots are kept under target/test-artifacts/.
//!
//! Chromium sends its own background requests (update checks, time, account
//! lookups) through the proxy it is given, and the proxy would resolve and
//! fetch them. So the origin, the proxy and Chromium run in a network
//! namespace of their own: nothing leaves it.

#[path = "proxy/netns.rs"]
mod netns;
#[path = "proxy/support.rs"]
mod support;

use std::path::{Path, PathBuf};

use netns::Netns;
use support::{Origin, Proxy, tools};

const CHROMIUM: &str = "chromium";

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium through the proxy with a fresh profile: `action`
/// is `--screenshot=FILE` or `--dump-dom`. Returns stdout.
fn chromium(proxy: &Proxy, action: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = (proxy.runner)(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=640,520",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server={}", proxy.url()))
        // Chromium goes direct to loopback unless told not to.
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(action)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn chromium_second_load_comes_from_the_cache() {
    if !tools() || !testkit::require(CHROMIUM) || !netns::available() {
        return;
    }
    let ns = Netns::new();
    let origin = Origin::start_in(ns.runner());
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start_in(ns.runner(), dir.path(), &[]);
    let page = origin.url("/page.html?cc=max-age=300");
    let out = artifacts();
    let first = out.join("proxy-browser-first.png");
    let second = out.join("proxy-browser-second.png");
    let _ = std::fs::remove_file(&first);
    let _ = std::fs::remove_file(&second);

    chromium(&proxy, &format!("--screenshot={}", first.display()), &page);
    let paths = [
        "/page.html?cc=max-age=300",
        "/img/red.png?cc=max-age=300",
        "/img/green.png?cc=max-age=300",
        "/img/blue.png?cc=max-age=300",
    ];
    let counts: Vec<u64> = paths.iter().map(|p| origin.count(p)).collect();
    assert_eq!(
        counts,
        [1, 1, 1, 1],
        "first load fetched the page and its images"
    );

    chromium(&proxy, &format!("--screenshot={}", second.display()), &page);
    let counts: Vec<u64> = paths.iter().map(|p| origin.count(p)).collect();
    assert_eq!(
        counts,
        [1, 1, 1, 1],
        "second load came from the proxy's cache"
    );

    let stats = proxy.stats();
    assert!(stats["hits"].as_u64().unwrap() >= 4, "{stats}");
    let first_png = std::fs::read(&first).expect("first screenshot");
    let second_png = std::fs::read(&second).expect("second screenshot");
    assert!(first_png.starts_with(b"\x89PNG"));
    assert!(first_png.len() > 1000, "a real picture, not an empty page");
    assert!(first_png == second_png, "the cached page renders the same");

    // The DOM as Chromium built it, from the cache.
    let dom = chromium(&proxy, "--dump-dom", &page);
    assert!(dom.contains("Three squares through netkit proxy"), "{dom}");
    assert_eq!(origin.count(paths[0]), 1);

    // The stats page, as a browser asks for it (Accept: text/html).
    let stats_png = out.join("proxy-browser-stats.png");
    chromium(
        &proxy,
        &format!("--screenshot={}", stats_png.display()),
        "http://netkit.proxy/stats",
    );
    assert!(std::fs::metadata(&stats_png).unwrap().len() > 1000);
    let dom = chromium(&proxy, "--dump-dom", "http://netkit.proxy/stats");
    assert!(dom.contains("<th>Hits</th>"), "{dom}");
    assert!(dom.contains("netkit proxy"), "{dom}");
}
