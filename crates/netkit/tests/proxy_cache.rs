//! `netkit proxy serve` caching, end to end: curl through the proxy (both
//! `-x` and the lab's path form) against a python3 origin that counts what
//! reaches it.

#[path = "proxy/support.rs"]
mod support;

use std::time::Duration;

use support::{Origin, Proxy, curl, raw, tools, via};

/// Bodies from 64 KiB up to the memory tier's limit leave by `sendfile`
/// from a sealed memfd: whole, on a reused connection, to a client reading
/// slowly (so sends come up short and resume mid-body), and after a restart
/// brings the body back from disk.
#[test]
fn large_hits_from_memory_arrive_intact() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let path = "/big?cc=max-age=300&size=900000";
    let pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n";
    let expected: Vec<u8> = pattern.iter().copied().cycle().take(900_000).collect();
    {
        let proxy = Proxy::start(dir.path(), &[]);
        let first = via(&proxy, &origin.url(path), &[]);
        assert_eq!(first.x_cache(), "MISS", "{first:?}");
        assert!(first.body == expected, "the miss changed the body");
        let slow = via(&proxy, &origin.url(path), &["--limit-rate", "3M"]);
        assert_eq!(slow.x_cache(), "HIT", "{slow:?}");
        assert!(slow.body == expected, "a slow reader got a changed body");
        // Two requests pipelined on one connection: the second head
        // follows the first body.
        let url = origin.url(path);
        let host = origin.addr();
        let twice = raw(
            proxy.addr(),
            format!(
                "GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n\
                 GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        let body = String::from_utf8(expected.clone()).unwrap();
        let responses: Vec<&str> = twice.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
        assert_eq!(responses.len(), 2, "{}", &twice[..twice.len().min(500)]);
        for response in responses {
            let (head, rest) = response.split_once("\r\n\r\n").unwrap();
            assert!(head.to_ascii_lowercase().contains("x-cache: hit"), "{head}");
            assert!(rest == body, "a pipelined hit changed the body");
        }
        proxy.stop();
    }
    let proxy = Proxy::start(dir.path(), &[]);
    for _ in 0..2 {
        let hit = via(&proxy, &origin.url(path), &[]);
        assert_eq!(hit.x_cache(), "HIT", "{hit:?}");
        assert!(
            hit.body == expected,
            "a hit after the restart changed the body"
        );
    }
    assert_eq!(origin.count(path), 1);
}

#[test]
fn miss_then_hit_with_curl_x_and_path_form() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/page?cc=max-age=300";

    let first = via(&proxy, &origin.url(path), &[]);
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(first.text(), "GET /page");
    assert!(first.header("via").unwrap().contains("netkit"), "{first:?}");

    let second = via(&proxy, &origin.url(path), &[]);
    assert_eq!(second.x_cache(), "HIT", "{second:?}");
    assert_eq!(second.text(), "GET /page");
    assert!(
        second.header("age").is_some(),
        "a hit carries Age: {second:?}"
    );
    assert!(second.header("via").unwrap().contains("netkit"));

    // The lab's path form: a plain client asking the proxy for /HOST:PORT/PATH.
    let path_form = format!("{}/{}{path}", proxy.url(), origin.addr());
    let third = curl(&[&path_form]);
    assert_eq!(third.status, 200);
    assert_eq!(third.x_cache(), "HIT", "{third:?}");
    assert_eq!(third.text(), "GET /page");
    assert!(third.header("age").is_some(), "{third:?}");
    assert!(third.header("date").unwrap().ends_with(" GMT"), "{third:?}");
    assert_eq!(third.header("content-length"), Some("9"));
    assert_eq!(third.header("cache-control"), Some("max-age=300"));
    assert_eq!(
        origin.count(path),
        1,
        "the origin saw only the first request"
    );

    // HEAD is answered from the stored GET.
    let head = via(&proxy, &origin.url(path), &["-I"]);
    assert_eq!(head.status, 200);
    assert_eq!(head.x_cache(), "HIT");
    assert_eq!(head.header("content-length"), Some("9"));
    assert_eq!(origin.count(path), 1);

    let log = proxy.log_lines(4);
    assert!(log[0].contains(" TCP_MISS/200 "), "{log:?}");
    assert!(
        log[0].contains(&format!("GET {}", origin.url(path))),
        "{log:?}"
    );
    assert!(
        log[0].contains(" - HIER_DIRECT/127.0.0.1 text/plain"),
        "{log:?}"
    );
    for line in &log[1..] {
        // A request right behind the miss may wait for its entry to be
        // written: a collapsed hit.
        assert!(
            line.contains(" TCP_HIT/200 ") || line.contains(" TCP_CF_HIT/200 "),
            "{line}"
        );
        assert!(line.contains(" HIER_NONE/- "), "{line}");
    }
    // time elapsed client code/status bytes method URL - hierarchy/peer type
    let fields: Vec<&str> = log[0].split_whitespace().collect();
    assert_eq!(fields.len(), 10, "{fields:?}");
    assert!(fields[0].contains('.') && fields[0].split('.').nth(1).unwrap().len() == 3);
    assert_eq!(fields[2], "127.0.0.1");
    assert!(
        fields[4].parse::<u64>().unwrap() > 9,
        "bytes include headers"
    );
}

