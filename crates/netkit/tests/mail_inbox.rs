//! `netkit mail sink`'s inbox API against real senders: what swaks and
//! Python's smtplib send comes back from the API with exactly the headers
//! and bytes sent; the raw download is the stored file byte for byte;
//! arrivals stream as Server-Sent Events; read, delete, pruning and the
//! index's rebuild work on the Maildir itself.

#[path = "mail_inbox/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The headers the sink adds in front of a message (Return-Path, Received).
fn trace_len(stored: &[u8], sent: &[u8]) -> usize {
    assert!(
        stored.ends_with(sent),
        "the stored message does not end with the bytes sent:\n{}",
        text(stored)
    );
    stored.len() - sent.len()
}

/// The sent message's header fields, as (name, value) with folding kept.
fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let text = text(message);
    let head = text.split("\r\n\r\n").next().unwrap();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().unwrap();
            last.1.push_str("\r\n");
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            fields.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    fields
}

fn api_headers(message: &Value) -> Vec<(String, String)> {
    message["Headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["Name"].as_str().unwrap().to_owned(),
                h["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The API has every header sent, in order, after the sink's own two.
fn check_headers(message: &Value, sent: &[u8]) {
    let api = api_headers(message);
    assert_eq!(api[0].0, "Return-Path");
    assert_eq!(api[1].0, "Received");
    assert_eq!(api[2..], header_fields(sent)[..], "{message:#}");
}

#[test]
fn smtplib_text_with_utf8_subject_8bitmime_and_dots() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &[]);
    let sent = inbox.smtplib("text", "");
    // The 250 came after indexing: the message is there at once.
    let summary = inbox.find("text.1@test.example");
    let id = summary["ID"].as_str().unwrap();
    assert_eq!(summary["Subject"], "Grüße aus Köln ✓");
    assert_eq!(summary["From"]["Name"], "Ann Example");
    assert_eq!(summary["From"]["Address"], "ann@example.org");
    assert_eq!(summary["Read"], false);

    let stored = inbox.stored(id);
    let raw = inbox.get(&format!("/api/v1/message/{id}/raw"));
    assert_eq!(raw, stored, "the raw download is the stored file");
    trace_len(&stored, &sent);
    assert!(text(&stored).contains("\r\n.a line that starts with a dot\r\n..and two\r\n.\r\n"));

    let message = inbox.json(&format!("/api/v1/message/{id}"));
    check_headers(&message, &sent);
    assert_eq!(message["Subject"], "Grüße aus Köln ✓");
    assert_eq!(
        message["Text"],
        "Hallo Bob,\r\n.a line that starts with a dot\r\n..and two\r\n.\r\nünïcödé, 8 bits\r\n"
    );
    assert_eq!(message["HTML"], "");
    assert_eq!(message["Size"], stored.len());
    let headers: Value = inbox.json(&format!("/api/v1/message/{id}/headers"));
    assert_eq!(headers, message["Headers"]);
}

#[test]
fn smtplib_html_with_inline_image_and_attachments() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &[]);
    let sent = inbox.smtplib("rich", "http://remote.invalid/pixel.png");
    let summary = inbox.find("rich.1@test.example");
    let id = summary["ID"].as_str().unwrap();
    assert_eq!(summary["Attachments"], 3, "{summary:#}");

    let stored = inbox.stored(id);
    assert_eq!(inbox.get(&format!("/api/v1/message/{id}/raw")), stored);
    trace_len(&stored, &sent);
    let message = inbox.json(&format!("/api/v1/message/{id}"));
    check_headers(&message, &sent);
    assert_eq!(message["To"][0]["Address"], "dave@example.org");
    assert_eq!(message["Cc"][0]["Name"], "Erin");
    assert_eq!(message["Text"], "The report is attached.\r\n");
    assert!(
        message["HTML"]
            .as_str()
            .unwrap()
            .contains("src='cid:logo@test.example'")
    );

    let inline = message["Inline"].as_array().unwrap();
    assert_eq!(inline.len(), 1, "{message:#}");
    assert_eq!(inline[0]["ContentID"], "logo@test.example");
    assert_eq!(inline[0]["ContentType"], "image/png");
    let png = inbox.get(&format!(
        "/api/v1/message/{id}/part/{}",
        inline[0]["PartID"]
    ));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(inline[0]["Size"], png.len());

    let attachments = message["Attachments"].as_array().unwrap();
    let names: Vec<&str> = attachments
        .iter()
        .map(|a| a["FileName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["report.pdf", "données.csv"]);
    let pdf = &attachments[0];
    assert_eq!(pdf["ContentType"], "application/pdf");
    let (status, bytes) = inbox.curl(
        &["-D", "-"],
        &format!("/api/v1/message/{id}/part/{}?download=1", pdf["PartID"]),
    );
    assert_eq!(status, 200);
    let response = text(&bytes);
    assert!(
        response.contains("content-disposition: attachment; filename=\"report.pdf\""),
        "{response}"
    );
    let mut expected = b"%PDF-1.4\n% not really a PDF\n".to_vec();
    expected.extend(0u8..=255);
    assert!(
        bytes.ends_with(&expected),
        "the PDF comes back byte for byte"
    );
    assert_eq!(pdf["Size"], expected.len());
    let csv = inbox.get(&format!(
        "/api/v1/message/{id}/part/{}",
        attachments[1]["PartID"]
    ));
    assert_eq!(csv, b"a,b\r\n1,2\r\n");

    // Bcc recipients exist only in the envelope; search still finds them.
    let found = inbox.json("/api/v1/search?query=to:hidden-bcc%40example.org");
    assert_eq!(found["MessagesCount"], 1);
}

#[test]
fn swaks_message_arrives_byte_for_byte() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &[]);
    let sent = "From: Swaks Sender <swaks@example.org>\r\n\
To: rcpt@example.org\r\n\
Subject: =?UTF-8?B?w5xiZXJwcsO8ZnVuZw==?=\r\n\
Message-ID: <swaks.1@test.example>\r\n\
X-Long: a header folded\r\n\tover two lines\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Grüße, 8 bits.\r\n\
.leading dot\r\n\
..two dots\r\n\
last line\r\n";
    // swaks ends DATA with CRLF . CRLF after the data it is given, so the
    // data goes without its last line end (which is the message's own).
    inbox.swaks(sent.strip_suffix("\r\n").unwrap().as_bytes(), dir.path());
    let sent = sent.as_bytes();
    let summary = inbox.find("swaks.1@test.example");
    let id = summary["ID"].as_str().unwrap();
    assert_eq!(summary["Subject"], "Überprüfung");
    let stored = inbox.stored(id);
    assert_eq!(inbox.get(&format!("/api/v1/message/{id}/raw")), stored);
    trace_len(&stored, sent);
    let message = inbox.json(&format!("/api/v1/message/{id}"));
    check_headers(&message, sent);
    assert_eq!(
        message["Text"],
        "Grüße, 8 bits.\r\n.leading dot\r\n..two dots\r\nlast line\r\n"
    );
}

