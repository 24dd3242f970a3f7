//! The proxy against origins it was not written with (issue 13): Python's
//! own `http.server` (HTTP/1.0, `Last-Modified`, no ETag, a 304 without
//! validators) and a small HTTP/1.1 keep-alive origin written the way such
//! origins are (headers and body in two writes, Nagle on).

#[path = "proxy/support.rs"]
mod support;
#[path = "proxy/wire.rs"]
mod wire;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use support::{Proxy, tools};
use testkit::Server;
use wire::Wire;

const KEEPALIVE_PY: &str = include_str!("proxy/keepalive.py");

/// `python3 -m http.server` on port 0 serving `dir`, printing the line the
/// test harness waits for.
fn http_server(dir: &Path) -> Server {
    let script = "import functools, http.server, sys\n\
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n\
        print('listening on 127.0.0.1:%d' % server.server_address[1], flush=True)\n\
        server.serve_forever()\n";
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).arg(dir);
    Server::start(command, 1)
}

fn keepalive_origin() -> Server {
    let mut command = Command::new("python3");
    command.arg("-c").arg(KEEPALIVE_PY);
    Server::start(command, 1)
}

/// A file last modified ten seconds ago: heuristically fresh for one
/// second (a tenth of its age, RFC 9111 §4.2.2).
fn notes(dir: &Path) -> Vec<u8> {
    let body = b"notes kept by an HTTP/1.0 origin\n".to_vec();
    let path = dir.join("notes.txt");
    std::fs::write(&path, &body).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(10))
        .unwrap();
    body
}

/// Long enough for a response fresh for about a second to go stale.
fn until_stale() {
    std::thread::sleep(Duration::from_millis(1600));
}

#[test]
fn http_server_304_refreshes_the_entry_and_the_client_gets_200() {
    if !tools() {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let body = notes(site.path());
    let origin = http_server(site.path());
    let url = format!("http://{}/notes.txt", origin.addr());
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &[]);
    let mut client = Wire::connect(proxy.addr());

    let miss = client.get(&url, "");
    assert_eq!(miss.status_line, "HTTP/1.1 200 OK", "{miss:?}");
    assert_eq!(miss.x_cache(), "MISS");
    assert_eq!(miss.body, body);
    let modified = miss.header("last-modified").unwrap().to_owned();
    // The same connection carries on: the origin's HTTP/1.0 did not leak.
    let hit = client.get(&url, "");
    assert_eq!((hit.status, hit.x_cache()), (200, "HIT"), "{hit:?}");

    until_stale();
    let refreshed = client.get(&url, "");
    assert_eq!(refreshed.status_line, "HTTP/1.1 200 OK", "{refreshed:?}");
    assert_eq!(refreshed.x_cache(), "REVALIDATED");
    assert_eq!(refreshed.body, body, "the client gets the stored body");
    assert_eq!(proxy.stats()["revalidations"], 1);

    // A client asking conditionally gets its own 304 when it already holds
    // the response; with an older date the origin sends the full response
    // (the policy revalidates with the client's own validator).
    until_stale();
    let own = client.get(&url, &format!("If-Modified-Since: {modified}\r\n"));
    assert_eq!((own.status, own.x_cache()), (304, "REVALIDATED"), "{own:?}");
    until_stale();
    let older = client.get(&url, "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n");
    assert_eq!((older.status, older.x_cache()), (200, "MISS"), "{older:?}");
    assert_eq!(older.body, body);
    assert_eq!(proxy.stats()["revalidations"], 2);
}

#[test]
fn http_1_1_origin_with_max_age_and_last_modified_only() {
    if !tools() {
        return;
    }
    let origin = keepalive_origin();
    let url = format!("http://{}/lm", origin.addr());
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &[]);
    let mut client = Wire::connect(proxy.addr());
    let miss = client.get(&url, "");
    assert_eq!((miss.status, miss.x_cache()), (200, "MISS"), "{miss:?}");
    until_stale();
    let refreshed = client.get(&url, "");
    assert_eq!(refreshed.status_line, "HTTP/1.1 200 OK", "{refreshed:?}");
    assert_eq!(refreshed.x_cache(), "REVALIDATED");
    assert_eq!(refreshed.body, b"the full body of /lm\n");
    let seen = support::direct_get(origin.addr(), "/_stats");
    let seen: serde_json::Value = serde_json::from_slice(&seen).unwrap();
    assert_eq!(seen["counts"]["/lm"], 2, "{seen}");
    assert_eq!(seen["conditional"]["/lm"], 1, "{seen}");
    assert_eq!(proxy.stats()["revalidations"], 1);
    // The refreshed entry is fresh again: a hit.
    let hit = client.get(&url, "");
    assert_eq!(hit.x_cache(), "HIT", "{hit:?}");
}