#[test]
fn no_store_and_private_are_not_cached() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    for path in [
        "/secret?cc=no-store",
        "/mine?cc=private,max-age=300",
        "/plain",
        "/cookie?cc=max-age=300&cookie=alice",
    ] {
        for _ in 0..2 {
            let reply = via(&proxy, &origin.url(path), &[]);
            assert_eq!(reply.status, 200);
            assert_eq!(reply.x_cache(), "MISS", "{path}: {reply:?}");
        }
        assert_eq!(origin.count(path), 2, "{path} reached the origin twice");
    }
    // A request with credentials is not stored unless the response says so.
    let auth = "/account?cc=max-age=300";
    for _ in 0..2 {
        via(&proxy, &origin.url(auth), &["-u", "alice:secret"]);
    }
    assert_eq!(origin.count(auth), 2);
    let public = "/shared?cc=public,max-age=300";
    for _ in 0..2 {
        via(&proxy, &origin.url(public), &["-u", "alice:secret"]);
    }
    assert_eq!(origin.count(public), 1, "`public` allows storing");
    assert_eq!(proxy.stats()["entries"], 1);
}

/// Long enough for a `max-age=1` response to be stale: staleness only
/// grows, so no request below depends on arriving within some window.
const PAST_ONE_SECOND: Duration = Duration::from_millis(1500);

