//! `netkit proxy serve` under connection pressure: idle keep-alive
//! connections give way to new clients, and one client's connections are
//! bounded, refused with 503 and `Retry-After`. The requests ask for the
//! proxy's own statistics page, so no origin is involved.

#[path = "limits/support.rs"]
mod support;

use support::{Scratch, assert_idle_made_room, assert_refused_with_503, scenario, start};

/// The proxy's own statistics page, answered without an origin.
const OWN_PAGE: &str = "http://netkit.proxy/stats";

fn proxy(scratch: &Scratch, extra: &[&str]) -> testkit::Server {
    let cache = scratch.path("cache");
    let mut args = vec!["--cache-dir", cache.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(&["proxy", "serve"], "--bind", &args)
}

#[test]
fn idle_keep_alive_connections_make_room_for_a_new_client() {
    let scratch = Scratch::new("proxy-idle");
    let server = proxy(&scratch, &["--max-connections", "4"]);
    let seen = scenario("http-idle", server.addr(), 4, &[OWN_PAGE]);
    assert_idle_made_room(&seen);
}

#[test]
fn one_client_is_refused_past_its_limit_with_503() {
    let scratch = Scratch::new("proxy-per-client");
    let server = proxy(&scratch, &["--max-connections-per-client", "3"]);
    let seen = scenario("http-per-client", server.addr(), 3, &[OWN_PAGE]);
    assert_refused_with_503(&seen);
}