/// A keep-alive origin writes headers and body apart with Nagle on, so its
/// body waits for the proxy's ACK of the headers; a delayed ACK (40 ms at
/// least on Linux) then stalls every response on a reused origin
/// connection. Forty requests take far less than the 1.6 s those stalls
/// would add up to.
#[test]
fn no_delayed_ack_stall_on_reused_origin_connections() {
    if !tools() {
        return;
    }
    let origin = keepalive_origin();
    let url = format!("http://{}/nostore", origin.addr());
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &[]);
    let mut client = Wire::connect(proxy.addr());
    // The first request opens the pooled origin connection.
    assert_eq!(client.get(&url, "").status, 200);
    // A delayed-ACK stall costs each affected request 40 ms or more; the
    // median of 40 is robust to the odd request slowed by a loaded machine.
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let answer = client.get(&url, "");
        times.push(started.elapsed());
        assert_eq!((answer.status, answer.x_cache()), (200, "MISS"));
        let started = Instant::now();
        let posted = client.post(&url, "ping");
        times.push(started.elapsed());
        assert_eq!(posted.body, b"got ping");
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(30),
        "the median request through the proxy took {median:?}: delayed-ACK stalls ({times:?})"
    );
}

/// Requests hyper cannot parse are answered by hyper itself; those answers
/// carry `Via` and `X-Cache` like every other.
#[test]
fn hypers_own_400_and_431_carry_via_and_x_cache() {
    if !tools() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &[]);
    let many: String = (0..200).map(|n| format!("X-{n}: 1\r\n")).collect();
    let huge = format!("GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for (request, status) in [
        (&b"HELLO THERE\r\n\r\n"[..], "400"),
        (huge.as_bytes(), "431"),
    ] {
        let reply = support::raw(proxy.addr(), request);
        assert!(reply.starts_with(&format!("HTTP/1.1 {status} ")), "{reply}");
        let head = reply.to_ascii_lowercase();
        assert!(head.contains("\r\nvia: 1.1 netkit\r\n"), "{reply}");
        assert!(head.contains("\r\nx-cache: bypass\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\n"), "{reply}");
    }
}

/// A `Range` for a cached object is served from the cache, from memory or
/// from disk, with `If-Range` honoured; a range for an uncached object goes
/// to the origin, and the full response it sends fills the cache.
#[test]
fn ranges_of_cached_objects_come_from_the_cache() {
    if !tools() {
        return;
    }
    let origin = support::Origin::start();
    let cache = tempfile::tempdir().unwrap();
    // Bodies over 1 KiB are served from their file on disk.
    let proxy = Proxy::start(cache.path(), &["--memory-object-size", "1KiB"]);
    let pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n";
    for size in [500usize, 100_000] {
        let path = format!("/ranged?cc=max-age=300&etag=v1&size={size}");
        let url = origin.url(&path);
        let body: Vec<u8> = pattern.iter().copied().cycle().take(size).collect();
        let full = support::via(&proxy, &url, &[]);
        assert_eq!((full.status, full.x_cache()), (200, "MISS"));
        support::wait_for_entries(cache.path(), if size == 500 { 1 } else { 2 });

        let part = support::via(&proxy, &url, &["-r", "10-19"]);
        assert_eq!((part.status, part.x_cache()), (206, "HIT"), "{part:?}");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes 10-19/{size}").as_str())
        );
        assert_eq!(part.body, body[10..20]);
        let tail = support::via(&proxy, &url, &["-r", "-5"]);
        assert_eq!((tail.status, tail.x_cache()), (206, "HIT"));
        assert_eq!(tail.body, body[size - 5..]);

        let named = support::via(&proxy, &url, &["-r", "0-3", "-H", "If-Range: \"v1\""]);
        assert_eq!((named.status, named.x_cache()), (206, "HIT"), "{named:?}");
        assert_eq!(named.body, body[..4]);
        let other = support::via(&proxy, &url, &["-r", "0-3", "-H", "If-Range: \"v0\""]);
        assert_eq!((other.status, other.x_cache()), (200, "HIT"), "{other:?}");
        assert_eq!(other.body, body);

        let beyond = support::via(&proxy, &url, &["-r", "200000-"]);
        assert_eq!(beyond.status, 416, "{beyond:?}");
        assert_eq!(
            beyond.header("content-range"),
            Some(format!("bytes */{size}").as_str())
        );
        assert_eq!(origin.count(&path), 1, "every range came from the cache");
    }

    // Not cached yet: the range goes to the origin, which sends it all.
    let path = "/later?cc=max-age=300&size=300";
    let first = support::via(&proxy, &origin.url(path), &["-r", "0-9"]);
    assert_eq!(first.x_cache(), "MISS", "{first:?}");
    assert_eq!(origin.count(path), 1);
    support::wait_for_entries(cache.path(), 3);
    let again = support::via(&proxy, &origin.url(path), &["-r", "0-9"]);
    assert_eq!((again.status, again.x_cache()), (206, "HIT"), "{again:?}");
    assert_eq!(again.body, b"0123456789");
    assert_eq!(origin.count(path), 1);
}