/// Reads `GET /api/v1/events` until an event of `name` whose data
/// contains `needle`, within 30 s.
fn wait_for_event(stream: &mut BufReader<TcpStream>, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut event = String::new();
    loop {
        assert!(Instant::now() < deadline, "no `{name}` event with {needle}");
        let mut line = String::new();
        stream
            .read_line(&mut line)
            .expect("the event stream stays open");
        let line = line.trim_end();
        if let Some(current) = line.strip_prefix("event: ") {
            event = current.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ")
            && event == name
            && data.contains(needle)
        {
            return data.to_owned();
        }
    }
}

fn events(inbox: &Inbox) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(inbox.web).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        inbox.web
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // Past the headers, and past the stream's first comment: subscribed.
    let mut line = String::new();
    while !line.starts_with(": connected") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    reader
}

#[test]
fn events_stream_arrivals_reads_and_deletes() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &[]);
    let mut stream = events(&inbox);
    inbox.smtplib("text", "");
    let data = wait_for_event(&mut stream, "new", "text.1@test.example");
    let arrived: Value = serde_json::from_str(&data).unwrap();
    let id = arrived["ID"].as_str().unwrap().to_owned();
    assert_eq!(arrived["Subject"], "Grüße aus Köln ✓");

    // Read: the file moves to cur/ with the S flag, and the stream says so.
    let body = format!("{{\"IDs\": [\"{id}\"], \"Read\": true}}");
    let (status, _) = inbox.curl(&["-X", "PUT", "--data", &body], "/api/v1/messages");
    assert_eq!(status, 200);
    wait_for_event(&mut stream, "read", &id);
    assert!(inbox.maildir.join(format!("cur/{id}:2,S")).exists());
    assert!(!inbox.maildir.join(format!("new/{id}")).exists());
    let listing = inbox.json("/api/v1/messages");
    assert_eq!(
        (listing["Total"].clone(), listing["Unread"].clone()),
        (1.into(), 0.into())
    );
    assert_eq!(
        inbox.json("/api/v1/search?query=is:unread")["MessagesCount"],
        0
    );
    assert_eq!(
        inbox.json("/api/v1/search?query=is:read")["MessagesCount"],
        1
    );

    let (status, _) = inbox.curl(&["-X", "DELETE"], &format!("/api/v1/message/{id}"));
    assert_eq!(status, 200);
    wait_for_event(&mut stream, "delete", &id);
    assert!(!inbox.maildir.join(format!("cur/{id}:2,S")).exists());
    let (status, _) = inbox.curl(&[], &format!("/api/v1/message/{id}"));
    assert_eq!(status, 404);

    inbox.smtplib("rich", "http://remote.invalid/");
    inbox.smtplib("text", "");
    assert_eq!(inbox.json("/api/v1/messages")["Total"], 2);
    let (status, _) = inbox.curl(&["-X", "DELETE"], "/api/v1/messages");
    assert_eq!(status, 200);
    wait_for_event(&mut stream, "clear", "");
    assert_eq!(inbox.json("/api/v1/messages")["Total"], 0);
    assert_eq!(
        std::fs::read_dir(inbox.maildir.join("new"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn search_paging_and_bad_queries() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &[]);
    inbox.smtplib("text", "");
    inbox.smtplib("rich", "http://remote.invalid/");
    inbox.smtplib("text", "");
    let count =
        |query: &str| inbox.json(&format!("/api/v1/search?query={query}"))["MessagesCount"].clone();
    assert_eq!(count("has:attachment"), 1);
    assert_eq!(count("from:carol"), 1);
    assert_eq!(count("subject:K%C3%B6ln"), 2);
    assert_eq!(count("report"), 1);
    assert_eq!(count("%C3%BCn%C3%AFc%C3%B6d%C3%A9"), 2,);
    assert_eq!(count("nothing-like-this"), 0);
    assert_eq!(count("after:2000-01-01+before:2999-01-01"), 3);
    assert_eq!(count("before:2000-01-01"), 0);
    let (status, body) = inbox.curl(&[], "/api/v1/search?query=before:yesterday");
    assert_eq!(status, 400, "{}", text(&body));

    let page = inbox.json("/api/v1/messages?start=1&limit=1");
    assert_eq!(page["MessagesCount"], 3);
    assert_eq!(page["Messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["Messages"][0]["MessageID"], "rich.1@test.example");
    let newest = inbox.json("/api/v1/messages?limit=1");
    assert_eq!(newest["Messages"][0]["MessageID"], "text.1@test.example");

    // A browser on another site may not change the inbox.
    let (status, _) = inbox.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Origin: http://evil.example",
            "-H",
            "Sec-Fetch-Site: cross-site",
        ],
        "/delete-all",
    );
    assert_eq!(status, 403);
    assert_eq!(inbox.json("/api/v1/messages")["Total"], 3);
    for path in [
        "/api/v1/message/..%2F..%2Fetc%2Fpasswd/raw",
        "/api/v1/message/nope",
        "/api/v1/message/x/part/999",
    ] {
        let (status, _) = inbox.curl(&[], path);
        assert_eq!(status, 404, "{path}");
    }
}

#[test]
fn max_messages_prunes_the_oldest() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &["--max-messages", "2"]);
    inbox.smtplib("rich", "http://remote.invalid/");
    inbox.smtplib("text", "");
    inbox.smtplib("text", "");
    let listing = inbox.json("/api/v1/messages");
    assert_eq!(listing["Total"], 2, "{listing:#}");
    assert_eq!(count_files(&inbox.maildir), 2);
    let ids: Vec<&str> = listing["Messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["MessageID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["text.1@test.example", "text.1@test.example"]);
}