#[test]
fn max_age_expiry_then_revalidation_304_and_200() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/doc?cc=max-age=1&etag=v1&links=2";
    let first = via(&proxy, &origin.url(path), &[]);
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(first.header_all("link").len(), 2);
    // From now on the origin's answers, its 304s included, allow 300 s and
    // carry a field the stored response lacks.
    origin.set("/doc", "cc=max-age=300&extra=from-the-304");
    std::thread::sleep(PAST_ONE_SECOND);

    // Stale: revalidated with If-None-Match, the origin says 304.
    let reply = via(&proxy, &origin.url(path), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.x_cache(), "REVALIDATED", "{reply:?}");
    assert_eq!(reply.text(), "GET /doc");
    assert_eq!(origin.count(path), 2);
    assert_eq!(origin.headers_seen(path)["if-none-match"], "\"v1\"");
    // The 304's fields replaced and joined the stored ones (RFC 9111 §3.2);
    // the repeated field the 304 also sent is kept whole.
    assert_eq!(reply.header("cache-control"), Some("max-age=300"));
    assert_eq!(reply.header("x-extra"), Some("from-the-304"));
    assert_eq!(reply.header_all("link").len(), 2, "{reply:?}");
    assert_eq!(reply.header("content-length"), Some("8"));
    // ... so the entry is fresh again, with the refreshed fields.
    let reply = via(&proxy, &origin.url(path), &[]);
    assert_eq!(reply.x_cache(), "HIT");
    assert_eq!(reply.header("cache-control"), Some("max-age=300"));
    assert_eq!(reply.header("x-extra"), Some("from-the-304"));
    assert_eq!(
        reply.header_all("link"),
        ["</0.css>; rel=preload", "</1.css>; rel=preload"],
        "every value of a repeated field is served from the cache"
    );
    assert_eq!(origin.count(path), 2);
    // A client that already holds the response gets a 304 from the cache.
    let reply = via(&proxy, &origin.url(path), &["-H", "If-None-Match: \"v1\""]);
    assert_eq!((reply.status, reply.x_cache()), (304, "HIT"), "{reply:?}");
    assert!(reply.body.is_empty());
    assert_eq!(origin.count(path), 2);

    // Stale, and the resource changed meanwhile: the origin sends 200.
    let page = "/page?cc=max-age=1&etag=v1";
    assert_eq!(via(&proxy, &origin.url(page), &[]).x_cache(), "MISS");
    origin.set("/page", "etag=v2&body=new%20content&cc=max-age=300");
    // Meanwhile this one's origin starts failing.
    let flaky = "/flaky?cc=max-age=1&etag=f1";
    assert_eq!(via(&proxy, &origin.url(flaky), &[]).x_cache(), "MISS");
    origin.set("/flaky", "etag=down&status=503&body=down");
    std::thread::sleep(PAST_ONE_SECOND);
    let reply = via(&proxy, &origin.url(page), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.x_cache(), "MISS");
    assert_eq!(reply.text(), "new content");
    assert_eq!(reply.header("etag"), Some("\"v2\""));
    assert_eq!(origin.headers_seen(page)["if-none-match"], "\"v1\"");
    let reply = via(&proxy, &origin.url(page), &[]);
    assert_eq!(reply.x_cache(), "HIT");
    assert_eq!(reply.text(), "new content");
    assert_eq!(origin.count(page), 2);

    // A 5xx to a revalidation is passed on; the stored copy is kept and
    // revalidated once the origin is back.
    let reply = via(&proxy, &origin.url(flaky), &[]);
    assert_eq!((reply.status, reply.text().as_str()), (503, "down"));
    assert_eq!(reply.x_cache(), "MISS");
    origin.set("/flaky", "etag=f1&cc=max-age=300");
    let reply = via(&proxy, &origin.url(flaky), &[]);
    assert_eq!(reply.x_cache(), "REVALIDATED", "{reply:?}");
    assert_eq!(reply.text(), "GET /flaky");
    assert_eq!(origin.count(flaky), 3);

    // Last-Modified validators and an entry stale on arrival (Age >= max-age).
    let dated = "/dated?cc=max-age=60&age=60&lm=Tue,%2001%20Oct%202024%2010:00:00%20GMT";
    assert_eq!(via(&proxy, &origin.url(dated), &[]).x_cache(), "MISS");
    assert_eq!(
        via(&proxy, &origin.url(dated), &[]).x_cache(),
        "REVALIDATED"
    );
    assert_eq!(
        origin.headers_seen(dated)["if-modified-since"],
        "Tue, 01 Oct 2024 10:00:00 GMT"
    );

    let codes: Vec<String> = proxy.log_lines(12);
    let count = |code: &str| codes.iter().filter(|l| l.contains(code)).count();
    assert_eq!(count(" TCP_REFRESH_UNMODIFIED/200 "), 3, "{codes:#?}");
    assert_eq!(count(" TCP_REFRESH_MODIFIED/200 "), 1, "{codes:#?}");
    assert_eq!(count(" TCP_REFRESH_FAIL_ERR/503 "), 1, "{codes:#?}");
}

