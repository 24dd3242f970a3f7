//! `netkit proxy serve`'s store, end to end: entries survive a restart
//! and a crash, damaged files are never served, `--cache-size` evicts the
//! least recently used, and `netkit proxy purge` removes entries with or
//! without a running proxy.

#[path = "proxy/support.rs"]
mod support;

use std::time::Duration;

use support::{Origin, Proxy, cache_files, curl, tools, via};

#[test]
fn cache_survives_a_restart() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let small = "/small?cc=max-age=300";
    let large = "/large?cc=max-age=300&size=3000000";
    {
        let proxy = Proxy::start(dir.path(), &[]);
        assert_eq!(via(&proxy, &origin.url(small), &[]).x_cache(), "MISS");
        assert_eq!(via(&proxy, &origin.url(large), &[]).x_cache(), "MISS");
        proxy.stop();
    }
    let proxy = Proxy::start(dir.path(), &[]);
    let reply = via(&proxy, &origin.url(small), &[]);
    assert_eq!(reply.x_cache(), "HIT", "{reply:?}");
    assert_eq!(reply.text(), "GET /small");
    let reply = via(&proxy, &origin.url(large), &[]);
    assert_eq!(reply.x_cache(), "HIT");
    assert_eq!(reply.body.len(), 3_000_000);
    assert_eq!((origin.count(small), origin.count(large)), (1, 1));
    let stats = proxy.stats();
    assert_eq!(stats["entries"], 2);
    assert!(stats["disk_bytes"].as_u64().unwrap() > 3_000_000);

    // A crash (SIGKILL) keeps what was complete and drops what was being
    // written: this origin sends half its body, then nothing.
    let third = "/third?cc=max-age=300";
    assert_eq!(via(&proxy, &origin.url(third), &[]).x_cache(), "MISS");
    support::wait_for_entries(dir.path(), 3);
    let stalled = origin.url("/stalled?cc=max-age=300&size=100000&stall=60");
    let proxy_url = proxy.url();
    let client = std::thread::spawn(move || curl(&["-x", &proxy_url, &stalled]));
    let tmp = dir.path().join("tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&tmp).unwrap().count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut proxy = proxy;
    proxy.server.signal("KILL");
    proxy.server.wait_timeout(Duration::from_secs(10)).unwrap();
    assert_ne!(client.join().unwrap().exit, Some(0));
    let proxy = Proxy::start(dir.path(), &[]);
    assert_eq!(proxy.stats()["entries"], 3);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(via(&proxy, &origin.url(third), &[]).x_cache(), "HIT");
    assert_eq!(origin.count(third), 1);
}