fn count_files(maildir: &std::path::Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|sub| std::fs::read_dir(maildir.join(sub)).unwrap().count())
        .sum()
}

#[test]
fn the_index_is_rebuilt_from_the_maildir() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let index = maildir.join("netkit-index.sqlite");
    let inbox = Inbox::start(&maildir, &[]);
    inbox.smtplib("text", "");
    inbox.smtplib("rich", "http://remote.invalid/");
    let id = inbox.find("rich.1@test.example")["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    inbox.curl(
        &[
            "-X",
            "PUT",
            "--data",
            &format!("{{\"IDs\":[\"{id}\"],\"Read\":true}}"),
        ],
        "/api/v1/messages",
    );
    drop(inbox);

    // Damaged: overwritten with junk.
    std::fs::write(&index, b"not a database at all, just junk bytes here").unwrap();
    let inbox = Inbox::start(&maildir, &[]);
    let listing = inbox.json("/api/v1/messages");
    assert_eq!(
        (listing["Total"].clone(), listing["Unread"].clone()),
        (2.into(), 1.into())
    );
    assert_eq!(inbox.find("rich.1@test.example")["Attachments"], 3);
    drop(inbox);

    // Missing, and a message delivered by someone else meanwhile.
    std::fs::remove_file(&index).unwrap();
    let stored = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&stored, maildir.join("new/1700000000.M1P1Q1.elsewhere")).unwrap();
    let inbox = Inbox::start(&maildir, &[]);
    let listing = inbox.json("/api/v1/messages");
    assert_eq!(listing["Total"], 3, "{listing:#}");
    let oldest = &listing["Messages"][2];
    assert_eq!(oldest["ID"], "1700000000.M1P1Q1.elsewhere");
    assert_eq!(oldest["Created"], "2023-11-14T22:13:20Z");
}

