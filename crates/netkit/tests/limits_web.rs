//! `netkit web serve` under connection pressure: idle keep-alive
//! connections give way to new clients, and one client's connections are
//! bounded, refused with 503 and `Retry-After`.

#[path = "limits/support.rs"]
mod support;

use support::{assert_idle_made_room, assert_refused_with_503, scenario, start};

#[test]
fn idle_keep_alive_connections_make_room_for_a_new_client() {
    // Idle connections would be closed after the 10 s header timeout
    // anyway: with 60 s, the oldest is closed only to make room.
    let server = start(
        &["web", "serve", "--quiet"],
        "--bind",
        &["--max-connections", "4", "--header-timeout", "60s"],
    );
    let seen = scenario("http-idle", server.addr(), 4, &["/"]);
    assert_idle_made_room(&seen);
}

#[test]
fn one_client_is_refused_past_its_limit_with_503() {
    let server = start(
        &["web", "serve", "--quiet"],
        "--bind",
        &["--max-connections-per-client", "3"],
    );
    let seen = scenario("http-per-client", server.addr(), 3, &["/"]);
    assert_refused_with_503(&seen);
}

#[test]
fn serve_help_documents_the_limits() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args(["web", "serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--max-connections <N>",
        "--max-connections-per-client <N>",
        "--max-connection-rate <PER_MINUTE>",
        "[default: 256]",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}
