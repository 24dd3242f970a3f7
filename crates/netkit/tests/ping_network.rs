//! `netkit ping` across a routed network built for each test: host A,
//! router R and host B in their own namespaces, joined by veth pairs. The
//! kernel's own ICMP produces the errors (TTL exceeded, REJECT rules,
//! fragmentation needed), iptables the loss; iputils ping runs on the same
//! setup for comparison.

#[path = "ping/netns.rs"]
mod netns;

use netns::{B4, B6, NOBODY4, NOBODY6, ROUTER4, ROUTER6, Routed, Run};

fn ready() -> bool {
    netns::available() && testkit::require("ping") && testkit::require("iptables")
}

/// Runs netkit and iputils with `args` on host A, for raw and for datagram
/// sockets, and checks both print the same thing (numbers aside) and exit
/// alike. Returns netkit's runs.
fn side_by_side(net: &Routed, args: &[&str]) -> Vec<Run> {
    let mut runs = Vec::new();
    for allowed in [false, true] {
        net.a.datagram_sockets(allowed);
        let ours = net.a.netkit_ping(args);
        // Errors reach a datagram socket through its error queue and a raw
        // socket as ICMP messages: make sure each path is the one taken.
        let kind = if allowed { "datagram" } else { "raw" };
        assert!(
            ours.stderr
                .contains(&format!("probes go over a {kind} ICMP socket")),
            "{}",
            ours.stderr
        );
        let theirs = net.a.iputils_ping(args);
        assert_eq!(
            ours.shape(),
            theirs.shape(),
            "ping {args:?} (datagram sockets allowed: {allowed})\n{}",
            ours.stderr
        );
        assert_eq!(ours.code, theirs.code, "ping {args:?}");
        runs.push(ours);
    }
    runs
}

#[test]
fn routed_replies() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    for target in [B4, B6] {
        for run in side_by_side(&net, &["-c", "2", "-i", "0.1", "-W", "1", target]) {
            assert_eq!(run.code, Some(0));
            // One hop: the reply's TTL is one less than B sent.
            assert!(run.stdout.contains(" ttl=63 time="), "{}", run.stdout);
        }
    }
}

#[test]
fn ttl_1_is_exceeded_at_the_router() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    let cases = [
        (
            B4,
            format!("From {ROUTER4} icmp_seq=1 Time to live exceeded"),
        ),
        (
            B6,
            format!("From {ROUTER6} icmp_seq=1 Time exceeded: Hop limit"),
        ),
    ];
    for (target, line) in cases {
        for run in side_by_side(
            &net,
            &["-t", "1", "-c", "2", "-i", "0.1", "-W", "1", target],
        ) {
            assert_eq!(run.code, Some(1));
            assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
            assert!(
                run.counts()
                    .starts_with("2 packets transmitted, 0 received, +2 errors, 100% packet loss"),
                "{}",
                run.stdout
            );
        }
    }
}

#[test]
fn reject_rules_are_decoded() {
    if !ready() || !testkit::require("ip6tables") {
        return;
    }
    let net = Routed::new();
    net.router.iptables(
        "iptables",
        &format!(
            "-A FORWARD -d {B4} -p icmp --icmp-type echo-request \
             -j REJECT --reject-with icmp-host-unreachable"
        ),
    );
    net.router.iptables(
        "ip6tables",
        &format!(
            "-A FORWARD -d {B6} -p icmpv6 --icmpv6-type echo-request \
             -j REJECT --reject-with icmp6-adm-prohibited"
        ),
    );
    let cases = [
        (
            B4,
            format!("From {ROUTER4} icmp_seq=2 Destination Host Unreachable"),
        ),
        (
            B6,
            format!(
                "From {ROUTER6} icmp_seq=2 Destination unreachable: Administratively prohibited"
            ),
        ),
    ];
    for (target, line) in cases {
        for run in side_by_side(&net, &["-c", "3", "-i", "0.1", "-W", "1", target]) {
            assert_eq!(run.code, Some(1));
            assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
            assert!(run.counts().contains(", +3 errors, 100% packet loss"));
        }
    }
    // The errors come back as JSON too, with their ICMP type and code.
    let run = net.a.netkit_ping(&["--json", "-c", "1", "-W", "1", B4]);
    let error: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["from"], ROUTER4);
    assert_eq!(error["icmp_type"], 3);
    assert_eq!(error["icmp_code"], 1);
    assert_eq!(error["message"], "Destination Host Unreachable");
}

#[test]
fn path_mtu_errors_carry_the_mtu() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    net.router.ip(&["link", "set", "vrb", "mtu", "1400"]);
    net.b.ip(&["link", "set", "vb", "mtu", "1400"]);
    let cases = [
        (
            B4,
            format!("From {ROUTER4} icmp_seq=1 Frag needed and DF set (mtu = 1400)"),
        ),
        (
            B6,
            format!("From {ROUTER6} icmp_seq=1 Packet too big: mtu=1400"),
        ),
    ];
    for allowed in [false, true] {
        net.a.datagram_sockets(allowed);
        for (target, line) in &cases {
            // The first probe teaches A the path MTU; later ones fit.
            net.a.ip(&["route", "flush", "cache"]);
            net.a.ip(&["-6", "route", "flush", "cache"]);
            let run = net
                .a
                .netkit_ping(&["-s", "1450", "-c", "3", "-i", "0.1", "-W", "1", target]);
            assert!(run.stdout.contains(line.as_str()), "{line}\n{}", run.stdout);
            assert!(
                run.counts().starts_with(
                    "3 packets transmitted, 2 received, +1 errors, 33.3333% packet loss"
                ),
                "{}",
                run.stdout
            );
            assert!(run.stdout.contains("1458 bytes from "), "{}", run.stdout);
        }
    }
}

