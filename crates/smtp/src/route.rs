//! Delivering to a domain (RFC 5321 §5.1): its exchangers in order of
//! preference until one takes the message. One that cannot be reached or
//! will not greet (a 421 from a busy server) is passed over; once one has
//! greeted, its verdict is final.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::address::Mailbox;
use crate::client::{ClientConfig, Delivery, Envelope, Server, send};
use crate::error::{Error, Stage};
use crate::message::Message;
use crate::mx::{Dns, Exchanger};
use crate::transcript::{Event, Observer};

/// The recipients grouped by domain (lower-cased), each group one
/// delivery of its own when there is no smarthost.
pub fn by_domain(recipients: impl IntoIterator<Item = Mailbox>) -> BTreeMap<String, Vec<Mailbox>> {
    let mut groups: BTreeMap<String, Vec<Mailbox>> = BTreeMap::new();
    for recipient in recipients {
        groups
            .entry(recipient.domain().to_ascii_lowercase())
            .or_default()
            .push(recipient);
    }
    groups
}

/// Looks up `domain`'s exchangers (or its own A/AAAA records when it has
/// no MX) and delivers to them on `port`.
pub async fn send_to_domain(
    dns: &Dns,
    domain: &str,
    port: u16,
    config: &ClientConfig,
    envelope: &Envelope,
    message: &Message,
    observer: &mut dyn Observer,
) -> Result<Delivery, Error> {
    let exchangers = dns.exchangers(domain).await?;
    send_to_exchangers(
        domain, exchangers, port, config, envelope, message, observer,
    )
    .await
}

