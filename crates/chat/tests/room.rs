//! The library's server and client together, in process, on port 0: a
//! room with many members, and session replacement as the client sees it.

use std::net::SocketAddr;
use std::time::Duration;

use chat::client::{ClientOptions, Event, Mode};
use chat::{Accounts, Client, ErrorCode, Password, Server, ServerConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

async fn start() -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    // Every member registers from 127.0.0.1.
    let config = ServerConfig {
        users_interval: Duration::from_millis(10),
        register_per_address: 1000,
        register_overall: 1000,
        ..ServerConfig::default()
    };
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Accounts::open_in_memory().unwrap(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    (addr, token, running)
}

fn options(addr: SocketAddr) -> ClientOptions {
    ClientOptions {
        server: addr.to_string(),
        tls: None,
        timeout: WAIT,
        udp: true,
    }
}

async fn next_matching(
    events: &mut mpsc::Receiver<Event>,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("session still open");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event within the wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_hears_every_other_member() {
    const MEMBERS: usize = 50;
    let (addr, token, running) = start().await;
    let mut members = Vec::new();
    let joins: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let options = options(addr);
            tokio::spawn(async move {
                Client::connect(
                    &options,
                    &format!("member{i:03}"),
                    Password::new("member password"),
                    Mode::Register,
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for join in joins {
        members.push(join.await.unwrap());
    }
    // Everyone sees the complete list once the joins settle.
    for (client, events) in &mut members {
        if client.users().len() < MEMBERS {
            next_matching(
                events,
                |event| matches!(event, Event::Users(users) if users.len() == MEMBERS),
            )
            .await;
        }
    }
    for (speaker, (client, _)) in members.iter().enumerate().take(3) {
        client
            .say(None, &format!("hello from {speaker}"))
            .await
            .unwrap();
    }
    for (i, (_, events)) in members.iter_mut().enumerate() {
        let mut heard = Vec::new();
        while heard.len() < if i < 3 { 2 } else { 3 } {
            if let Event::Message { from, text, .. } =
                next_matching(events, |event| matches!(event, Event::Message { .. })).await
            {
                assert_ne!(from, format!("member{i:03}"), "a member heard itself");
                heard.push(text);
            }
        }
        heard.sort();
        let expected: Vec<String> = (0..3)
            .filter(|s| *s != i)
            .map(|s| format!("hello from {s}"))
            .collect();
        assert_eq!(heard, expected, "member {i}");
    }
    token.cancel();
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_second_login_closes_the_first_session() {
    let (addr, token, running) = start().await;
    let options = options(addr);
    let (_first, mut first_events) = Client::connect(
        &options,
        "alice",
        Password::new("alice password"),
        Mode::Register,
    )
    .await
    .unwrap();
    let (second, _second_events) = Client::connect(
        &options,
        "ALICE",
        Password::new("alice password"),
        Mode::Login,
    )
    .await
    .unwrap();
    assert_eq!(second.name(), "alice");
    let closed = next_matching(&mut first_events, |event| {
        matches!(event, Event::Closed { .. })
    })
    .await;
    assert!(
        matches!(
            closed,
            Event::Closed {
                code: Some(ErrorCode::SessionReplaced),
                ..
            }
        ),
        "{closed:?}"
    );
    let wrong = Client::connect(
        &options,
        "alice",
        Password::new("wrong password"),
        Mode::Login,
    )
    .await;
    assert!(
        matches!(
            wrong,
            Err(chat::Error::Rejected {
                code: ErrorCode::LoginFailed,
                ..
            })
        ),
        "{wrong:?}"
    );
    token.cancel();
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
}
