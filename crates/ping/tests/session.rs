//! The probe engine driven directly, against the kernel on loopback: the
//! events it reports, its statistics, stopping it, and the targets it
//! refuses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ping::{Config, Error, Event, Remote, ReplyStatus, Session, Target};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn quick(count: u64) -> Config {
    Config {
        count: Some(count),
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Root, or a datagram socket allowed by ping_group_range: either way a
/// socket the session can open.
fn can_ping() -> bool {
    match Session::new(quick(1), &[Target::from(V4)]) {
        Ok(_) => true,
        Err(Error::NotPermitted { .. }) => testkit::require_root(),
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn both_families_answer_with_their_own_sequence_numbers() {
    if !can_ping() {
        return;
    }
    let session = Session::new(quick(3), &[Target::from(V4), Target::from(V6)]).unwrap();
    let remote = Remote::new().unwrap();
    let mut replies = Vec::new();
    let report = session
        .run(&remote, |event| {
            if let Event::Reply(reply) = event {
                replies.push(reply);
            }
        })
        .unwrap();
    assert!(!report.stopped);
    for (host, addr) in [(0, V4), (1, V6)] {
        let seqs: Vec<u16> = replies
            .iter()
            .filter(|reply| reply.host == host)
            .map(|reply| reply.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3], "host {addr}");
        let stats = &report.hosts[host];
        assert_eq!((stats.transmitted, stats.received), (3, 3));
        assert_eq!((stats.duplicates, stats.errors, stats.late), (0, 0, 0));
        let rtt = stats.rtt().expect("timed replies");
        assert!(rtt.min <= rtt.avg && rtt.avg <= rtt.max);
        // Two intervals between three probes.
        assert!(stats.elapsed >= Duration::from_millis(40), "{stats:?}");
    }
    for reply in &replies {
        assert_eq!(reply.status, ReplyStatus::Fresh);
        assert_eq!(reply.bytes, 64);
        assert_eq!(reply.hop_limit, Some(64));
        assert!(!reply.wrong_source);
        assert!(reply.mismatch.is_none());
        assert!(reply.rtt.is_some());
        assert!(reply.at >= reply.sent);
    }
}

#[test]
fn untimed_probes_have_no_round_trip() {
    if !can_ping() {
        return;
    }
    let config = Config {
        payload_len: 8,
        ..quick(1)
    };
    let session = Session::new(config, &[Target::from(V4)]).unwrap();
    let mut rtts = Vec::new();
    let report = session
        .run(&Remote::new().unwrap(), |event| {
            if let Event::Reply(reply) = event {
                rtts.push(reply.rtt);
            }
        })
        .unwrap();
    assert_eq!(rtts, [None]);
    assert_eq!(report.hosts[0].received, 1);
    assert_eq!(report.hosts[0].rtt(), None);
}

#[test]
fn stop_ends_an_endless_run() {
    if !can_ping() {
        return;
    }
    let config = Config {
        count: None,
        ..quick(1)
    };
    let session = Session::new(config, &[Target::from(V4)]).unwrap();
    let remote = Remote::new().unwrap();
    // Steered by what happens rather than by the clock: a status after the
    // second reply, a stop after the fourth.
    let steer = remote.clone();
    let mut replies = 0;
    let mut statuses = Vec::new();
    let report = session
        .run(&remote, |event| match event {
            Event::Reply(_) => {
                replies += 1;
                match replies {
                    2 => steer.ask_status(),
                    4 => steer.stop(),
                    _ => {}
                }
            }
            Event::Status { stats, .. } => statuses.push(stats),
            _ => {}
        })
        .unwrap();
    assert!(report.stopped);
    assert_eq!(statuses.len(), 1, "one status report, mid-run");
    let stats = &report.hosts[0];
    assert!(statuses[0].received >= 2, "{:?}", statuses[0]);
    assert!(statuses[0].received < stats.received, "{stats:?}");
    assert!(stats.received >= 4, "{stats:?}");
    assert!(stats.transmitted <= stats.received + 1, "{stats:?}");
}

#[test]
fn deadline_ends_the_run() {
    if !can_ping() {
        return;
    }
    let config = Config {
        count: None,
        deadline: Some(Duration::from_millis(200)),
        interval: Duration::from_millis(50),
        ..quick(1)
    };
    let session = Session::new(config, &[Target::from(V4)]).unwrap();
    let started = Instant::now();
    let report = session.run(&Remote::new().unwrap(), |_| {}).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(!report.stopped);
    // At most one probe per interval until the deadline (0, 50, ..., 200 ms).
    assert!((1..=5).contains(&report.hosts[0].transmitted));
}

#[test]
fn targets_are_checked_before_any_socket_opens() {
    let err = Session::new(quick(1), &[]).unwrap_err();
    assert!(matches!(err, Error::NoTargets));
    let err = Session::new(quick(1), &[Target::from(V4), Target::from(V4)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "127.0.0.1 is listed more than once; give each address once"
    );
    // Root may ask for more than an IPv4 packet holds, as with iputils,
    // and learns of it from the kernel's local error instead.
    let max = if ping::is_privileged() {
        65_527
    } else {
        65_507
    };
    let big = Config {
        payload_len: max + 1,
        ..quick(1)
    };
    let err = Session::new(big, &[Target::from(V4)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("packet size {} is too large. Maximum is {max}", max + 1)
    );
}