#[test]
fn no_cache_is_stored_but_always_revalidated() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/news?cc=no-cache&etag=n1";
    assert_eq!(via(&proxy, &origin.url(path), &[]).x_cache(), "MISS");
    for _ in 0..2 {
        let reply = via(&proxy, &origin.url(path), &[]);
        assert_eq!(reply.x_cache(), "REVALIDATED");
        assert_eq!(reply.text(), "GET /news");
    }
    assert_eq!(origin.count(path), 3);
    // Age counts the age the origin reported plus the time stored.
    let aged = "/aged?cc=max-age=300&age=100";
    via(&proxy, &origin.url(aged), &[]);
    let reply = via(&proxy, &origin.url(aged), &[]);
    assert_eq!(reply.x_cache(), "HIT");
    let age: u64 = reply.header("age").unwrap().parse().unwrap();
    assert!((100..300).contains(&age), "{reply:?}");
    // must-revalidate with max-age behaves like max-age while fresh.
    let strict = "/strict?cc=max-age=300,must-revalidate";
    via(&proxy, &origin.url(strict), &[]);
    assert_eq!(via(&proxy, &origin.url(strict), &[]).x_cache(), "HIT");
    // s-maxage is for shared caches like this one: it wins over max-age=0.
    let shared = "/shared?cc=max-age=0,s-maxage=300";
    via(&proxy, &origin.url(shared), &[]);
    assert_eq!(via(&proxy, &origin.url(shared), &[]).x_cache(), "HIT");
    // Expires in the future, without Cache-Control.
    let expires = "/expires?expires=Fri,%2001%20Jan%202100%2000:00:00%20GMT";
    via(&proxy, &origin.url(expires), &[]);
    assert_eq!(via(&proxy, &origin.url(expires), &[]).x_cache(), "HIT");
    let expired = "/expired?expires=Mon,%2001%20Jan%202001%2000:00:00%20GMT";
    via(&proxy, &origin.url(expired), &[]);
    assert_eq!(via(&proxy, &origin.url(expired), &[]).x_cache(), "MISS");
    // Heuristic freshness from an old Last-Modified.
    let old = "/old?lm=Mon,%2001%20Jan%202001%2000:00:00%20GMT";
    via(&proxy, &origin.url(old), &[]);
    assert_eq!(via(&proxy, &origin.url(old), &[]).x_cache(), "HIT");
    // A client asking for a fresh copy gets the origin's answer.
    let reply = via(&proxy, &origin.url(old), &["-H", "Cache-Control: no-cache"]);
    assert_eq!(reply.x_cache(), "REVALIDATED");
    // only-if-cached: the stored response, or 504 without asking the origin.
    let cached_only = ["-H", "Cache-Control: only-if-cached"];
    let reply = via(&proxy, &origin.url(old), &cached_only);
    assert_eq!((reply.status, reply.x_cache()), (200, "HIT"));
    let reply = via(&proxy, &origin.url("/absent?cc=max-age=300"), &cached_only);
    assert_eq!(reply.status, 504, "{reply:?}");
    assert!(reply.text().contains("only-if-cached"), "{}", reply.text());
    assert_eq!(origin.count("/absent?cc=max-age=300"), 0);
}

#[test]
fn vary_keeps_one_variant_per_selecting_header() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/hello?cc=max-age=300&vary=Accept-Language";
    let url = origin.url(path);
    let en = ["-H", "Accept-Language: en"];
    let fr = ["-H", "Accept-Language: fr"];

    let reply = via(&proxy, &url, &en);
    assert_eq!(
        (reply.x_cache(), reply.text().as_str()),
        ("MISS", "GET /hello Accept-Language=en")
    );
    let reply = via(&proxy, &url, &fr);
    assert_eq!(
        (reply.x_cache(), reply.text().as_str()),
        ("MISS", "GET /hello Accept-Language=fr")
    );
    let reply = via(&proxy, &url, &en);
    assert_eq!(
        (reply.x_cache(), reply.text().as_str()),
        ("HIT", "GET /hello Accept-Language=en")
    );
    let reply = via(&proxy, &url, &fr);
    assert_eq!(
        (reply.x_cache(), reply.text().as_str()),
        ("HIT", "GET /hello Accept-Language=fr")
    );
    let reply = via(&proxy, &url, &[]);
    assert_eq!(
        reply.x_cache(),
        "MISS",
        "no Accept-Language is a third variant"
    );
    // Two lines of the field are one value, "en, fr": not the "en" variant.
    let both = ["-H", "Accept-Language: en", "-H", "Accept-Language: fr"];
    assert_eq!(via(&proxy, &url, &both).x_cache(), "MISS");
    assert_eq!(via(&proxy, &url, &both).x_cache(), "HIT");
    assert_eq!(origin.count(path), 4);
    assert_eq!(proxy.stats()["entries"], 4);

    // Vary: * is never reused.
    let star = "/star?cc=max-age=300&vary=*";
    via(&proxy, &origin.url(star), &[]);
    assert_eq!(via(&proxy, &origin.url(star), &[]).x_cache(), "MISS");
}

