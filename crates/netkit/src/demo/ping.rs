//! The ping line of `netkit demo`: three echo requests to 127.0.0.1, over
//! whichever ICMP socket this process may open.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{Context, ensure};
use ping::{Config, Family, Remote, Session, Target};

const PROBES: u64 = 3;

pub async fn check() -> anyhow::Result<String> {
    let config = Config {
        count: Some(PROBES),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let target = Target::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let session = Session::new(config, &[target])?;
    let kind = session
        .socket_kind(Family::V4)
        .context("no IPv4 socket was opened")?;
    let remote = Remote::new()?;
    let report = tokio::task::spawn_blocking(move || session.run(&remote, |_| {})).await??;
    let stats = &report.hosts[0];
    ensure!(
        stats.received == PROBES,
        "{} of {PROBES} echo replies from 127.0.0.1 ({} errors)",
        stats.received,
        stats.errors
    );
    let rtt = stats.rtt().context("the replies were not timed")?;
    let ms = |value: Duration| value.as_secs_f64() * 1e3;
    Ok(format!(
        "{PROBES}/{PROBES} echo replies from 127.0.0.1 over a {kind} ICMP socket, \
         rtt min/avg/max {:.3}/{:.3}/{:.3} ms",
        ms(rtt.min),
        ms(rtt.avg),
        ms(rtt.max)
    ))
}
