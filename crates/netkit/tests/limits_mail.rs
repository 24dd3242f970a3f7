//! `netkit mail sink` under connection pressure: idle sessions give way to
//! new senders (told 421 first), and one client's connections and new
//! connections per minute are bounded, refused with `421 4.7.0`.

#[path = "limits/support.rs"]
mod support;

use serde_json::Value;
use support::{Scratch, scenario, start, text};

fn sink(scratch: &Scratch, extra: &[&str]) -> testkit::Server {
    let maildir = scratch.path("maildir");
    let mut args = vec![
        "--no-tls",
        "--web",
        "off",
        "--maildir",
        maildir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    start(&["mail", "sink"], "--bind", &args)
}

/// The held sessions were greeted, the one past the limit was told 421
/// and closed, and another client was greeted.
fn assert_refused(seen: &Value) {
    for greeting in seen["held"].as_array().unwrap() {
        assert!(text(greeting).starts_with("220 "), "{seen}");
    }
    assert!(text(&seen["refused"]).starts_with("421 4.7.0 "), "{seen}");
    assert_eq!(seen["refused_closed"], true, "{seen}");
    assert!(text(&seen["other"]).starts_with("220 "), "{seen}");
}

#[test]
fn idle_sessions_make_room_for_a_new_sender() {
    let scratch = Scratch::new("sink-idle");
    let server = sink(&scratch, &["--max-connections", "4"]);
    let seen = scenario("smtp-idle", server.addr(), 4, &[]);
    assert!(text(&seen["greeting"]).starts_with("220 "), "{seen}");
    assert!(seen["elapsed"].as_f64().unwrap() < 1.0, "{seen}");
    assert!(
        text(&seen["oldest_told"]).starts_with("421 4.3.2 Too many connections"),
        "{seen}"
    );
    assert_eq!(seen["oldest_closed"], true, "{seen}");
}

#[test]
fn one_client_is_refused_past_its_limit_with_421() {
    let scratch = Scratch::new("sink-per-client");
    let server = sink(&scratch, &["--max-connections-per-client", "3"]);
    assert_refused(&scenario("smtp-per-client", server.addr(), 3, &[]));
}

#[test]
fn one_client_is_refused_past_its_connection_rate_with_421() {
    let scratch = Scratch::new("sink-rate");
    let server = sink(&scratch, &["--max-connection-rate", "3"]);
    assert_refused(&scenario("smtp-rate", server.addr(), 3, &[]));
}