#[test]
fn post_is_forwarded_with_its_body_and_invalidates() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/form?cc=max-age=300";
    let url = origin.url(path);

    assert_eq!(via(&proxy, &url, &[]).x_cache(), "MISS");
    assert_eq!(via(&proxy, &url, &[]).x_cache(), "HIT");

    for _ in 0..2 {
        let reply = via(&proxy, &url, &["--data-binary", "name=netkit&x=1"]);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.x_cache(), "BYPASS");
        assert_eq!(reply.text(), "got name=netkit&x=1");
    }
    assert_eq!(origin.count(path), 3, "one GET and both POSTs");
    // The POST invalidated the stored GET.
    let reply = via(&proxy, &url, &[]);
    assert_eq!(reply.x_cache(), "MISS");
    assert_eq!(reply.text(), "GET /form");
    assert_eq!(via(&proxy, &url, &[]).x_cache(), "HIT");

    // The other methods, bodies streamed both ways; each unsafe one
    // invalidates the stored GET, OPTIONS does not.
    let big: String = "0123456789".repeat(300_000);
    let file = dir.path().join("upload");
    std::fs::write(&file, &big).unwrap();
    let upload = format!("@{}", file.display());
    let stored_then = |method: &str, args: &[&str]| {
        via(&proxy, &url, &[]);
        assert_eq!(via(&proxy, &url, &[]).x_cache(), "HIT");
        let mut all = vec!["-X", method];
        all.extend_from_slice(args);
        let reply = via(&proxy, &url, &all);
        assert_eq!(reply.status, 200, "{method}: {reply:?}");
        assert_eq!(reply.x_cache(), "BYPASS");
        (reply, via(&proxy, &url, &[]).x_cache().to_owned())
    };
    let (reply, after) = stored_then("PUT", &["--data-binary", &upload]);
    assert_eq!(reply.body.len(), 4 + big.len());
    assert!(reply.text() == format!("got {big}"));
    assert_eq!(after, "MISS", "PUT invalidates");
    let (reply, after) = stored_then("PATCH", &["--data-binary", "p"]);
    assert_eq!(reply.text(), "got p");
    assert_eq!(after, "MISS", "PATCH invalidates");
    let (reply, after) = stored_then("DELETE", &[]);
    assert_eq!(reply.text(), "DELETE /form");
    assert_eq!(after, "MISS", "DELETE invalidates");
    let (reply, after) = stored_then("OPTIONS", &[]);
    assert_eq!(reply.text(), "OPTIONS /form");
    assert_eq!(after, "HIT", "OPTIONS is safe");
    // A POST whose response points elsewhere on the same origin (Location)
    // invalidates that URL too.
    let other = "/other?cc=max-age=300";
    via(&proxy, &origin.url(other), &[]);
    assert_eq!(via(&proxy, &origin.url(other), &[]).x_cache(), "HIT");
    let form = origin.url("/submit?location=%2Fother%3Fcc%3Dmax-age%3D300");
    assert_eq!(via(&proxy, &form, &["--data-binary", "x"]).status, 200);
    assert_eq!(via(&proxy, &origin.url(other), &[]).x_cache(), "MISS");
    // Chunked upload from the client.
    let reply = via(
        &proxy,
        &url,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "chunky",
        ],
    );
    assert_eq!(reply.text(), "got chunky");
}

