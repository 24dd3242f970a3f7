//! `netkit mail send` against scripted_server.py, a python server that
//! answers what the test tells it to: the RFC 5321 edges no friendly server
//! shows (EHLO refused, replies to a pipelined batch, 421, odd bytes).

#[path = "mail/support.rs"]
mod support;

use support::*;

/// The exit code of each stage a scripted server can make fail, with the
/// server's text shown, and QUIT said where the connection still stands.
#[test]
fn each_stage_has_its_exit_code() {
    if !testkit::require("python3") {
        return;
    }
    let run = |script: serde_json::Value, extra: &[&str]| {
        let server = scripted(script);
        let addr = server.addr().to_string();
        let mut args = vec!["--server", &addr, "--from", "a@example.org", "--body", "x"];
        args.extend(extra);
        let out = send(&args, &[], b"");
        (out, commands(&server))
    };
    let to = ["--to", "b@example.org"];

    // EHLO refused with any of the replies RFC 5321 §4.1.4 names: HELO
    // instead (§3.2), and the message goes.
    for code in [500, 501, 502, 550] {
        let refusal = format!("{code} EHLO? never heard of it\r\n");
        let (out, sent) = run(serde_json::json!({ "EHLO": refusal }), &to);
        assert!(out.status.success(), "{code}: {}", text(&out.stderr));
        assert_eq!(
            sent[..3],
            [
                "EHLO client.test",
                "HELO client.test",
                "MAIL FROM:<a@example.org>"
            ]
        );
        assert!(text(&out.stdout).contains(" -> HELO client.test"));
    }

    // ... and both refused: the EHLO stage.
    let (out, sent) = run(
        serde_json::json!({"EHLO": "500 no\r\n", "HELO": "501 5.5.4 not you either\r\n"}),
        &to,
    );
    assert_eq!(out.status.code(), Some(22), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("501 5.5.4 not you either"));
    assert_eq!(sent.last().unwrap(), "QUIT");

    // STARTTLS offered, then refused: the TLS stage, never plaintext.
    let (out, sent) = run(
        serde_json::json!({
            "EHLO": "250-scripted.test\r\n250 STARTTLS\r\n",
            "STARTTLS": "454 4.7.0 TLS not available now\r\n",
        }),
        &to,
    );
    assert_eq!(out.status.code(), Some(29), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("454 4.7.0 TLS not available now"));
    assert_eq!(sent[1..], ["STARTTLS", "QUIT"]);

    let (out, _) = run(
        serde_json::json!({"MAIL": "553 5.1.8 sender refused\r\n"}),
        &to,
    );
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("553 5.1.8 sender refused"));

    let (out, sent) = run(
        serde_json::json!({"DATA": "554 5.5.1 no data today\r\n"}),
        &to,
    );
    assert_eq!(out.status.code(), Some(25), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("*** DATA failed"));
    assert!(text(&out.stderr).contains("554 5.5.1 no data today"));
    assert_eq!(sent.last().unwrap(), "QUIT");

    let (out, _) = run(serde_json::json!({"END": "552 5.3.4 too fat\r\n"}), &to);
    assert_eq!(out.status.code(), Some(26), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("552 5.3.4 too fat"));

    // A server going away (421) in answer to a pipelined MAIL: the MAIL
    // stage failed, whatever became of the RCPTs behind it.
    let (out, _) = run(
        serde_json::json!({
            "EHLO": "250-scripted.test\r\n250 PIPELINING\r\n",
            "MAIL": "421 4.3.2 shutting down\r\n",
        }),
        &["--to", "b@example.org", "--to", "c@example.org"],
    );
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("421 4.3.2 shutting down"),
        "{}",
        text(&out.stderr)
    );
}

/// With PIPELINING, MAIL and every RCPT go in one write and the replies
/// are matched to them in order: the refused one is the one reported.
#[test]
fn pipelined_replies_are_matched_in_order() {
    if !testkit::require("python3") {
        return;
    }
    let server = scripted(serde_json::json!({
        "EHLO": "250-scripted.test\r\n250-PIPELINING\r\n250 SIZE 100000\r\n",
        "RCPT <two@example.org>": "550 5.1.1 no such user two\r\n",
    }));
    let addr = server.addr().to_string();
    let out = send(
        &[
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "one@example.org",
            "--to",
            "two@example.org",
            "--to",
            "three@example.org",
            "--body",
            "x",
        ],
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let mail = lines
        .iter()
        .position(|l| l.starts_with(" -> MAIL FROM:<a@example.org> SIZE="))
        .unwrap();
    assert_eq!(
        lines[mail + 1..mail + 8],
        [
            " -> RCPT TO:<one@example.org>",
            " -> RCPT TO:<two@example.org>",
            " -> RCPT TO:<three@example.org>",
            "<-  250 OK",
            "<-  250 OK",
            "<-  550 5.1.1 no such user two",
            "<-  250 OK",
        ],
        "{stdout}"
    );
    assert!(
        stderr.contains("not delivered to two@example.org: 550 5.1.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("one@example.org") && !stderr.contains("three@example.org"));
    assert!(
        stdout.contains("delivered to one@example.org, three@example.org"),
        "{stdout}"
    );
}

/// A server's reply cannot drive the user's terminal: control characters
/// are shown escaped.
#[test]
fn server_text_is_shown_without_control_characters() {
    if !testkit::require("python3") {
        return;
    }
    let server = scripted(serde_json::json!({
        "greeting": "220 evil.test \u{1b}]0;owned\u{7}\u{1b}[2J\r\n",
        "MAIL": "550 5.7.1 \u{1b}[31mred\r\n",
    }));
    let addr = server.addr().to_string();
    let out = send(
        &[
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body",
            "x",
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(23));
    for shown in [text(&out.stdout), text(&out.stderr)] {
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown:?}"
        );
    }
    assert!(text(&out.stdout).contains("<-  220 evil.test \\u{1b}]0;owned\\u{7}"));
    assert!(text(&out.stderr).contains("550 5.7.1 \\u{1b}[31mred"));
}

/// Without --ehlo, EHLO gives this machine's host name (RFC 5321 §4.1.1.1).
#[test]
fn ehlo_names_this_host_by_default() {
    if !testkit::require("python3") {
        return;
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let hostname = hostname.trim();
    let usable = !hostname.is_empty()
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let expected = if usable { hostname } else { "[127.0.0.1]" };
    let server = scripted(serde_json::json!({}));
    let out = netkit()
        .args(["mail", "send", "--server", &server.addr().to_string()])
        .args(["--from", "a@example.org", "--to", "b@example.org"])
        .args(["--body", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(commands(&server)[0], format!("EHLO {expected}"));
}
