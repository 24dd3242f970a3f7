//! `netkit ping` end to end on loopback: command-line errors, raw and
//! datagram sockets side by side with iputils ping, JSON, many hosts at
//! once, the plot, SIGINT, and the message when no socket is allowed.
//!
//! Every test that sends ICMP runs in a network namespace of its own, where
//! `net.ipv4.ping_group_range` can be changed without touching the host.

#[path = "ping/netns.rs"]
mod netns;

use std::process::{Command, Output};
use std::time::Duration;

use netns::{Background, NETKIT, Netns, normalize};

fn netkit(args: &[&str]) -> Output {
    Command::new(NETKIT)
        .arg("ping")
        .args(args)
        .output()
        .expect("netkit runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Root (for namespaces and raw sockets) and iputils ping to compare with.
fn ready() -> bool {
    netns::available() && testkit::require("ping")
}

#[test]
fn usage_errors_exit_2() {
    let cases: [(&[&str], &str); 11] = [
        (&[], "HOST"),
        (&["-c", "0", "127.0.0.1"], "-c"),
        (&["-W", "0", "127.0.0.1"], "longer than zero"),
        (&["-t", "0", "127.0.0.1"], "-t"),
        (
            &["-4", "::1"],
            "::1: Address family for hostname not supported",
        ),
        (&["-4", "-6", "localhost"], "cannot be used with"),
        (&["no-such-host.invalid"], "no-such-host.invalid: "),
        (
            &["-s", "70000", "127.0.0.1"],
            "packet size 70000 is too large",
        ),
        // -w is whole seconds, as iputils reads it.
        (&["-w", "0.5", "127.0.0.1"], "invalid argument: '0.5'"),
        (&["-w", "1s", "127.0.0.1"], "invalid argument: '1s'"),
        (
            &["-w", "2147483648", "127.0.0.1"],
            "out of range: 0 <= value",
        ),
    ];
    for (args, message) in cases {
        let out = netkit(args);
        assert_eq!(out.status.code(), Some(2), "netkit ping {args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {:?}",
            text(&out.stdout)
        );
    }
}

#[test]
fn help_documents_the_options() {
    let out = netkit(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "-c, --count <COUNT>",
        "-i, --interval <INTERVAL>",
        "-W, --timeout <TIMEOUT>",
        "-w, --deadline <DEADLINE>",
        "-s <SIZE>",
        "-t <TTL>",
        "-q, --quiet",
        "-D",
        "-n",
        "-O",
        "-4",
        "-6",
        "--json",
        "--plot",
        "ping_group_range",
        "Examples:",
    ] {
        assert!(help.contains(flag), "--help documents {flag}:\n{help}");
    }
}

#[test]
fn normalize_keeps_counts_and_format() {
    let text = "[1795265134.137745] 64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.012 ms\n\
                3 packets transmitted, 3 received, 0% packet loss, time 406ms\n\
                rtt min/avg/max/mdev = 0.012/0.031/0.042/0.013 ms";
    assert_eq!(
        normalize(text),
        "[#] 64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=# ms\n\
         3 packets transmitted, 3 received, 0% packet loss, time #ms\n\
         rtt min/avg/max/mdev = # ms"
    );
}

#[test]
fn loopback_over_raw_and_datagram_sockets() {
    if !ready() {
        return;
    }
    let netns = Netns::new();
    for (allowed, kind) in [(false, "raw"), (true, "datagram")] {
        netns.datagram_sockets(allowed);
        for (addr, family) in [("127.0.0.1", "IPv4"), ("::1", "IPv6")] {
            let args = ["-c", "3", "-i", "0.1", "-W", "1", addr];
            let ours = netns.netkit_ping(&args);
            assert_eq!(ours.code, Some(0), "{ours:?}");
            assert!(
                ours.stderr
                    .contains(&format!("{family} probes go over a {kind} ICMP socket")),
                "{}",
                ours.stderr
            );
            assert!(
                ours.counts()
                    .starts_with("3 packets transmitted, 3 received, 0% packet loss, time "),
                "{}",
                ours.stdout
            );
            let theirs = netns.iputils_ping(&args);
            assert_eq!(ours.shape(), theirs.shape(), "{kind} {addr}");
            assert_eq!(ours.code, theirs.code);
        }
    }
}

#[test]
fn options_print_like_iputils() {
    if !ready() {
        return;
    }
    let netns = Netns::new();
    let cases: [&[&str]; 10] = [
        &["-q", "-c", "2", "-i", "0.1", "127.0.0.1"],
        // With a deadline, -c counts replies; without -c, probes go on.
        &["-w", "2", "-c", "3", "-i", "0.1", "127.0.0.1"],
        // Probes at 0, 0.8 and 1.6 s: 0.4 s either side of the deadline,
        // so a loaded machine cannot make the two tools count differently.
        &["-q", "-w", "2", "-i", "0.8", "::1"],
        &["-D", "-c", "2", "-i", "0.1", "::1"],
        &["-s", "100", "-c", "2", "-i", "0.1", "127.0.0.1"],
        &["-s", "8", "-c", "1", "127.0.0.1"],
        &["-s", "0", "-c", "1", "::1"],
        &["-t", "5", "-c", "1", "::1"],
        &["-c", "2", "-i", "0.1", "localhost"],
        &["-n", "-c", "1", "localhost"],
    ];
    for args in cases {
        let ours = netns.netkit_ping(args);
        let theirs = netns.iputils_ping(args);
        assert_eq!(ours.shape(), theirs.shape(), "ping {args:?}");
        assert_eq!(ours.code, theirs.code, "ping {args:?}");
    }
}

#[test]
fn errors_read_like_iputils() {
    if !ready() {
        return;
    }
    let netns = Netns::new();
    let cases: [(&[&str], &str); 2] = [
        // Too long for IPv4 once the IP header is added: root may try, and
        // each probe is a local error, counted.
        (
            &["-s", "65508", "-c", "2", "-i", "0.1", "127.0.0.1"],
            "local error: message too long, mtu=65535",
        ),
        // The name exists, but not as IPv6.
        (
            &["-6", "-c", "1", "localhost"],
            "localhost: Address family for hostname not supported",
        ),
    ];
    for (args, message) in cases {
        let ours = netns.netkit_ping(args);
        let theirs = netns.iputils_ping(args);
        assert_eq!(ours.shape(), theirs.shape(), "ping {args:?}");
        assert_eq!(ours.code, theirs.code, "ping {args:?}");
        let lines = |stderr: &str, tool: &str| -> Vec<String> {
            stderr
                .lines()
                .filter_map(|line| line.strip_prefix(tool))
                .map(str::to_owned)
                .collect()
        };
        let expected = lines(&theirs.stderr, "ping: ");
        assert!(expected.iter().any(|line| line == message), "{theirs:?}");
        assert_eq!(lines(&ours.stderr, "netkit: "), expected, "ping {args:?}");
    }
}

#[test]
fn json_has_one_object_per_reply_and_a_summary() {
    if !netns::available() {
        return;
    }
    let netns = Netns::new();
    let run = netns.netkit_ping(&["--json", "-c", "2", "-i", "0.1", "127.0.0.1"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let objects: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 3, "{}", run.stdout);
    for (object, seq) in objects[..2].iter().zip(1..) {
        assert_eq!(object["type"], "reply");
        assert_eq!(object["status"], "reply");
        assert_eq!(object["seq"], seq);
        assert_eq!(object["from"], "127.0.0.1");
        assert_eq!(object["bytes"], 64);
        assert_eq!(object["ttl"], 64);
        assert!(object["rtt_ms"].as_f64().unwrap() > 0.0);
    }
    let summary = &objects[2];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["transmitted"], 2);
    assert_eq!(summary["received"], 2);
    assert_eq!(summary["loss_percent"], 0.0);
    let rtt = &summary["rtt_ms"];
    assert!(rtt["min"].as_f64().unwrap() <= rtt["max"].as_f64().unwrap());
}

#[test]
fn many_hosts_at_once_with_a_table() {
    if !netns::available() {
        return;
    }
    let netns = Netns::new();
    let list = std::env::temp_dir().join(format!("nkping-hosts-{}.txt", std::process::id()));
    let mut hosts: String = (1..=200).map(|n| format!("127.0.0.{n}\n")).collect();
    hosts.push_str("# loopback, both families\n::1\n");
    std::fs::write(&list, hosts).unwrap();
    let run = netns.netkit_ping(&[
        "-q",
        "-c",
        "1",
        "-i",
        "0",
        "-W",
        "2",
        "--file",
        list.to_str().unwrap(),
    ]);
    std::fs::remove_file(&list).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let blocks = run.stdout.matches(" ping statistics ---").count();
    assert_eq!(blocks, 201);
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("HOST"))
        .skip(1)
        .take_while(|line| !line.starts_with('('))
        .collect();
    assert_eq!(rows.len(), 201, "{}", run.stdout);
    for row in rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[2..5], ["1", "1", "0%"], "{row}");
    }

    // Each host has its own sequence numbers.
    let run = netns.netkit_ping(&["-c", "2", "-i", "0.1", "127.0.0.1", "127.0.0.2", "::1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for addr in ["127.0.0.1", "127.0.0.2", "::1"] {
        for seq in [1, 2] {
            let line = format!("64 bytes from {addr}: icmp_seq={seq} ");
            assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
        }
    }
}