#[test]
fn collapsed_forwarding_sends_one_request_for_fifty_clients() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let path = "/slow?cc=max-age=300&delay=1&size=100000";
    let url = origin.url(path);
    let proxy_url = proxy.url();
    let out_dir = tempfile::tempdir().unwrap();
    // 50 transfers at once from one curl, each on its own connection.
    let mut args: Vec<String> = vec![
        "-s".into(),
        "--max-time".into(),
        "30".into(),
        "-Z".into(),
        "--parallel-immediate".into(),
        "--parallel-max".into(),
        "50".into(),
        "-x".into(),
        proxy_url,
        "-w".into(),
        "%{http_code} %{size_download}\\n".into(),
    ];
    for i in 0..50 {
        args.push("-o".into());
        args.push(out_dir.path().join(format!("{i}")).display().to_string());
        args.push(url.clone());
    }
    let output = std::process::Command::new("curl")
        .args(&args)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert_eq!(summary.lines().count(), 50, "{summary}");
    for line in summary.lines() {
        assert_eq!(line, "200 100000", "{summary}");
    }
    assert_eq!(origin.count(path), 1, "the origin saw one request");
    let expected = std::fs::read(out_dir.path().join("0")).unwrap();
    for i in 1..50 {
        assert!(std::fs::read(out_dir.path().join(format!("{i}"))).unwrap() == expected);
    }
    let log = proxy.log_lines(50);
    let misses = log.iter().filter(|l| l.contains("TCP_MISS/200")).count();
    let collapsed = log.iter().filter(|l| l.contains("TCP_CF_HIT/200")).count();
    assert_eq!(misses, 1, "{log:#?}");
    assert!(collapsed >= 40, "most waited for the one fetch: {log:#?}");
}

#[test]
fn stats_page_as_json_and_html() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let url = origin.url("/s?cc=max-age=300&size=1000");
    via(&proxy, &url, &[]);
    via(&proxy, &url, &[]);
    via(&proxy, &url, &[]);
    // A HEAD hit sends no body: no bytes served from the cache.
    assert_eq!(via(&proxy, &url, &["-I"]).x_cache(), "HIT");
    let stats = proxy.stats();
    assert_eq!(stats["hits"], 3, "{stats}");
    assert_eq!(stats["misses"], 1);
    assert_eq!(stats["revalidations"], 0);
    assert_eq!(stats["bytes_from_cache"], 2000);
    assert_eq!(stats["entries"], 1);
    assert!(stats["disk_bytes"].as_u64().unwrap() >= 1000);
    let html = via(
        &proxy,
        "http://netkit.proxy/stats",
        &["-H", "Accept: text/html"],
    );
    assert_eq!(html.status, 200);
    assert!(
        html.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        html.text().contains("<th>Hits</th><td>3</td>"),
        "{}",
        html.text()
    );
    // The path form reaches it too.
    let reply = curl(&[&format!("{}/netkit.proxy/stats", proxy.url())]);
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("\"hits\": 3"));
}

/// The lab's client: a bare socket, HTTP/1.0, path form, no Host header.
const LAB_CLIENT: &str = r#"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(("GET /%s HTTP/1.0\r\n\r\n" % sys.argv[2]).encode())
reply = b""
while True:
    data = s.recv(65536)
    if not data:
        break
    reply += data
sys.stdout.write(reply.decode("latin-1"))
"#;

#[test]
fn the_labs_http_1_0_socket_client() {
    if !tools() {
        return;
    }
    let origin = Origin::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(dir.path(), &[]);
    let target = format!("{}/lab?cc=max-age=300", origin.addr());
    for expected in ["MISS", "HIT"] {
        let out = testkit::python(LAB_CLIENT, &[&proxy.addr().to_string(), &target], b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reply = String::from_utf8_lossy(&out.stdout);
        assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains(&format!("x-cache: {}", expected.to_ascii_lowercase())),
            "{reply}"
        );
        assert!(reply.ends_with("\r\n\r\nGET /lab"), "{reply}");
    }
    assert_eq!(origin.count("/lab?cc=max-age=300"), 1);
}
