//! `netkit web serve` end to end: the real binary, driven by curl (a client
//! we did not write) and by raw sockets for what curl will not send.

#[path = "web/support.rs"]
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::*;

#[test]
fn files_and_heads_with_curl() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("heads");
    let server = serve(Some(&fixture.root()), &[]);

    let reply = curl(&[&url(&server, "/hello.txt")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), HELLO);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("content-length"), Some("14"));
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
    let etag = reply.header("etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong tag: {etag}"
    );
    let modified = reply.header("last-modified").unwrap();
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert!(reply.header("date").is_some());

    // HEAD: the same head, no body.
    let head = curl(&["-I", &url(&server, "/hello.txt")]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("14"));
    assert_eq!(head.header("etag"), Some(etag));
    assert!(head.body.is_empty());

    let png = curl(&[&url(&server, "/data.bin")]);
    assert_eq!(png.header("content-type"), Some("application/octet-stream"));
    assert_eq!(png.body, binary_data());

    // Directories: a redirect to the slash form, keeping the query.
    let reply = curl(&[&url(&server, "/docs?x=1")]);
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("/docs/?x=1"));
    let reply = curl(&[&url(&server, "/with-index/")]);
    assert_eq!(reply.body_text(), "<h1>the index</h1>\n");
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // No listing without --list.
    assert_eq!(curl(&[&url(&server, "/docs/")]).status, 404);
    // A file is not a directory.
    assert_eq!(curl(&[&url(&server, "/hello.txt/")]).status, 404);
}

#[test]
fn error_statuses_have_pages() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("errors");
    let server = serve(Some(&fixture.root()), &[]);

    let reply = curl(&[&url(&server, "/no%3Cscript%3Ealert(1)%3C/script%3E")]);
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = reply.body_text();
    assert!(
        page.contains("/no&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>"));

    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"] {
        let reply = curl(&["-X", method, &url(&server, "/hello.txt")]);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        assert!(reply.body_text().contains("405 Method Not Allowed"));
    }
    // The server is still fine.
    assert_eq!(curl(&[&url(&server, "/hello.txt")]).status, 200);
}

#[test]
fn conditional_requests() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("conditional");
    let server = serve(Some(&fixture.root()), &[]);
    let hello = url(&server, "/hello.txt");
    let first = curl(&[&hello]);
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();

    let cases: &[(String, u16)] = &[
        (format!("If-None-Match: {etag}"), 304),
        (format!("If-None-Match: \"other\", {etag}"), 304),
        (format!("If-None-Match: W/{etag}"), 304),
        ("If-None-Match: *".to_owned(), 304),
        ("If-None-Match: \"other\"".to_owned(), 200),
        (format!("If-Modified-Since: {modified}"), 304),
        (
            "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT".to_owned(),
            200,
        ),
        ("If-Modified-Since: not a date".to_owned(), 200),
        (format!("If-Match: {etag}"), 200),
        ("If-Match: \"other\"".to_owned(), 412),
        (format!("If-Match: W/{etag}"), 412),
        (format!("If-Unmodified-Since: {modified}"), 200),
        (
            "If-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT".to_owned(),
            412,
        ),
    ];
    for (header, status) in cases {
        let reply = curl(&["-H", header, &hello]);
        assert_eq!(reply.status, *status, "{header}");
        match status {
            304 => {
                assert!(reply.body.is_empty());
                assert_eq!(reply.header("etag"), Some(etag.as_str()));
            }
            412 => assert!(reply.body_text().contains("412 Precondition Failed")),
            _ => assert_eq!(reply.body_text(), HELLO),
        }
    }
    // A list may come on several field lines (RFC 9110 §5.3).
    let reply = curl(&[
        "-H",
        "If-None-Match: \"other\"",
        "-H",
        &format!("If-None-Match: {etag}"),
        &hello,
    ]);
    assert_eq!(reply.status, 304);
    // If-None-Match wins over If-Modified-Since.
    let reply = curl(&[
        "-H",
        "If-None-Match: \"other\"",
        "-H",
        &format!("If-Modified-Since: {modified}"),
        &hello,
    ]);
    assert_eq!(reply.status, 200);

    // A changed file has a new tag.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(fixture.path("hello.txt"), "changed\n").unwrap();
    let reply = curl(&["-H", &format!("If-None-Match: {etag}"), &hello]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), "changed\n");
}

