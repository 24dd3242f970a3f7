//! `netkit chat serve --web`: the browser client's page, and the chat
//! protocol over WebSocket held to the TCP rules. Hostile WebSocket
//! clients (binary messages, oversize messages, one that never reads, too
//! many connections, floods) get the TCP answers and never hold up anyone
//! else; WebSocket and TCP members share the rooms.

#[path = "chat/support.rs"]
mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use chat::direct::SessionKey;
use chat::frame::{
    ClientFrame, Credentials, ErrorCode, LeaveReason, PROTOCOL_VERSION, Password, ServerFrame,
    decode, encode,
};
use support::{Raw, Scratch, WAIT, netkit};
use testkit::Server;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, WebSocket};

/// A chat server with its web listener.
struct WebChat {
    _server: Server,
    chat: SocketAddr,
    web: SocketAddr,
}

impl WebChat {
    fn start(scratch: &Scratch, extra: &[&str]) -> Self {
        let mut command = netkit();
        command
            .args([
                "chat",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--web",
                "127.0.0.1:0",
            ])
            .args(["--users-interval", "20ms", "--grace", "2s", "--db"])
            .arg(scratch.path("chat.sqlite3"))
            .args(extra);
        let server = Server::start(command, 2);
        let (chat, web) = (server.addrs()[0], server.addrs()[1]);
        Self {
            _server: server,
            chat,
            web,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.web)
    }
}

/// A WebSocket chat client written against the wire.
struct Ws {
    socket: WebSocket<TcpStream>,
    key: SessionKey,
}

impl Ws {
    /// Connects and reads the server's `hello`.
    fn connect(web: SocketAddr) -> Self {
        let mut ws = Self::open(TcpStream::connect(web).unwrap(), web).expect("handshake");
        match ws.frame() {
            Some(ServerFrame::Hello { version, .. }) => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("expected hello, got {other:?}"),
        }
        ws
    }

    fn open(stream: TcpStream, web: SocketAddr) -> Result<Self, tungstenite::Error> {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut request = format!("ws://{web}/chat").into_client_request().unwrap();
        let origin = HeaderValue::from_str(&format!("http://{web}")).unwrap();
        request.headers_mut().insert("Origin", origin);
        let (socket, _) = tungstenite::client(request, stream).map_err(|err| match err {
            tungstenite::HandshakeError::Failure(err) => err,
            tungstenite::HandshakeError::Interrupted(_) => panic!("a blocking handshake"),
        })?;
        Ok(Self {
            socket,
            key: SessionKey::generate(),
        })
    }

    fn send(&mut self, frame: &ClientFrame) {
        let line = encode(frame).unwrap();
        let text = std::str::from_utf8(&line).unwrap().trim_end().to_owned();
        self.socket.send(Message::text(text)).unwrap();
    }

    fn join(&mut self, name: &str, password: &str) {
        let credentials = Credentials {
            version: PROTOCOL_VERSION,
            name: name.into(),
            password: Password::new(password),
            udp_port: None,
            key: self.key.public().to_base64(),
        };
        self.send(&ClientFrame::Register(credentials));
        match self.frame() {
            Some(ServerFrame::Welcome { .. }) => {}
            other => panic!("expected welcome, got {other:?}"),
        }
        self.until(|frame| matches!(frame, ServerFrame::Users { more: false, .. }));
    }