/// `netkit proxy purge ARGS` with `XDG_CACHE_HOME` set: exit code and stdout.
fn purge(xdg: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = support::netkit()
        .env("XDG_CACHE_HOME", xdg)
        .args(["proxy", "purge"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn purge_removes_entries_with_or_without_a_running_proxy() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    // The cache in the default place under this XDG_CACHE_HOME.
    let xdg = tempfile::tempdir().unwrap();
    let dir = xdg.path().join("netkit-proxy-cache");
    let small = origin.url("/small?cc=max-age=300");
    let large = origin.url("/large?cc=max-age=300&size=300000");
    let proxy = Proxy::start(&dir, &[]);
    let addr = proxy.addr().to_string();
    for url in [&small, &large] {
        assert_eq!(via(&proxy, url, &[]).x_cache(), "MISS");
        assert_eq!(via(&proxy, url, &[]).x_cache(), "HIT");
    }

    // Through the running proxy (a PURGE request).
    let (code, stdout, stderr) = purge(xdg.path(), &["--proxy", &addr, &small]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "purged {small} (1 stored variant, the proxy at {addr})"
        )),
        "{stdout}"
    );
    assert_eq!(via(&proxy, &small, &[]).x_cache(), "MISS");
    assert_eq!(origin.count("/small?cc=max-age=300"), 2);
    let never = origin.url("/never");
    let (code, stdout, _) = purge(xdg.path(), &["--proxy", &addr, &never]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("was not in the cache"), "{stdout}");
    // --cache-dir of a running proxy: it holds the directory, so it is asked.
    let dir_arg = dir.to_str().unwrap();
    let (code, stdout, stderr) = purge(
        xdg.path(),
        &["--cache-dir", dir_arg, "--proxy", &addr, &large],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("the proxy at"), "{stdout}");
    assert_eq!(via(&proxy, &large, &[]).x_cache(), "MISS");
    // ... and when it is not at --proxy, the user is told what to do.
    let closed = testkit::closed_tcp_port().to_string();
    let (code, _, stderr) = purge(
        xdg.path(),
        &["--cache-dir", dir_arg, "--proxy", &closed, &large],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("in use by a running proxy"), "{stderr}");
    assert!(stderr.contains("--proxy"), "{stderr}");
    let (code, _, stderr) = purge(xdg.path(), &["--proxy", &closed, &large]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("give its address with --proxy"), "{stderr}");
    // Something that is not a netkit proxy is not taken for one.
    let (code, _, stderr) = purge(xdg.path(), &["--proxy", &origin.addr().to_string(), &large]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not a netkit proxy"), "{stderr}");
    let (code, _, stderr) = purge(xdg.path(), &["--proxy", &addr, "not a url"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not a URL"), "{stderr}");
    proxy.stop();

    // No proxy running: the entry is removed from the cache directory.
    assert_eq!(support::wait_for_entries(&dir, 2).len(), 2);
    let (code, stdout, stderr) = purge(xdg.path(), &["--proxy", &closed, &large]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("1 stored variant, {}", dir.display())),
        "{stdout}"
    );
    assert_eq!(cache_files(&dir, ".body").len(), 1);
    assert_eq!(cache_files(&dir, ".meta").len(), 1);
    let (code, stdout, _) = purge(xdg.path(), &["--cache-dir", dir_arg, &small]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("purged"), "{stdout}");
    assert!(cache_files(&dir, "").is_empty());
    let (code, stdout, _) = purge(xdg.path(), &["--cache-dir", dir_arg, &small]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("was not in the cache"), "{stdout}");
    let proxy = Proxy::start(&dir, &[]);
    assert_eq!(proxy.stats()["entries"], 0);
    assert_eq!(via(&proxy, &large, &[]).x_cache(), "MISS");
    assert_eq!(origin.count("/large?cc=max-age=300&size=300000"), 3);
}

#[test]
fn a_corrupted_cache_file_is_never_served() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let path = "/precious?cc=max-age=300&size=50000";
    {
        let proxy = Proxy::start(dir.path(), &[]);
        let first = via(&proxy, &origin.url(path), &[]);
        assert_eq!(first.body.len(), 50_000);
        proxy.stop();
    }
    let bodies = support::wait_for_entries(dir.path(), 1);
    let mut bytes = std::fs::read(&bodies[0]).unwrap();
    bytes[1234] ^= 0x01;
    std::fs::write(&bodies[0], &bytes).unwrap();

    let proxy = Proxy::start(dir.path(), &[]);
    let reply = via(&proxy, &origin.url(path), &[]);
    assert_eq!(reply.x_cache(), "MISS", "damaged entry treated as a miss");
    assert_eq!(reply.body.len(), 50_000);
    assert_ne!(
        reply.body[1234], bytes[1234],
        "the damaged byte was not served"
    );
    assert_eq!(origin.count(path), 2);
    assert_eq!(via(&proxy, &origin.url(path), &[]).x_cache(), "HIT");

    // While running, with the memory tier off so every hit reads the disk;
    // a truncated body (a crash mid-write) is a miss too.
    drop(proxy);
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &["--memory-size", "0"]);
    let big = "/big?cc=max-age=300&size=2000000";
    via(&proxy, &origin.url(big), &[]);
    assert_eq!(via(&proxy, &origin.url(big), &[]).x_cache(), "HIT");
    let bodies = support::wait_for_entries(dir.path(), 1);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&bodies[0])
        .unwrap();
    file.set_len(1_000_000).unwrap();
    let reply = via(&proxy, &origin.url(big), &[]);
    assert_eq!(reply.x_cache(), "MISS");
    assert_eq!(reply.body.len(), 2_000_000);
    // Corrupted in place, same length: caught by the checksum before sending.
    let bodies = support::wait_for_entries(dir.path(), 1);
    let mut bytes = std::fs::read(&bodies[0]).unwrap();
    bytes[1_999_999] ^= 0x40;
    std::fs::write(&bodies[0], &bytes).unwrap();
    let reply = via(&proxy, &origin.url(big), &[]);
    assert_eq!(reply.x_cache(), "MISS");
    assert_ne!(reply.body[1_999_999], bytes[1_999_999]);
    assert_eq!(origin.count(big), 3);
    // Damaged metadata is dropped at start-up.
    proxy.stop();
    for meta in cache_files(dir.path(), ".meta") {
        std::fs::write(&meta, b"NKPCMET1 garbage").unwrap();
    }
    let proxy = Proxy::start(dir.path(), &[]);
    assert_eq!(proxy.stats()["entries"], 0);
    assert!(cache_files(dir.path(), ".meta").is_empty());
}