#[test]
fn byte_ranges() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("ranges");
    let server = serve(Some(&fixture.root()), &[]);
    let data = binary_data();
    let len = data.len();
    let bin = url(&server, "/data.bin");

    let reply = curl(&["-r", "0-99", &bin]);
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    assert_eq!(reply.header("content-length"), Some("100"));
    assert_eq!(reply.body, &data[..100]);

    // Range units are case-insensitive.
    let reply = curl(&["-H", "Range: Bytes=0-99", &bin]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &data[..100]);
    let reply = curl(&["-r", "-10", &bin]);
    assert_eq!(reply.body, &data[len - 10..]);
    let reply = curl(&["-r", "1000000-", &bin]);
    assert_eq!(reply.body, &data[1_000_000..]);

    // Several ranges: multipart/byteranges, each part with its own head.
    let reply = curl(&["-r", "0-9,500000-500009", &bin]);
    assert_eq!(reply.status, 206);
    let content_type = reply.header("content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{content_type}"));
    assert_eq!(
        reply
            .header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        reply.body.len()
    );
    let body = &reply.body;
    let first = find(body, b"Content-Range: bytes 0-9/").unwrap();
    let second = find(body, b"Content-Range: bytes 500000-500009/").unwrap();
    assert!(first < second);
    let part = |at: usize| {
        let start = at + find(&body[at..], b"\r\n\r\n").unwrap() + 4;
        body[start..start + 10].to_vec()
    };
    assert_eq!(part(first), &data[..10]);
    assert_eq!(part(second), &data[500_000..500_010]);
    assert!(body.ends_with(format!("\r\n--{boundary}--\r\n").as_bytes()));

    // Unsatisfiable.
    let reply = curl(&["-r", "2000000-", &bin]);
    assert_eq!(reply.status, 416);
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    // If-Range: the range only if the tag still matches.
    let etag = curl(&["-I", &bin]).header("etag").unwrap().to_owned();
    let reply = curl(&["-r", "0-9", "-H", &format!("If-Range: {etag}"), &bin]);
    assert_eq!(reply.status, 206);
    let reply = curl(&["-r", "0-9", "-H", "If-Range: \"stale\"", &bin]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), len);

    // A malformed range is ignored.
    let reply = curl(&["-H", "Range: bytes=oops", &bin]);
    assert_eq!(reply.status, 200);
    // HEAD ignores ranges too.
    assert_eq!(curl(&["-I", "-r", "0-9", &bin]).status, 200);
}

#[test]
fn compression_is_negotiated() {
    if !testkit::require("curl") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("compression");
    // A precompressed sibling with different text, to see which is served.
    let made = testkit::python(
        "import gzip,sys; open(sys.argv[1],'wb').write(gzip.compress(b'from the gz sibling\\n'))",
        &[fixture.path("big.txt.gz").to_str().unwrap()],
        b"",
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    std::fs::write(fixture.path("small.css"), "p{}").unwrap();
    // A .br sibling is sent as it is, whatever it holds.
    std::fs::write(fixture.path("docs/a.txt.br"), "brotli sibling bytes").unwrap();
    let server = serve(Some(&fixture.root()), &[]);
    let big = url(&server, "/big.txt");
    let expected = big_text();

    // curl --compressed offers br and gzip; br is preferred.
    let reply = curl(&["--compressed", "-H", "Accept-Encoding: br", &big]);
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert_eq!(reply.body_text(), expected);
    assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
    assert!(reply.header("etag").unwrap().ends_with("-br\""));
    assert!(reply.header("content-length").is_none());

    // gzip preferred by q-value: the precompressed sibling is used.
    let reply = curl(&[
        "--compressed",
        "-H",
        "Accept-Encoding: br;q=0.5, gzip",
        &big,
    ]);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert_eq!(reply.body_text(), "from the gz sibling\n");
    let reply = curl(&[
        "--compressed",
        "-H",
        "Accept-Encoding: br;q=0, gzip;q=0.1",
        &big,
    ]);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));

    // The raw br bytes are really smaller than the file.
    let out = curl_output(&["-s", "-H", "Accept-Encoding: br"], &[&big]);
    assert!(
        out.stdout.len() < expected.len() / 4,
        "{}",
        out.stdout.len()
    );

    // Accept-Encoding on two field lines is one list.
    let reply = curl(&[
        "--compressed",
        "-H",
        "Accept-Encoding: identity",
        "-H",
        "Accept-Encoding: br",
        &big,
    ]);
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert_eq!(reply.body_text(), expected);

    for refused in ["identity", "br;q=0, gzip;q=0", "*;q=0", "compress"] {
        let reply = curl(&["-H", &format!("Accept-Encoding: {refused}"), &big]);
        assert_eq!(reply.header("content-encoding"), None, "{refused}");
        assert_eq!(reply.body_text(), expected);
    }
    // Ranges are served from the identity representation.
    let reply = curl(&["-H", "Accept-Encoding: br, gzip", "-r", "0-9", &big]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.body_text(), &expected[..10]);
    // A .br sibling, chosen over a smaller file's identity.
    let a = url(&server, "/docs/a.txt");
    let reply = curl(&["-H", "Accept-Encoding: gzip, br", &a]);
    assert_eq!(reply.header("content-encoding"), Some("br"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("content-length"), Some("20"));
    assert_eq!(reply.body_text(), "brotli sibling bytes");
    assert!(reply.header("etag").unwrap().ends_with("-br\""));
    let reply = curl(&["-H", "Accept-Encoding: gzip", &a]);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.body_text(), "document a\n");
    // Small files and incompressible types stay as they are.
    let reply = curl(&["-H", "Accept-Encoding: br", &url(&server, "/small.css")]);
    assert_eq!(reply.header("content-encoding"), None);
    let reply = curl(&["-H", "Accept-Encoding: br", &url(&server, "/data.bin")]);
    assert_eq!(reply.header("content-encoding"), None);
    // Conditional requests on a compressed representation use its own tag.
    let tag = curl(&["-I", "-H", "Accept-Encoding: br", &big])
        .header("etag")
        .unwrap()
        .to_owned();
    let reply = curl(&[
        "-H",
        "Accept-Encoding: br",
        "-H",
        &format!("If-None-Match: {tag}"),
        &big,
    ]);
    assert_eq!(reply.status, 304);
}

