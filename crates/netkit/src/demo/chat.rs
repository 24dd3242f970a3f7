use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use chat::client::{ClientOptions, Event, Mode};
use chat::{Accounts, Client, Password, Server, ServerConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

pub async fn check() -> anyhow::Result<String> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let server = Server::bind(
        loopback,
        ServerConfig::default(),
        Accounts::open_in_memory()?,
    )
    .await?;
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(server.run(token.clone()));
    let stop = token.drop_guard();

    let options = ClientOptions {
        server: addr.to_string(),
        tls: None,
        timeout: WAIT,
        udp: true,
    };
    let password = || Password::new("demo password");
    let (alice, _alice_events) =
        Client::connect(&options, "alice", password(), Mode::Register).await?;
    let (bob, mut bob_events) =
        Client::connect(&options, "bob", password(), Mode::Register).await?;
    // Alice learns bob's address and key from the room before messaging him.
    tokio::time::timeout(WAIT, async {
        while alice.users().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .context("alice never saw bob join")?;

    alice.say(None, "hello, room").await?;
    expect(&mut bob_events, |event| {
        matches!(event, Event::Message { from, text, .. } if from == "alice" && text == "hello, room")
    })
    .await
    .context("bob did not get alice's room message")?;
    alice.direct("bob", "hello, bob").await?;
    expect(&mut bob_events, |event| {
        matches!(event, Event::Direct { from, text, relayed: false } if from == "alice" && text == "hello, bob")
    })
    .await
    .context("bob did not get alice's direct message")?;

    alice.logout().await?;
    bob.logout().await?;
    drop(stop);
    running.await?;
    Ok(format!(
        "{addr}: alice and bob registered, exchanged a room message and a signed UDP direct message"
    ))
}

async fn expect(
    events: &mut mpsc::Receiver<Event>,
    wanted: impl Fn(&Event) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if wanted(&event) {
                return Ok(());
            }
        }
        bail!("the session ended")
    })
    .await
    .context("timed out")?
}
