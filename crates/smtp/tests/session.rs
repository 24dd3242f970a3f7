//! The client session against the sink (both in-process) and against small
//! scripted servers for what no friendly server does: refusing EHLO,
//! a SIZE limit, plaintext injected after STARTTLS, silence, garbage.

use std::net::SocketAddr;
use std::time::Duration;

use smtp::sink::{Sink, SinkConfig};
use smtp::{
    ClientConfig, Credentials, Envelope, ErrorKind, Event, Message, Password, Security, Server,
    Stage,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn config(security: Security) -> ClientConfig {
    ClientConfig {
        helo_name: "client.test".into(),
        security,
        tls: tls::ClientOptions {
            insecure: true,
            ca_file: None,
        },
        auth: None,
        allow_plaintext_auth: false,
        timeout: Duration::from_secs(5),
        show_body: true,
    }
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        from: "a@example.org".parse().unwrap(),
        recipients: recipients.iter().map(|r| r.parse().unwrap()).collect(),
    }
}

fn message() -> Message {
    Message::from_bytes(b"Subject: t\r\n\r\n.dot\r\nbody\r\n".to_vec())
}

async fn send_to(
    addr: SocketAddr,
    config: &ClientConfig,
    envelope: &Envelope,
) -> (Result<smtp::Delivery, smtp::Error>, Vec<Event>) {
    let mut events = Vec::new();
    let server = Server {
        host: "localhost".into(),
        addrs: vec![addr],
    };
    let result = {
        let mut observer = |event| events.push(event);
        smtp::send(&server, config, envelope, &message(), &mut observer).await
    };
    (result, events)
}

fn sent(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn per_recipient_results_against_the_sink() {
    let dir = std::env::temp_dir().join(format!("netkit-smtp-session-{}", std::process::id()));
    let mut sink_config = SinkConfig::new(Credentials {
        user: "u".into(),
        password: Password::new("p".into()),
    });
    sink_config.max_recipients = 2;
    sink_config.tls = Some(tls::server_config(&tls::Identity::SelfSigned, &[]).unwrap());
    let sink = Sink::bind("127.0.0.1:0".parse().unwrap(), dir.clone(), sink_config)
        .await
        .unwrap();
    let addr = sink.local_addr();
    let token = CancellationToken::new();
    let task = tokio::spawn(sink.run(token.clone()));

    let (result, events) = send_to(
        addr,
        &config(Security::RequireStartTls),
        &envelope(&["one@example.org", "two@example.org", "three@example.org"]),
    )
    .await;
    let delivery = result.unwrap();
    assert_eq!(delivery.accepted.len(), 2);
    assert_eq!(delivery.rejected.len(), 1);
    assert_eq!(delivery.rejected[0].0.address, "three@example.org");
    assert_eq!(delivery.rejected[0].1.code.value(), 452);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Warning(w) if w.contains("three@example.org")))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Sent { line, tls: true } if line == "..dot"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Progress { sent, total } if sent == total))
    );

    token.cancel();
    task.await.unwrap();
    let stored = std::fs::read_dir(dir.join("new")).unwrap().count();
    assert_eq!(stored, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A server that answers each command line with `answer(line)`, after
/// `greeting`. Returns its address.
async fn scripted(greeting: &'static str, answer: fn(&str) -> &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        write.write_all(greeting.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let reply = answer(&line);
            if write.write_all(reply.as_bytes()).await.is_err() || line == "QUIT" {
                break;
            }
        }
    });
    addr
}

#[tokio::test]
async fn helo_when_ehlo_is_refused() {
    let addr = scripted("220 old.test\r\n", |line| {
        match line.split(' ').next().unwrap() {
            "EHLO" => "502 5.5.1 what is that\r\n",
            "HELO" => "250 old.test\r\n",
            "RCPT" => "251 will forward\r\n",
            "DATA" => "354 go\r\n",
            "QUIT" => "221 bye\r\n",
            _ => "250 ok\r\n",
        }
    })
    .await;
    let (result, events) = send_to(
        addr,
        &config(Security::Opportunistic),
        &envelope(&["b@example.org"]),
    )
    .await;
    let delivery = result.unwrap();
    assert_eq!(delivery.accepted.len(), 1, "251 counts as accepted");
    let sent = sent(&events);
    assert_eq!(sent[0], "EHLO client.test");
    assert_eq!(sent[1], "HELO client.test");
    // No PIPELINING, no SIZE: one command at a time, no SIZE=.
    assert_eq!(sent[2], "MAIL FROM:<a@example.org>");
}