#[test]
fn directory_listing() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("listing");
    // 2001-02-03 04:05:06 UTC, to find in the listing.
    let modified = std::time::UNIX_EPOCH + Duration::from_secs(981_173_106);
    std::fs::File::options()
        .write(true)
        .open(fixture.path("hello.txt"))
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let server = serve(Some(&fixture.root()), &["--list"]);
    let reply = curl(&[&url(&server, "/")]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = reply.body_text();
    assert!(page.contains("<title>Index of /</title>"));
    // Escaped in text and encoded in links.
    assert!(
        page.contains("odd &lt;name&gt; &amp; &quot;q&quot;.txt"),
        "{page}"
    );
    assert!(
        page.contains("href=\"./odd%20%3Cname%3E%20%26%20%22q%22.txt\""),
        "{page}"
    );
    assert!(!page.contains("<name>"));
    // Sorted, directories first; sizes shown; no dotfiles or escapes.
    let order: Vec<usize> = [
        "docs/",
        "empty/",
        "with-index/",
        "big.txt",
        "data.bin",
        "hello.txt",
    ]
    .iter()
    .map(|name| {
        page.find(&format!(">{name}<"))
            .unwrap_or_else(|| panic!("{name}: {page}"))
    })
    .collect();
    assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{order:?}");
    assert!(page.contains("1.0 MiB"), "{page}");
    let hello_row = page
        .lines()
        .find(|line| line.contains(">hello.txt<"))
        .unwrap();
    assert!(
        hello_row.contains("14 B") && hello_row.contains("2001-02-03 04:05"),
        "size and modification time: {hello_row}"
    );
    assert!(!page.contains(".env") && !page.contains(".git"));
    assert!(!page.contains("link-outside") && !page.contains("dir-outside"));
    assert!(page.contains(">link-inside<") && page.contains(">abs-link-inside<"));

    let docs = curl(&[&url(&server, "/docs/")]).body_text();
    assert!(docs.contains("<a href=\"../\">../</a>"));
    assert!(docs.contains("a.txt"));
    // The link in the listing works.
    let reply = curl(&[&url(&server, "/odd%20%3Cname%3E%20%26%20%22q%22.txt")]);
    assert_eq!(reply.body_text(), "odd\n");
    // index.html still wins.
    assert_eq!(
        curl(&[&url(&server, "/with-index/")]).body_text(),
        "<h1>the index</h1>\n"
    );
}

#[test]
fn concurrent_clients_keep_alive_and_pipelining() {
    let fixture = Fixture::new("concurrent");
    let server = serve(Some(&fixture.root()), &[]);
    let addr = server.addr();
    let clients: Vec<_> = (0..32)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                for _ in 0..25 {
                    stream
                        .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    let reply = read_one_response(&mut stream);
                    assert!(reply.ends_with(HELLO.as_bytes()), "{}", text(&reply));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }

    // Five pipelined requests in one write, answered in order.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let paths = [
        "/hello.txt",
        "/docs/a.txt",
        "/missing",
        "/hello.txt",
        "/docs/a.txt",
    ];
    let mut requests = String::new();
    for path in paths {
        requests.push_str(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    stream.write_all(requests.as_bytes()).unwrap();
    let expected = [200, 200, 404, 200, 200];
    for (path, status) in paths.iter().zip(expected) {
        let reply = parse_reply(&read_one_response(&mut stream));
        assert_eq!(reply.status, status, "{path}");
    }
}

#[test]
fn http2_with_prior_knowledge() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("h2c");
    let server = serve(Some(&fixture.root()), &[]);
    // One URL per curl: curl 7.88 fails to reuse a prior-knowledge
    // connection (with nginx too).
    for (path, body) in [("/hello.txt", HELLO), ("/docs/a.txt", "document a\n")] {
        let out = curl_output(
            &[
                "-s",
                "--http2-prior-knowledge",
                "-w",
                "%{http_version} %{http_code}",
            ],
            &[&url(&server, path)],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{body}2 200"));
    }
    let reply = curl(&[
        "--http2-prior-knowledge",
        "-r",
        "0-4",
        &url(&server, "/big.txt"),
    ]);
    assert_eq!(reply.status_line.trim(), "HTTP/2 206");
    assert_eq!(reply.body_text(), "line ");
    let reply = curl(&["--http2-prior-knowledge", "-I", &url(&server, "/data.bin")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("1048576"));
    let reply = curl(&["--http2-prior-knowledge", "-X", "POST", &url(&server, "/")]);
    assert_eq!(reply.status, 405);

    let out = get(&["--http2", &url(&server, "/big.txt")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), big_text());
}
