//! `netkit chat serve` refuses one address's connections past its limits
//! with an `error` frame (`too_many_connections`), then closes.

#[path = "limits/support.rs"]
mod support;

use serde_json::Value;
use support::{Scratch, scenario, start, text};

fn chat(scratch: &Scratch, extra: &[&str]) -> testkit::Server {
    let db = scratch.path("chat.sqlite3");
    let mut args = vec!["--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(&["chat", "serve"], "--bind", &args)
}

fn frame(line: &Value) -> Value {
    serde_json::from_str(text(line)).unwrap_or_else(|err| panic!("{err}: {line}"))
}

fn assert_refused(seen: &Value) {
    for line in seen["held"].as_array().unwrap() {
        assert_eq!(frame(line)["type"], "hello", "{seen}");
    }
    let refused = frame(&seen["refused"]);
    assert_eq!(refused["type"], "error", "{seen}");
    assert_eq!(refused["code"], "too_many_connections", "{seen}");
    assert_eq!(seen["refused_closed"], true, "{seen}");
    assert_eq!(frame(&seen["other"])["type"], "hello", "{seen}");
}

#[test]
fn one_address_is_refused_past_its_limit_with_an_error_frame() {
    let scratch = Scratch::new("chat-per-client");
    let server = chat(&scratch, &["--max-connections-per-client", "3"]);
    assert_refused(&scenario("chat-per-client", server.addr(), 3, &[]));
}

#[test]
fn one_address_is_refused_past_its_connection_rate_with_an_error_frame() {
    let scratch = Scratch::new("chat-rate");
    let server = chat(&scratch, &["--max-connection-rate", "3"]);
    assert_refused(&scenario("chat-rate", server.addr(), 3, &[]));
}