#[test]
fn random_drops_show_as_loss() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    net.b.iptables(
        "iptables",
        "-A INPUT -p icmp --icmp-type echo-request -m statistic --mode random --probability 0.5 -j DROP",
    );
    let probes = 30;
    let run = net
        .a
        .netkit_ping(&["-c", &probes.to_string(), "-i", "0.01", "-W", "0.5", B4]);
    let counts = run.counts();
    let words: Vec<&str> = counts.split_whitespace().collect();
    let sent: u32 = words[0].parse().unwrap();
    let received: u32 = words[3].parse().unwrap();
    assert_eq!(sent, probes);
    // Each probe is dropped with probability 1/2: all or none getting
    // through happens about once in a billion runs.
    assert!(received > 0 && received < probes, "{counts}");
    let loss = f64::from(probes - received) * 100.0 / f64::from(probes);
    let printed: f64 = words[5].trim_end_matches('%').parse().unwrap();
    assert!((printed - loss).abs() < 1e-3, "{counts}");
    assert_eq!(run.code, Some(0), "some replies came");
    assert_eq!(
        run.stdout.matches(" bytes from ").count(),
        received as usize,
        "{}",
        run.stdout
    );

    // iputils on the same lossy path prints the same summary, numbers aside.
    let args = ["-q", "-c", "20", "-i", "0.01", "-W", "0.5", B4];
    let blur = |run: &Run| {
        let mut text = String::new();
        for c in run.stdout.chars() {
            if c.is_ascii_digit() || c == '.' {
                if !text.ends_with('#') {
                    text.push('#');
                }
            } else {
                text.push(c);
            }
        }
        text
    };
    let (ours, theirs) = (net.a.netkit_ping(&args), net.a.iputils_ping(&args));
    assert_eq!(blur(&ours), blur(&theirs));
}

#[test]
fn a_host_that_does_not_exist_is_100_percent_loss() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    for target in [NOBODY4, NOBODY6] {
        for run in side_by_side(&net, &["-c", "3", "-i", "0.1", "-W", "0.3", "-O", target]) {
            assert_eq!(run.code, Some(1));
            assert!(
                run.counts()
                    .starts_with("3 packets transmitted, 0 received, 100% packet loss"),
                "{}",
                run.stdout
            );
            assert!(run.stdout.contains("no answer yet for icmp_seq=2"));
        }
    }
    // With a deadline, as in iputils: probes keep going until it passes.
    let run = net.a.netkit_ping(&["-w", "1", "-i", "0.2", NOBODY4]);
    assert_eq!(run.code, Some(1));
    let counts = run.counts();
    let (sent, rest) = counts.split_once(" packets transmitted, ").unwrap();
    let sent: u32 = sent.parse().unwrap();
    // More than one probe, at most one per interval (0, 0.2, ..., 1.0 s).
    assert!((2..=6).contains(&sent), "{counts}");
    assert!(rest.starts_with("0 received, 100% packet loss"), "{counts}");
}

#[test]
fn many_hosts_mixed_fates() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    let run = net.a.netkit_ping(&[
        "-c", "2", "-i", "0.1", "-W", "0.5", B4, B6, NOBODY4, ROUTER4,
    ]);
    assert_eq!(run.code, Some(1), "one host never answers");
    let table: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("HOST"))
        .skip(1)
        .take(4)
        .map(|line| line.split_whitespace().collect())
        .collect();
    let fates: Vec<(&str, &str, &str)> = table.iter().map(|row| (row[0], row[3], row[4])).collect();
    assert_eq!(
        fates,
        [
            (B4, "2", "0%"),
            (B6, "2", "0%"),
            (NOBODY4, "0", "100%"),
            (ROUTER4, "2", "0%")
        ],
        "{}",
        run.stdout
    );
    assert_eq!(table[2][5], "-", "no round trips for a silent host");
}

#[test]
fn link_local_addresses_carry_their_interface() {
    if !ready() {
        return;
    }
    let net = Routed::new();
    let out = net
        .router
        .command("ip")
        .args(["-6", "-o", "addr", "show", "dev", "vra", "scope", "link"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let link_local = listing
        .split_whitespace()
        .find_map(|word| {
            word.strip_suffix("/64")
                .filter(|addr| addr.starts_with("fe80:"))
        })
        .unwrap_or_else(|| panic!("no link-local address in {listing}"))
        .to_owned();
    let scoped = format!("{link_local}%va");
    let runs = side_by_side(&net, &["-c", "2", "-i", "0.1", "-W", "1", &scoped]);
    for run in runs {
        assert!(
            run.stdout
                .contains(&format!("64 bytes from {scoped}: icmp_seq=2 ")),
            "{}",
            run.stdout
        );
    }
    let run = net.a.netkit_ping(&["-c", "1", &link_local]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("a link-local address needs its interface"),
        "{}",
        run.stderr
    );
}