#[test]
fn plot_marks_replies_and_losses() {
    if !netns::available() {
        return;
    }
    let netns = Netns::new();
    netns.iptables(
        "iptables",
        "-A INPUT -d 127.0.0.2 -p icmp --icmp-type echo-request -j DROP",
    );
    let svg = std::env::temp_dir().join(format!("nkping-plot-{}.svg", std::process::id()));
    let run = netns.netkit_ping(&[
        "-c",
        "3",
        "-i",
        "0.05",
        "-W",
        "0.3",
        "--plot",
        svg.to_str().unwrap(),
        "127.0.0.1",
        "::1",
        "127.0.0.2",
    ]);
    assert_eq!(run.code, Some(1), "127.0.0.2 never answers: {run:?}");
    let chart = std::fs::read_to_string(&svg).expect("the plot is written");
    std::fs::remove_file(&svg).unwrap();
    assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(chart.trim_end().ends_with("</svg>"));
    assert_eq!(chart.matches("<polyline").count(), 2, "two hosts answered");
    assert_eq!(chart.matches("<circle").count(), 6, "three replies each");
    assert_eq!(
        chart.matches("l8 8 m0 -8 l-8 8").count(),
        3 + 1,
        "three losses and the legend"
    );
    for title in ["127.0.0.1", "::1", "127.0.0.2"] {
        assert!(
            chart.contains(&format!(">{title}</text>")),
            "legend lists {title}"
        );
    }
}

