//! Replies that are not what a probe expects: duplicated, late, with a bad
//! checksum or changed data. A small Python responder (tests/ping/
//! responder.py) answers on a raw socket in a namespace whose kernel
//! ignores echo requests, misbehaving in the way each test asks.

#[path = "ping/netns.rs"]
mod netns;

use std::path::Path;

use netns::{Background, Netns, Run};

fn ready() -> bool {
    netns::available() && testkit::require("python3") && testkit::require("ping")
}

/// A namespace where only the responder, in `mode`, answers pings.
fn with_responder(mode: &str) -> (Netns, Background) {
    let netns = Netns::new();
    netns.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    netns.sysctl("net.ipv6.icmp.echo_ignore_all=1");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ping/responder.py");
    let mut command = netns.command("python3");
    command.arg(script).arg(mode);
    let responder = Background::start(command);
    responder.wait_for("ready");
    (netns, responder)
}

fn assert_same_as_iputils(netns: &Netns, args: &[&str]) -> Run {
    let ours = netns.netkit_ping(args);
    let theirs = netns.iputils_ping(args);
    assert_eq!(ours.shape(), theirs.shape(), "ping {args:?}");
    assert_eq!(ours.code, theirs.code);
    ours
}

#[test]
fn duplicates_are_marked_and_counted() {
    if !ready() {
        return;
    }
    let (netns, _responder) = with_responder("dup");
    for allowed in [false, true] {
        netns.datagram_sockets(allowed);
        for addr in ["127.0.0.1", "::1"] {
            let run = assert_same_as_iputils(&netns, &["-c", "3", "-i", "0.1", addr]);
            assert!(
                run.stdout
                    .contains(&format!("64 bytes from {addr}: icmp_seq=1 ttl=64 time=")),
                "{}",
                run.stdout
            );
            assert!(run.stdout.contains(" ms (DUP!)"), "{}", run.stdout);
            assert!(
                run.counts()
                    .contains(" received, +2 duplicates, 0% packet loss"),
                "{}",
                run.stdout
            );
        }
    }
}

#[test]
fn changed_data_is_shown_byte_by_byte() {
    if !ready() {
        return;
    }
    let (netns, _responder) = with_responder("baddata");
    for allowed in [false, true] {
        netns.datagram_sockets(allowed);
        for addr in ["127.0.0.1", "::1"] {
            let run = assert_same_as_iputils(&netns, &["-c", "1", "-s", "100", addr]);
            assert!(
                run.stdout.contains(
                    "\nwrong data byte #20 should be 0x14 but was 0xeb\n#16\t10 11 12 13 eb "
                ),
                "{}",
                run.stdout
            );
        }
    }
}

#[test]
fn bad_checksums_are_caught_on_raw_sockets() {
    if !ready() {
        return;
    }
    let (netns, _responder) = with_responder("badsum");
    netns.datagram_sockets(false);
    let run = netns.netkit_ping(&["-c", "2", "-i", "0.1", "-W", "0.5", "127.0.0.1"]);
    assert!(run.stderr.contains("raw ICMP socket"), "{}", run.stderr);
    assert_eq!(run.code, Some(1), "nothing valid came back");
    assert_eq!(
        run.stdout.matches(" (BAD CHECKSUM!)").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(
        run.counts()
            .starts_with("2 packets transmitted, 0 received, +2 corrupted, 100% packet loss"),
        "{}",
        run.stdout
    );
    // A datagram socket never sees them: the kernel drops bad checksums.
    netns.datagram_sockets(true);
    let run = netns.netkit_ping(&["-c", "2", "-i", "0.1", "-W", "0.5", "127.0.0.1"]);
    assert!(
        run.counts()
            .starts_with("2 packets transmitted, 0 received, 100% packet loss"),
        "{}",
        run.stdout
    );
}

#[test]
fn replies_after_the_timeout_are_late_not_received() {
    if !ready() {
        return;
    }
    let (netns, _responder) = with_responder("delay:0.25");
    for allowed in [false, true] {
        netns.datagram_sockets(allowed);
        for addr in ["127.0.0.1", "::1"] {
            let run = netns.netkit_ping(&["-c", "4", "-i", "0.2", "-W", "0.1", addr]);
            assert_eq!(run.code, Some(1), "no reply in time: {}", run.stdout);
            let counts = run.counts();
            assert!(
                counts.starts_with("4 packets transmitted, 0 received, +"),
                "{}",
                run.stdout
            );
            let late: usize = counts
                .split(", +")
                .find_map(|part| part.split_once(" late,").map(|(number, _)| number))
                .and_then(|number| number.parse().ok())
                .unwrap_or_else(|| panic!("no late count in {counts}"));
            assert!(late >= 2, "{counts}");
            assert_eq!(
                run.stdout.matches(" (LATE!)").count(),
                late,
                "{}",
                run.stdout
            );
            // A late reply shows its whole round trip, which the
            // responder's delay bounds from below (a floor, not a timing
            // window: load only makes it longer).
            for line in run.stdout.lines().filter(|line| line.ends_with(" (LATE!)")) {
                let rtt: f64 = line
                    .split_once(" time=")
                    .and_then(|(_, rest)| rest.split_once(" ms"))
                    .and_then(|(number, _)| number.parse().ok())
                    .unwrap_or_else(|| panic!("no time in {line}"));
                assert!(rtt >= 250.0, "{line}");
            }
        }
    }
    // With a longer timeout the same replies are received.
    let run = netns.netkit_ping(&["-c", "2", "-i", "0.1", "-W", "1", "127.0.0.1"]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.counts()
            .starts_with("2 packets transmitted, 2 received, 0% packet loss"),
        "{}",
        run.stdout
    );
}