/// The header `name` of a `curl -D -` response.
fn response_header(response: &str, name: &str) -> String {
    response
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {response}"))
}

#[test]
fn pages_read_without_javascript() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::start(&dir.path().join("maildir"), &[]);
    inbox.smtplib("rich", "http://remote.invalid/pixel.png");
    inbox.smtplib("hostile", "http://remote.invalid/");
    let rich = inbox.find("rich.1@test.example");
    let id = rich["ID"].as_str().unwrap();

    let (status, list) = inbox.curl(&["-D", "-"], "/");
    let list = text(&list);
    assert_eq!(status, 200);
    assert!(response_header(&list, "content-security-policy").contains("script-src 'self'"));
    assert!(
        list.contains(&format!(
            "<a href=\"/message/{id}\">Quarterly report with a logo</a>"
        )),
        "{list}"
    );
    assert!(list.contains("<span class=\"attachment\""), "{list}");
    assert!(list.contains("2 messages, 2 unread"), "{list}");
    // The hostile subject and sender are text, never markup.
    assert!(
        list.contains("&lt;script&gt;parent.document.title"),
        "{list}"
    );
    assert!(!list.contains("<script>parent"), "{list}");
    assert!(list.contains("&lt;mallory@attacker.example&gt;"), "{list}");

    let search = text(&inbox.get("/?q=has%3Aattachment+from%3Acarol"));
    assert!(search.contains("1 matching"), "{search}");
    assert!(!search.contains("mallory"), "{search}");

    let page = text(&inbox.get(&format!("/message/{id}")));
    assert!(
        page.contains("<h2 id=\"subject\">Quarterly report with a logo</h2>"),
        "{page}"
    );
    assert!(
        page.contains("<iframe id=\"message-html\" title=\"The message's HTML\" sandbox=\"\""),
        "{page}"
    );
    assert!(page.contains("report.pdf</a>"), "{page}");
    // Opening it read it.
    assert_eq!(inbox.find("rich.1@test.example")["Read"], true);

    let text_view = text(&inbox.get(&format!("/message/{id}?view=text")));
    assert!(
        text_view.contains("<pre class=\"text\">The report is attached.\r\n</pre>"),
        "{text_view}"
    );
    let headers = text(&inbox.get(&format!("/message/{id}?view=headers")));
    assert!(
        headers.contains("<th scope=\"row\">Message-ID</th><td>&lt;rich.1@test.example&gt;</td>"),
        "{headers}"
    );
    let raw = text(&inbox.get(&format!("/message/{id}?view=raw")));
    assert!(
        raw.contains("Content-ID: &lt;logo@test.example&gt;"),
        "{raw}"
    );
    let parts = text(&inbox.get(&format!("/message/{id}?view=parts")));
    assert!(
        parts.contains("<td>image/png</td><td>logo.png</td><td>logo@test.example</td>"),
        "{parts}"
    );

    let (_, html) = inbox.curl(&["-D", "-"], &format!("/message/{id}/html"));
    let html = text(&html);
    let policy = response_header(&html, "content-security-policy");
    assert!(policy.starts_with("sandbox;"), "{policy}");
    assert!(policy.contains("img-src 'self' data:;"), "{policy}");
    assert!(
        html.contains(&format!("src='/api/v1/message/{id}/part/")),
        "cid: points at the part: {html}"
    );
    let (_, remote) = inbox.curl(&["-D", "-"], &format!("/message/{id}/html?remote=1"));
    assert!(
        response_header(&text(&remote), "content-security-policy")
            .contains("img-src 'self' data: http: https:")
    );

    // A part served from the inbox never runs as a page of the inbox.
    let hostile = inbox.find("hostile.1@test.example");
    let hostile_id = hostile["ID"].as_str().unwrap();
    let message = inbox.json(&format!("/api/v1/message/{hostile_id}"));
    let html_part = message["Parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ContentType"] == "text/html")
        .unwrap();
    let (_, part) = inbox.curl(
        &["-D", "-"],
        &format!("/api/v1/message/{hostile_id}/part/{}", html_part["PartID"]),
    );
    assert!(response_header(&text(&part), "content-security-policy").starts_with("sandbox;"));

    let (status, _) = inbox.curl(&["-X", "POST"], &format!("/message/{id}/delete"));
    assert_eq!(status, 303);
    assert_eq!(inbox.json("/api/v1/messages")["Total"], 1);
}