/// RFC 5861 stale-if-error: a stale entry stands in (`X-Cache: STALE`)
/// when its revalidation fails, if the response, the request or
/// `--stale-if-error` allows it; without any of them the failure shows.
#[test]
fn stale_if_error_stands_in_when_revalidation_fails() {
    if !tools() {
        return;
    }
    let origin = support::Origin::start();
    let doomed = support::Origin::start();
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &["--origin-timeout", "1s"]);
    let lenient_cache = tempfile::tempdir().unwrap();
    let lenient = Proxy::start(lenient_cache.path(), &["--stale-if-error", "60s"]);

    let allowed = origin.url("/allowed?cc=max-age=1,stale-if-error=60&body=kept");
    let asked = origin.url("/asked?cc=max-age=1&body=kept");
    let gone = doomed.url("/gone?cc=max-age=1&body=kept");
    for url in [&allowed, &asked, &gone] {
        assert_eq!(support::via(&proxy, url, &[]).x_cache(), "MISS");
    }
    assert_eq!(support::via(&lenient, &gone, &[]).x_cache(), "MISS");
    origin.set("/allowed", "status=500");
    origin.set("/asked", "delay=3");
    drop(doomed);
    until_stale();

    // The response allows it; the origin answers 500.
    let reply = support::via(&proxy, &allowed, &[]);
    assert_eq!((reply.status, reply.x_cache()), (200, "STALE"), "{reply:?}");
    assert_eq!(reply.text(), "kept");
    // The origin times out: 504, unless the request allows a stale answer.
    let reply = support::via(&proxy, &asked, &[]);
    assert_eq!(reply.status, 504, "{reply:?}");
    let reply = support::via(&proxy, &asked, &["-H", "Cache-Control: stale-if-error=60"]);
    assert_eq!((reply.status, reply.x_cache()), (200, "STALE"), "{reply:?}");
    // The origin is gone: 502, unless the proxy's default allows it.
    let reply = support::via(&proxy, &gone, &[]);
    assert_eq!(reply.status, 502, "{reply:?}");
    let reply = support::via(&lenient, &gone, &[]);
    assert_eq!((reply.status, reply.x_cache()), (200, "STALE"), "{reply:?}");
    assert_eq!(reply.text(), "kept");
}

/// RFC 5861 stale-while-revalidate: a stale entry within the window goes
/// out at once and is refreshed in the background, once however many
/// clients ask meanwhile.
#[test]
fn stale_while_revalidate_answers_at_once_and_refreshes_once() {
    if !tools() {
        return;
    }
    let origin = support::Origin::start();
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &[]);
    let path = "/swr?cc=max-age=1,stale-while-revalidate=60&etag=v1&body=old";
    let url = origin.url(path);
    assert_eq!(support::via(&proxy, &url, &[]).x_cache(), "MISS");
    // What the refresh will bring: fresh for five minutes.
    origin.set("/swr", "cc=max-age=300");
    until_stale();
    let proxy_url = proxy.url();
    let replies: Vec<_> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| support::curl(&["-x", &proxy_url, &url])))
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.text(), "old");
        assert!(matches!(reply.x_cache(), "STALE" | "HIT"), "{reply:?}");
    }
    assert!(
        replies.iter().any(|r| r.x_cache() == "STALE"),
        "{replies:?}"
    );
    // The refresh lands: the entry is fresh again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = support::via(&proxy, &url, &[]);
        if reply.x_cache() == "HIT" {
            break;
        }
        assert!(Instant::now() < deadline, "never refreshed: {reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(origin.count(path), 2, "one fetch, one revalidation");
    assert_eq!(proxy.stats()["revalidations"], 1);
}

/// What passes through a CONNECT tunnel is never stamped, even a plain
/// HTTP 4xx from the origin at its end.
#[test]
fn tunnelled_bytes_are_left_alone() {
    if !tools() {
        return;
    }
    let origin = support::Origin::start();
    let port = origin.addr().port().to_string();
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path(), &["--connect-port", &port]);
    let target = origin.addr();
    let reply = support::raw(
        proxy.addr(),
        format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n\
             GET /missing?status=404 HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let tunnelled = reply.split_once("\r\n\r\n").expect("the CONNECT answer").1;
    assert!(tunnelled.starts_with("HTTP/1.1 404"), "{reply}");
    assert!(
        !tunnelled.to_ascii_lowercase().contains("x-cache"),
        "{reply}"
    );
}