/// Tries `exchangers`, lowest preference first (the order among equals is
/// kept), each on `port`; the last failure when none took the message.
pub async fn send_to_exchangers(
    domain: &str,
    mut exchangers: Vec<Exchanger>,
    port: u16,
    config: &ClientConfig,
    envelope: &Envelope,
    message: &Message,
    observer: &mut dyn Observer,
) -> Result<Delivery, Error> {
    exchangers.sort_by_key(|exchanger| exchanger.preference);
    let mut last = None;
    let count = exchangers.len();
    for (i, exchanger) in exchangers.into_iter().enumerate() {
        observer.event(Event::Note(format!(
            "MX for {domain}: {} (preference {})",
            exchanger.host, exchanger.preference
        )));
        let server = Server {
            addrs: exchanger
                .addrs
                .iter()
                .map(|&ip| SocketAddr::new(ip, port))
                .collect(),
            host: exchanger.host,
        };
        match send(&server, config, envelope, message, observer).await {
            Err(err) if matches!(err.stage, Stage::Connect | Stage::Greeting) => {
                // The last failure is the caller's to report, once.
                if i + 1 < count {
                    observer.event(Event::Note(format!("{err} (trying the next exchanger)")));
                }
                last = Some(err);
            }
            outcome => return outcome,
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(
            Stage::Connect,
            crate::error::ErrorKind::NoMailServer {
                domain: domain.to_owned(),
            },
        )
    }))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::auth::{Credentials, Password};
    use crate::client::Security;
    use crate::message::Draft;
    use crate::sink::{Sink, SinkConfig};

    fn loopback(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    fn exchanger(preference: u16, last: u8) -> Exchanger {
        Exchanger {
            preference,
            host: format!("mx{preference}.test"),
            addrs: vec![loopback(last)],
        }
    }

    /// A scratch maildir of its own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("netkit-smtp-route-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            Self(path)
        }

        fn stored(&self) -> usize {
            std::fs::read_dir(self.0.join("new")).map_or(0, Iterator::count)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A server that answers every connection with a 421 greeting, as a
    /// busy one does, on a port of its own at `ip`.
    async fn busy(ip: IpAddr) -> u16 {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"421 4.3.2 mx busy, try later\r\n").await;
            }
        });
        port
    }

    /// The sink at `ip:port`, serving until the token is cancelled.
    async fn sink(
        ip: IpAddr,
        port: u16,
        maildir: &Scratch,
        require_auth: bool,
    ) -> CancellationToken {
        let mut config = SinkConfig::new(Credentials {
            user: "demo".into(),
            password: Password::new("demo".into()),
        });
        config.require_auth = require_auth;
        let sink = Sink::bind(SocketAddr::new(ip, port), maildir.0.clone(), config)
            .await
            .expect("the port is free at this address too");
        let token = CancellationToken::new();
        tokio::spawn(sink.run(token.clone()));
        token
    }

    fn config() -> ClientConfig {
        ClientConfig {
            helo_name: "client.test".into(),
            security: Security::Plaintext,
            tls: tls::ClientOptions::default(),
            auth: None,
            allow_plaintext_auth: false,
            timeout: Duration::from_secs(10),
            show_body: false,
        }
    }

    fn message() -> (Envelope, Message) {
        let from: Mailbox = "a@sender.test".parse().unwrap();
        let to: Mailbox = "b@rcpt.test".parse().unwrap();
        let draft = Draft {
            from: Some(from.clone()),
            to: vec![to.clone()],
            subject: Some("route".into()),
            text: Some("hello".into()),
            ..Draft::default()
        };
        let envelope = Envelope {
            from,
            recipients: vec![to],
        };
        (envelope, draft.compose().unwrap())
    }

    fn notes(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Note(note) if note.starts_with("MX for") => Some(note.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn passes_over_the_unreachable_and_the_busy() {
        let port = busy(loopback(3)).await;
        let maildir = Scratch::new("over");
        let stop = sink(loopback(4), port, &maildir, false).await;
        let (envelope, message) = message();
        let mut events = Vec::new();
        // Given out of order: preference decides. Nothing listens on .2.
        let exchangers = vec![exchanger(30, 4), exchanger(10, 2), exchanger(20, 3)];
        let delivery = send_to_exchangers(
            "rcpt.test",
            exchangers,
            port,
            &config(),
            &envelope,
            &message,
            &mut |event: Event| events.push(event),
        )
        .await
        .expect("the third exchanger takes it");
        assert_eq!(delivery.accepted, envelope.recipients);
        assert!(
            delivery.reply.text().contains("queued as"),
            "{}",
            delivery.reply
        );
        assert_eq!(
            notes(&events),
            [
                "MX for rcpt.test: mx10.test (preference 10)",
                "MX for rcpt.test: mx20.test (preference 20)",
                "MX for rcpt.test: mx30.test (preference 30)"
            ]
        );
        assert!(
            events.contains(&Event::Received {
                line: "421 4.3.2 mx busy, try later".into(),
                tls: false
            }),
            "{events:?}"
        );
        // Each exchanger passed over is told once, the reason with it.
        let passed: Vec<&Event> = events
            .iter()
            .filter(|event| matches!(event, Event::Note(note) if note.ends_with("(trying the next exchanger)")))
            .collect();
        assert_eq!(passed.len(), 2, "{events:?}");
        assert_eq!(maildir.stored(), 1);
        stop.cancel();
    }

    #[tokio::test]
    async fn the_first_that_greets_has_the_last_word() {
        let strict = Scratch::new("strict");
        let lenient = Scratch::new("lenient");
        let listener = TcpListener::bind((loopback(5), 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let stop_strict = sink(loopback(5), port, &strict, true).await;
        let stop_lenient = sink(loopback(6), port, &lenient, false).await;
        let (envelope, message) = message();
        let err = send_to_exchangers(
            "rcpt.test",
            vec![exchanger(10, 5), exchanger(20, 6)],
            port,
            &config(),
            &envelope,
            &message,
            &mut |_: Event| {},
        )
        .await
        .expect_err("MAIL is refused without AUTH");
        assert_eq!(err.stage, Stage::Mail, "{err}");
        assert_eq!((strict.stored(), lenient.stored()), (0, 0));
        stop_strict.cancel();
        stop_lenient.cancel();
    }

    #[tokio::test]
    async fn when_none_greets_the_last_failure_is_told() {
        let port = busy(loopback(7)).await;
        let (envelope, message) = message();
        let err = send_to_exchangers(
            "rcpt.test",
            vec![exchanger(10, 8), exchanger(20, 7)],
            port,
            &config(),
            &envelope,
            &message,
            &mut |_: Event| {},
        )
        .await
        .expect_err("nobody takes it");
        assert_eq!(err.stage, Stage::Greeting, "{err}");
        assert!(err.to_string().contains("421"), "{err}");
        let none = send_to_exchangers(
            "x.test",
            Vec::new(),
            port,
            &config(),
            &envelope,
            &message,
            &mut |_: Event| {},
        )
        .await
        .expect_err("no exchanger");
        assert_eq!(none.stage, Stage::Connect);
    }

    #[test]
    fn recipients_grouped_by_domain() {
        let recipients =
            ["a@One.test", "b@two.test", "c@one.TEST"].map(|r| r.parse::<Mailbox>().unwrap());
        let groups = by_domain(recipients);
        let addresses: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(domain, group)| {
                (
                    domain.as_str(),
                    group.iter().map(|m| m.address.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            addresses,
            [
                ("one.test", vec!["a@One.test", "c@one.TEST"]),
                ("two.test", vec!["b@two.test"])
            ]
        );
    }
}