    /// The next frame; `None` once the server has closed.
    fn frame(&mut self) -> Option<ServerFrame> {
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return Some(decode(text.as_bytes()).expect("server frames decode"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    fn until(&mut self, wanted: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
        let mut seen = Vec::new();
        loop {
            match self.frame() {
                Some(frame) if wanted(&frame) => return frame,
                Some(frame) => seen.push(frame),
                None => panic!("connection closed; saw {seen:#?}"),
            }
        }
    }

    /// Reads until the server closes; returns its `bye`, if any.
    fn bye(&mut self) -> Option<ServerFrame> {
        let mut bye = None;
        while let Some(frame) = self.frame() {
            if let ServerFrame::Bye { .. } = frame {
                bye = Some(frame);
            }
        }
        bye
    }
}

fn error_code(frame: &ServerFrame) -> Option<ErrorCode> {
    match frame {
        ServerFrame::Error { code, .. } | ServerFrame::Bye { code, .. } => Some(*code),
        _ => None,
    }
}

/// curl's status line and headers for `url`, and the body.
fn curl(args: &[&str], url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {url}: {out:?}");
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn the_page_and_its_script_are_served_with_a_strict_policy() {
    if !testkit::require("curl") {
        return;
    }
    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &[]);

    let (head, body) = curl(&[], &chat.url("/"));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(body.contains(r#"<script src="/chat.js""#), "{body}");
    let (head, body) = curl(&[], &chat.url("/chat.js"));
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(body.contains("new WebSocket("), "{body}");
    let (head, _) = curl(&["-I"], &chat.url("/chat.css"));
    assert!(head.contains("content-type: text/css"), "{head}");

    let (head, _) = curl(&[], &chat.url("/nothing-here"));
    assert!(head.starts_with("http/1.1 404"), "{head}");
    let (head, _) = curl(&["-X", "POST"], &chat.url("/"));
    assert!(head.starts_with("http/1.1 405"), "{head}");
    // The WebSocket's path, asked for as a page.
    let (head, _) = curl(&[], &chat.url("/chat"));
    assert!(head.starts_with("http/1.1 426"), "{head}");

    // A page from another origin may not open the chat's WebSocket.
    let stream = TcpStream::connect(chat.web).unwrap();
    let mut request = format!("ws://{}/chat", chat.web)
        .into_client_request()
        .unwrap();
    let evil = HeaderValue::from_static("http://evil.example");
    request.headers_mut().insert("Origin", evil);
    match tungstenite::client(request, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn websocket_and_tcp_members_share_rooms_and_history() {
    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &[]);
    let mut alice = Ws::connect(chat.web);
    alice.join("alice", "alice password");
    let mut bob = Raw::connect(chat.chat);
    bob.join("bob", "bob password", true);

    alice.send(&ClientFrame::Join {
        room: "#both".into(),
    });
    alice.until(|frame| matches!(frame, ServerFrame::HistoryEnd { .. }));
    alice.send(&ClientFrame::Say {
        text: "from the browser".into(),
        room: Some("#both".into()),
    });
    // Frames are handled in order: once the pong is back, the message is
    // stored.
    alice.send(&ClientFrame::Ping { id: Some(1) });
    alice.until(|frame| matches!(frame, ServerFrame::Pong { .. }));
    // bob joins later: alice's message is history to him.
    bob.send(&ClientFrame::Join {
        room: "#both".into(),
    });
    let replayed = bob.until(|frame| matches!(frame, ServerFrame::Message { .. }));
    assert!(
        matches!(&replayed, ServerFrame::Message { from, text, history: true, .. }
            if from == "alice" && text == "from the browser"),
        "{replayed:?}"
    );
    bob.send(&ClientFrame::Say {
        text: "from the terminal".into(),
        room: Some("#both".into()),
    });
    let live = alice.until(|frame| matches!(frame, ServerFrame::Message { .. }));
    assert!(
        matches!(&live, ServerFrame::Message { from, text, room: Some(room), history: false, .. }
            if from == "bob" && text == "from the terminal" && room == "#both"),
        "{live:?}"
    );
    alice.send(&ClientFrame::Logout);
    assert!(matches!(
        alice.bye(),
        Some(ServerFrame::Bye {
            code: ErrorCode::LoggedOut,
            ..
        })
    ));
    let left = bob.until(|frame| matches!(frame, ServerFrame::Left { room: None, .. }));
    assert!(
        matches!(&left, ServerFrame::Left { name, reason: LeaveReason::Quit, .. } if name == "alice"),
        "{left:?}"
    );
}

#[test]
fn messages_that_are_not_text_are_refused_and_the_session_goes_on() {
    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &[]);
    let mut ws = Ws::connect(chat.web);
    // Before login and after it, a binary message is one bad frame.
    ws.socket
        .send(Message::Binary(Bytes::from_static(b"{\"type\":\"ping\"}")))
        .unwrap();
    let answer = ws.frame().unwrap();
    assert_eq!(error_code(&answer), Some(ErrorCode::BadFrame), "{answer:?}");
    ws.join("binary", "binary password");
    let is_error = |frame: &ServerFrame| matches!(frame, ServerFrame::Error { .. });
    ws.socket
        .send(Message::Binary(Bytes::from_static(&[0xff, 0, 1])))
        .unwrap();
    let answer = ws.until(is_error);
    assert_eq!(error_code(&answer), Some(ErrorCode::BadFrame), "{answer:?}");
    ws.socket.send(Message::text("this is not json")).unwrap();
    let answer = ws.until(is_error);
    assert_eq!(error_code(&answer), Some(ErrorCode::BadFrame), "{answer:?}");
    // A WebSocket ping is answered by the transport; a chat ping by the chat.
    ws.socket
        .send(Message::Ping(Bytes::from_static(b"are you there")))
        .unwrap();
    ws.send(&ClientFrame::Ping { id: Some(9) });
    loop {
        match ws.socket.read().unwrap() {
            Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
            Message::Text(text) if text.contains("pong") => {
                assert_eq!(text.as_str(), r#"{"type":"pong","id":9}"#);
                break;
            }
            Message::Text(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_oversize_message_ends_the_session_with_frame_too_long() {
    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &[]);
    let mut watcher = Raw::connect(chat.chat);
    watcher.join("watcher", "watcher password", true);
    let mut ws = Ws::connect(chat.web);
    ws.join("oversize", "oversize password");

    // Under the frame limit but over the text limit: one refused request.
    ws.send(&ClientFrame::Say {
        text: "a".repeat(5000),
        room: None,
    });
    let answer = ws.until(|frame| matches!(frame, ServerFrame::Error { .. }));
    assert_eq!(error_code(&answer), Some(ErrorCode::InvalidText));

    // Over the frame limit, as one message or in fragments: the end.
    let big = format!(
        r#"{{"type":"say","text":"{}"}}"#,
        "a".repeat(chat::MAX_FRAME)
    );
    let _ = ws.socket.send(Message::text(big));
    let bye = ws.bye();
    assert!(
        matches!(
            bye,
            Some(ServerFrame::Bye {
                code: ErrorCode::FrameTooLong,
                ..
            })
        ),
        "{bye:?}"
    );
    let left = watcher.until(|frame| matches!(frame, ServerFrame::Left { .. }));
    assert!(
        matches!(&left, ServerFrame::Left { name, reason: LeaveReason::Kicked, .. } if name == "oversize"),
        "{left:?}"
    );

    let mut fragments = Ws::connect(chat.web);
    let half = chat::MAX_FRAME / 2 + 1;
    let first = Frame::message(vec![b'a'; half], OpCode::Data(Data::Text), false);
    let rest = Frame::message(vec![b'a'; half], OpCode::Data(Data::Continue), true);
    let _ = fragments.socket.send(Message::Frame(first));
    let _ = fragments.socket.send(Message::Frame(rest));
    let bye = fragments.bye();
    assert!(
        matches!(
            bye,
            Some(ServerFrame::Bye {
                code: ErrorCode::FrameTooLong,
                ..
            })
        ),
        "{bye:?}"
    );
}

/// The first frame a TCP connection to `chat` gets.
fn first_frame(chat: SocketAddr) -> Option<ServerFrame> {
    use std::io::BufRead;
    let stream = TcpStream::connect(chat).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = Vec::new();
    std::io::BufReader::new(stream)
        .read_until(b'\n', &mut line)
        .ok()?;
    decode(line.strip_suffix(b"\n")?).ok()
}

/// A WebSocket client whose socket takes almost nothing in: a receive
/// buffer of a few KiB, so the server meets a full pipe at once.
fn tiny_window(web: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&web.into()).unwrap();
    socket.into()
}

#[test]
fn a_websocket_client_that_never_reads_is_dropped_and_others_are_unaffected() {
    let scratch = Scratch::new();
    let chat = WebChat::start(
        &scratch,
        &["--rate", "100000", "--burst", "100000", "--queue", "256"],
    );
    let mut slow = Ws::open(tiny_window(chat.web), chat.web).unwrap();
    assert!(matches!(slow.frame(), Some(ServerFrame::Hello { .. })));
    slow.join("sleeper", "sleeper password");
    let mut browser = Ws::connect(chat.web);
    browser.join("reader", "reader password");
    let mut terminal = Raw::connect(chat.chat);
    terminal.join("terminal", "terminal password", true);
    let mut talker = Raw::connect(chat.chat);
    talker.join("talker", "talker password", true);

    // The talker says a great deal, in steps the two readers keep up
    // with, until the room has left the sleeper behind.
    let text = "z".repeat(1000);
    let mut sent = 0;
    let mut dropped = false;
    while !dropped {
        assert!(sent < 40_000, "the sleeper was never dropped");
        for _ in 0..50 {
            talker.send(&ClientFrame::Say {
                text: format!("{sent} {text}"),
                room: None,
            });
            sent += 1;
        }
        for n in sent - 50..sent {
            let expected = format!("{n} {text}");
            let is_next = |frame: &ServerFrame| matches!(frame, ServerFrame::Message { text, .. } if *text == expected);
            let slow_left = |frame: &ServerFrame| matches!(frame, ServerFrame::Left { name, reason: LeaveReason::SlowConsumer, room: None, .. } if name == "sleeper");
            for reader in [0, 1] {
                let found = loop {
                    let frame = if reader == 0 {
                        browser.frame()
                    } else {
                        terminal.frame()
                    };
                    let frame = frame.expect("the readers stay connected");
                    dropped |= slow_left(&frame);
                    if is_next(&frame) {
                        break true;
                    }
                    assert!(
                        !matches!(frame, ServerFrame::Message { .. } | ServerFrame::Bye { .. }),
                        "reader {reader} expected message {n}, got {frame:?}"
                    );
                };
                assert!(found);
            }
        }
    }
    // Both readers got every message, in order; the talker too is served.
    talker.send(&ClientFrame::Ping { id: Some(1) });
    talker.until(|frame| matches!(frame, ServerFrame::Pong { id: Some(1) }));
}

#[test]
fn connection_limits_count_both_transports() {
    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &["--max-connections-per-client", "3"]);
    let _tcp = Raw::connect(chat.chat);
    let first = Ws::connect(chat.web);
    let _second = Ws::connect(chat.web);
    // The fourth, on either port, is told why in that port's words.
    match Ws::open(TcpStream::connect(chat.web).unwrap(), chat.web) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        first_frame(chat.chat).as_ref().and_then(error_code),
        Some(ErrorCode::TooManyConnections)
    );
    // A slot freed on one port is taken on the other.
    drop(first);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match first_frame(chat.chat) {
            Some(ServerFrame::Hello { .. }) => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "no slot after a WebSocket closed: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &["--max-connection-rate", "2"]);
    drop(Ws::connect(chat.web));
    drop(Raw::connect(chat.chat));
    match Ws::open(TcpStream::connect(chat.web).unwrap(), chat.web) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503 over the rate, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn floods_and_password_guessing_are_throttled_as_on_tcp() {
    let scratch = Scratch::new();
    let chat = WebChat::start(&scratch, &[]);
    let mut guesser = Ws::connect(chat.web);
    let mut last = None;
    for _ in 0..6 {
        let credentials = Credentials {
            version: PROTOCOL_VERSION,
            name: "nobody".into(),
            password: Password::new("wrong guess"),
            udp_port: None,
            key: guesser.key.public().to_base64(),
        };
        guesser.send(&ClientFrame::Login(credentials));
        last = guesser.frame();
    }
    assert_eq!(
        last.as_ref().and_then(error_code),
        Some(ErrorCode::Throttled),
        "{last:?}"
    );

    let mut flooder = Ws::connect(chat.web);
    flooder.join("flooder", "flooder password");
    for _ in 0..200 {
        if flooder
            .socket
            .send(Message::text(r#"{"type":"ping"}"#))
            .is_err()
        {
            break;
        }
    }
    let mut codes = Vec::new();
    while let Some(frame) = flooder.frame() {
        codes.extend(error_code(&frame));
    }
    assert!(codes.contains(&ErrorCode::RateLimited), "{codes:?}");
    assert_eq!(codes.last(), Some(&ErrorCode::Flooding), "{codes:?}");
}