#[test]
fn least_recently_used_entries_are_evicted_under_cache_size() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        dir.path(),
        &["--cache-size", "100KiB", "--max-object-size", "40KiB"],
    );
    let object = |n: u32| origin.url(&format!("/obj{n}?cc=max-age=300&size=30000"));
    via(&proxy, &object(1), &[]);
    via(&proxy, &object(2), &[]);
    via(&proxy, &object(3), &[]);
    // Use 1 again, so 2 is now the least recently used.
    assert_eq!(via(&proxy, &object(1), &[]).x_cache(), "HIT");
    via(&proxy, &object(4), &[]);
    let stats = proxy.stats();
    assert_eq!(stats["entries"], 3, "{stats}");
    assert!(
        stats["disk_bytes"].as_u64().unwrap() <= 100 * 1024,
        "{stats}"
    );
    let on_disk: u64 = cache_files(dir.path(), "")
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 100 * 1024, "{on_disk} bytes on disk");
    assert_eq!(via(&proxy, &object(1), &[]).x_cache(), "HIT");
    assert_eq!(via(&proxy, &object(3), &[]).x_cache(), "HIT");
    assert_eq!(via(&proxy, &object(4), &[]).x_cache(), "HIT");
    assert_eq!(
        via(&proxy, &object(2), &[]).x_cache(),
        "MISS",
        "2 was evicted"
    );

    // Over --max-object-size: streamed whole, never stored.
    let huge = origin.url("/huge?cc=max-age=300&size=300000");
    for _ in 0..2 {
        let reply = via(&proxy, &huge, &[]);
        assert_eq!(reply.x_cache(), "MISS");
        assert_eq!(reply.body.len(), 300_000);
    }
    // Also when the size is not announced (chunked).
    let chunked = origin.url("/chunked?cc=max-age=300&size=300000&chunked=1");
    for _ in 0..2 {
        let reply = via(&proxy, &chunked, &[]);
        assert_eq!(reply.x_cache(), "MISS");
        assert_eq!(reply.body.len(), 300_000);
    }
    let small_chunked = origin.url("/smallchunked?cc=max-age=300&size=20000&chunked=1");
    via(&proxy, &small_chunked, &[]);
    let reply = via(&proxy, &small_chunked, &[]);
    assert_eq!(reply.x_cache(), "HIT");
    assert_eq!(reply.body.len(), 20_000);
}
