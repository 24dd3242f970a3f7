//! `netkit upper serve` closes one client's connections past its limit
//! (the protocol has no words for a refusal).

#[path = "limits/support.rs"]
mod support;

use support::{scenario, start, text};

#[test]
fn one_client_is_closed_past_its_limit() {
    let server = start(
        &["upper", "serve"],
        "--tcp",
        &["--max-connections-per-client", "2"],
    );
    let seen = scenario("upper-per-client", server.addr(), 2, &[]);
    for line in seen["held"].as_array().unwrap() {
        assert_eq!(text(line), "HELLO\n", "{seen}");
    }
    assert_eq!(text(&seen["refused"]), "", "{seen}");
    assert_eq!(seen["refused_closed"], true, "{seen}");
    assert_eq!(text(&seen["other"]), "HELLO\n", "{seen}");
}
