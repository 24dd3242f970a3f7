//! The capture line of `netkit demo`: capture this process's own chat login
//! and web request on loopback and report the three-way handshakes seen.
//! Without CAP_NET_RAW the line says what to run and the demo goes on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use capture::decode::{TcpFlags, decode};
use capture::live::{self, Capture};
use capture::tcp::endpoints;
use capture::{Error, Frame, LinkType, filter};
use chat::client::{ClientOptions, Mode};
use chat::{Accounts, Client, Password, Server as ChatServer, ServerConfig as ChatConfig};
use tokio_util::sync::CancellationToken;
use web::{Client as WebClient, ClientConfig, ClientRequest, Server as WebServer, ServerConfig};

const WAIT: Duration = Duration::from_secs(5);
/// Headers are all the demo looks at.
const SNAPLEN: u32 = 128;

pub async fn check() -> anyhow::Result<String> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let chat =
        ChatServer::bind(loopback, ChatConfig::default(), Accounts::open_in_memory()?).await?;
    let chat_addr = chat.local_addr();
    let web = WebServer::bind(ServerConfig::new(loopback)).await?;
    let url = WebClient::parse_url(&web.url())?;
    let web_port = url.port().context("the web server has no port")?;
    let token = CancellationToken::new();
    let chat_running = tokio::spawn(chat.run(token.clone()));
    let web_running = tokio::spawn(web.run(token.clone()));
    let stop = token.drop_guard();

    let link = live::link_type("lo")?;
    let text = format!("tcp port {} or tcp port {web_port}", chat_addr.port());
    let expr = filter::parse(&text)?.context("an empty filter")?;
    let program = filter::compile(&expr, link, SNAPLEN)?;
    let capture = match Capture::open("lo", &program, SNAPLEN) {
        Ok(capture) => capture,
        Err(err @ Error::Permission) => return Ok(format!("skipped: {err}")),
        Err(err) => return Err(err.into()),
    };
    let ports = [chat_addr.port(), web_port];
    let reader = tokio::task::spawn_blocking(move || handshakes(capture, link, ports));

    let options = ClientOptions {
        server: chat_addr.to_string(),
        tls: None,
        timeout: WAIT,
        udp: true,
    };
    let (alice, _events) = Client::connect(
        &options,
        "alice",
        Password::new("demo password"),
        Mode::Register,
    )
    .await?;
    alice.logout().await?;
    let client = WebClient::new(ClientConfig::default())?;
    let response = client.send(ClientRequest::get(url), &mut |_| {}).await?;
    ensure!(response.status == 200, "GET / answered {}", response.status);
    response.bytes().await?;

    let seen = reader.await??;
    drop(stop);
    chat_running.await?;
    web_running.await?;
    let [chat_seen, web_seen] = seen;
    let (syn, synack) = chat_seen.context("no chat handshake was captured")?;
    let (web_syn, _) = web_seen.context("no web handshake was captured")?;
    Ok(format!(
        "captured the chat login on :{}: SYN seq {syn}, SYN-ACK seq {} ack {}, ACK; \
         and the web GET's handshake on :{web_port} (ISN {web_syn})",
        chat_addr.port(),
        synack.0,
        synack.1
    ))
}

/// Per port: the client's ISN and the SYN-ACK's (seq, ack), once the
/// third step (the client's ACK of ISN + 1) has been seen too.
type Handshake = Option<(u32, (u32, u32))>;

fn handshakes(
    mut capture: Capture,
    link: LinkType,
    ports: [u16; 2],
) -> anyhow::Result<[Handshake; 2]> {
    let started = Instant::now();
    let mut syn: [Option<u32>; 2] = [None; 2];
    let mut synack: [Option<(u32, u32)>; 2] = [None; 2];
    let mut done: [Handshake; 2] = [None; 2];
    while done.iter().any(Option::is_none) && started.elapsed() < WAIT {
        let Some(Frame { data, .. }) = capture.next(false)? else {
            continue;
        };
        let packet = decode(link, &data);
        let Some(((from, to), tcp)) = endpoints(&packet) else {
            continue;
        };
        let Some(index) = ports
            .iter()
            .position(|port| *port == to.port() || *port == from.port())
        else {
            continue;
        };
        let (s, a) = (tcp.flags.has(TcpFlags::SYN), tcp.flags.has(TcpFlags::ACK));
        match (s, a) {
            (true, false) if to.port() == ports[index] => syn[index] = Some(tcp.seq),
            (true, true) => synack[index] = Some((tcp.seq, tcp.ack)),
            (false, true) => {
                if let (Some(isn), Some((server_isn, ack))) = (syn[index], synack[index])
                    && ack == isn.wrapping_add(1)
                    && tcp.ack == server_isn.wrapping_add(1)
                    && done[index].is_none()
                {
                    done[index] = Some((isn, (server_isn, ack)));
                }
            }
            _ => {}
        }
    }
    Ok(done)
}