#[tokio::test]
async fn size_limit_is_checked_before_mail() {
    let addr = scripted("220 small.test\r\n", |line| match line {
        l if l.starts_with("EHLO") => "250-small.test\r\n250 SIZE 10\r\n",
        "QUIT" => "221 bye\r\n",
        _ => "500 unexpected\r\n",
    })
    .await;
    let (result, events) = send_to(
        addr,
        &config(Security::Opportunistic),
        &envelope(&["b@example.org"]),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.stage, Stage::Mail);
    assert!(
        matches!(err.kind, ErrorKind::TooBig { limit: 10, .. }),
        "{err}"
    );
    assert_eq!(sent(&events).last().unwrap(), "QUIT");
}

#[tokio::test]
async fn plaintext_after_starttls_reply_is_refused() {
    let addr = scripted("220 evil.test\r\n", |line| match line {
        l if l.starts_with("EHLO") => "250-evil.test\r\n250 STARTTLS\r\n",
        "STARTTLS" => "220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n",
        _ => "500 unexpected\r\n",
    })
    .await;
    let (result, _) = send_to(
        addr,
        &config(Security::Opportunistic),
        &envelope(&["b@example.org"]),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.stage, Stage::Tls);
    assert!(matches!(err.kind, ErrorKind::StartTlsInjection), "{err}");
}

#[tokio::test]
async fn silence_times_out_at_the_stage_it_happens() {
    let addr = scripted("220 slow.test\r\n", |_| "").await;
    let mut config = config(Security::Opportunistic);
    config.timeout = Duration::from_millis(200);
    let (result, _) = send_to(addr, &config, &envelope(&["b@example.org"])).await;
    let err = result.unwrap_err();
    assert_eq!(err.stage, Stage::Ehlo);
    assert!(matches!(err.kind, ErrorKind::Timeout(_)), "{err}");
}

#[tokio::test]
async fn garbage_replies_are_protocol_errors() {
    let addr = scripted("220 odd.test\r\n", |_| "250-one\r\n354 two\r\n").await;
    let (result, _) = send_to(
        addr,
        &config(Security::Opportunistic),
        &envelope(&["b@example.org"]),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.stage, Stage::Ehlo);
    assert!(matches!(err.kind, ErrorKind::Protocol(_)), "{err}");

    let addr = scripted("hello, I am not SMTP\r\n", |_| "").await;
    let (result, _) = send_to(
        addr,
        &config(Security::Opportunistic),
        &envelope(&["b@example.org"]),
    )
    .await;
    assert_eq!(result.unwrap_err().stage, Stage::Greeting);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever a client sends, the sink answers the next client.
        #[test]
        fn arbitrary_bytes_never_break_the_sink(
            blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..4)
        ) {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let dir = std::env::temp_dir().join(format!("netkit-smtp-fuzz-{}", std::process::id()));
                let mut config = SinkConfig::new(Credentials { user: "u".into(), password: Password::new("p".into()) });
                config.max_message_size = 4096;
                config.idle_timeout = Duration::from_secs(2);
                let sink = Sink::bind("127.0.0.1:0".parse().unwrap(), dir.clone(), config).await.unwrap();
                let addr = sink.local_addr();
                let token = CancellationToken::new();
                let task = tokio::spawn(sink.run(token.clone()));
                for blob in &blobs {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let _ = stream.write_all(b"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n").await;
                    let _ = stream.write_all(blob).await;
                    let _ = stream.shutdown().await;
                    let mut sink_said = Vec::new();
                    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut sink_said)).await;
                }
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.write_all(b"NOOP\r\n").await.unwrap();
                let mut reply = vec![0u8; 256];
                let mut got = Vec::new();
                while !String::from_utf8_lossy(&got).contains("250 ") {
                    let n = stream.read(&mut reply).await.unwrap();
                    prop_assert!(n > 0, "sink closed: {:?}", String::from_utf8_lossy(&got));
                    got.extend_from_slice(&reply[..n]);
                }
                token.cancel();
                task.await.unwrap();
                let _ = std::fs::remove_dir_all(dir);
                Ok(())
            })?;
        }
    }
}