#[test]
fn web_inbox_over_tls() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let generated = tls::SelfSigned::generate(&[]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &generated.cert_pem).unwrap();
    std::fs::write(&key, &generated.key_pem).unwrap();
    let inbox = Inbox::start(
        &dir.path().join("maildir"),
        &[
            "--web-tls-cert",
            cert.to_str().unwrap(),
            "--web-tls-key",
            key.to_str().unwrap(),
        ],
    );
    inbox.smtplib("text", "");
    let url = format!("https://{}/api/v1/messages", inbox.web);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            cert.to_str().unwrap(),
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["Total"], 1);
    // Plain HTTP is not spoken there.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", &format!("http://{}/", inbox.web)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    drop(inbox);

    let inbox = Inbox::start(&dir.path().join("maildir"), &["--self-signed"]);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--insecure",
            &format!("https://{}/", inbox.web),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("<h1><a href=\"/\">netkit inbox</a></h1>"));
}

/// An htpasswd file made by Apache's own tool, bcrypt (`htpasswd -B`), the
/// password given on its stdin.
fn htpasswd_file(path: &std::path::Path, user: &str, password: &str) {
    let mut child = std::process::Command::new("htpasswd")
        .args(["-B", "-i", "-c"])
        .arg(path)
        .arg(user)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("htpasswd runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn web_inbox_asks_for_a_password() {
    if !tools() || !testkit::require("htpasswd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    htpasswd_file(&users, "ada", "s3cret pass");
    let inbox = Inbox::start(
        &dir.path().join("maildir"),
        &["--web-auth-file", users.to_str().unwrap()],
    );
    inbox.smtplib("text", "");

    // Pages and API alike: nothing without the header, nor with a wrong
    // password or an unknown user; each 401 carries the challenge.
    let refused = |args: &[&str], path: &str| {
        let (status, body) = inbox.curl(&[&["-D", "-"], args].concat(), path);
        assert_eq!(status, 401, "{path} {args:?}");
        let response = text(&body);
        assert!(
            response
                .to_ascii_lowercase()
                .contains("www-authenticate: basic realm=\"netkit mail inbox\""),
            "{response}"
        );
        assert!(!response.contains("Subject"), "{response}");
    };
    for path in [
        "/",
        "/api/v1/messages",
        "/api/v1/events",
        "/api/v1/message/x/raw",
    ] {
        refused(&[], path);
    }
    refused(&["-u", "ada:wrong"], "/api/v1/messages");
    refused(&["-u", "eve:s3cret pass"], "/");
    let (status, body) = inbox.curl(&["-u", "ada:s3cret pass"], "/api/v1/messages");
    assert_eq!(status, 200);
    let listing: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listing["Total"], 1);
    let (status, body) = inbox.curl(&["-u", "ada:s3cret pass"], "/");
    assert_eq!(status, 200);
    assert!(text(&body).contains("<h1><a href=\"/\">netkit inbox</a></h1>"));

    // netkit's own client, the password from its environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args([
            "web",
            "get",
            "--fail",
            "-u",
            "ada",
            &inbox.url("/api/v1/messages"),
        ])
        .env("NETKIT_HTTP_PASSWORD", "s3cret pass")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["Total"], 1);

    // Failures are throttled as `web serve` throttles them: after five
    // (counted from the last success), the client waits, told how long.
    for _ in 0..5 {
        refused(&["-u", "ada:wrong"], "/api/v1/messages");
    }
    let (status, body) = inbox.curl(&["-D", "-", "-u", "ada:s3cret pass"], "/api/v1/messages");
    assert_eq!(status, 429);
    assert!(text(&body).to_ascii_lowercase().contains("retry-after: "));
    drop(inbox);

    // A weak hash is refused at start-up, naming the file.
    std::fs::write(&users, "ada:$apr1$abcdefgh$0123456789abcdefghijkl\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args([
            "mail",
            "sink",
            "--bind",
            "127.0.0.1:0",
            "--web",
            "127.0.0.1:0",
        ])
        .arg("--maildir")
        .arg(dir.path().join("maildir"))
        .arg("--web-auth-file")
        .arg(&users)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--web-auth-file") && stderr.contains("too weak"),
        "{stderr}"
    );
}