#[test]
fn sigquit_reports_and_sigint_ends_with_the_statistics() {
    if !netns::available() {
        return;
    }
    let netns = Netns::new();
    let mut command = netns.command(NETKIT);
    command.args(["ping", "-i", "0.1", "127.0.0.1"]);
    let mut ping = Background::start(command);
    ping.wait_for("icmp_seq=2 ");
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &ping.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("QUIT");
    let status = ping
        .errors
        .recv_timeout(Duration::from_secs(5))
        .expect("a status line on SIGQUIT");
    assert!(status.starts_with('\r'), "{status:?}");
    assert!(
        status.contains(" packets, 0% loss, min/avg/ewma/max = "),
        "{status:?}"
    );
    signal("INT");
    let exit =
        testkit::wait_timeout(ping.child(), Duration::from_secs(5)).expect("ping exits on SIGINT");
    assert_eq!(exit.code(), Some(0));
    let rest: Vec<String> = ping.lines.try_iter().collect();
    let rest = rest.join("\n");
    assert!(rest.contains("--- 127.0.0.1 ping statistics ---"), "{rest}");
    assert!(rest.contains(" received, 0% packet loss, time "), "{rest}");
    assert!(rest.contains("rtt min/avg/max/mdev = "), "{rest}");
}

#[test]
fn without_permission_the_fix_is_explained() {
    if !netns::available() || !testkit::require("setpriv") {
        return;
    }
    let netns = Netns::new();
    let without_raw = |allowed: bool, addr: &str| {
        netns.datagram_sockets(allowed);
        let mut command = netns.command("setpriv");
        command.args([
            "--inh-caps=-net_raw",
            "--bounding-set=-net_raw",
            NETKIT,
            "ping",
            "-c",
            "2",
            "-i",
            "0.1",
            addr,
        ]);
        command.env("RUST_LOG", "debug").output().unwrap()
    };

    for (addr, family) in [("127.0.0.1", "IPv4"), ("::1", "IPv6")] {
        let refused = without_raw(false, addr);
        assert_eq!(refused.status.code(), Some(2), "{addr}");
        let stderr = text(&refused.stderr);
        let message = format!("no permission to open an {family} ICMP socket");
        for hint in [
            message.as_str(),
            "CAP_NET_RAW",
            "setcap cap_net_raw+ep",
            "ping_group_range",
        ] {
            assert!(stderr.contains(hint), "{stderr}");
        }
        assert_eq!(
            stderr
                .lines()
                .filter(|line| line.starts_with("netkit:"))
                .count(),
            1,
            "one message: {stderr}"
        );
        assert!(refused.stdout.is_empty());

        // Without CAP_NET_RAW but inside ping_group_range: a datagram socket.
        let allowed = without_raw(true, addr);
        assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed.stderr));
        assert!(
            text(&allowed.stderr)
                .contains(&format!("{family} probes go over a datagram ICMP socket"))
        );
        assert!(text(&allowed.stdout).contains("2 packets transmitted, 2 received"));
    }
}

#[test]
fn demo_reports_ping_with_or_without_permission() {
    if !netns::available() || !testkit::require("setpriv") {
        return;
    }
    let netns = Netns::new();
    let demo = |allowed: bool| {
        netns.datagram_sockets(allowed);
        let mut command = netns.command("setpriv");
        command.args([
            "--inh-caps=-net_raw",
            "--bounding-set=-net_raw",
            NETKIT,
            "demo",
        ]);
        let out = command.output().unwrap();
        text(&out.stdout)
            .lines()
            .find(|line| line.starts_with("ping "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no ping line in {}", text(&out.stdout)))
    };
    let line = demo(true);
    assert!(line.contains(" ok "), "{line}");
    assert!(line.contains("3/3 echo replies from 127.0.0.1 over a datagram ICMP socket"));
    let line = demo(false);
    assert!(line.contains(" FAIL "), "{line}");
    assert!(line.contains("ping_group_range"), "{line}");

    // As root on the host's own loopback.
    let out = Command::new(NETKIT).arg("demo").output().unwrap();
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("ping "))
        .unwrap();
    assert!(line.contains("3/3 echo replies"), "{line}");
}
