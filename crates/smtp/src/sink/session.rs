//! One client connection of the sink: commands in, replies out, the
//! transaction state in between.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::SinkConfig;
use super::maildir::Maildir;
use crate::data::{DataLine, unstuff};
use crate::line::{LineBuffer, LineStatus};
use crate::reply::{Reply, ReplyCode};
use crate::stream::Stream;

/// Longest command line (RFC 4954 lets AUTH lines be long).
const MAX_COMMAND_LINE: usize = 4096;
/// Longest message line. RFC 5321 says 1000, but real clients send more;
/// beyond this the message is refused, without the server buffering it.
const MAX_DATA_LINE: usize = 64 * 1024;
/// Wrong passwords before the connection is closed.
const MAX_AUTH_FAILURES: u32 = 3;
/// Unknown or malformed commands before the connection is closed.
const MAX_ERRORS: u32 = 20;

pub(super) struct Session {
    stream: Stream,
    buffer: LineBuffer,
    line: Vec<u8>,
    peer: SocketAddr,
    config: Arc<SinkConfig>,
    maildir: Arc<Maildir>,
    shutdown: CancellationToken,
    state: State,
    errors: u32,
    auth_failures: u32,
}

/// What the client has established so far.
#[derive(Debug, Default)]
struct State {
    helo: Option<String>,
    authenticated: Option<String>,
    from: Option<String>,
    recipients: Vec<String>,
}

/// How the command loop goes on after a command.
enum Next {
    Continue,
    Close,
}

impl Session {
    pub fn new(
        tcp: TcpStream,
        peer: SocketAddr,
        config: Arc<SinkConfig>,
        maildir: Arc<Maildir>,
        shutdown: CancellationToken,
    ) -> Self {
        let _ = tcp.set_nodelay(true);
        Self {
            stream: Stream::Plain(tcp),
            buffer: LineBuffer::new(),
            line: Vec::new(),
            peer,
            config,
            maildir,
            shutdown,
            state: State::default(),
            errors: 0,
            auth_failures: 0,
        }
    }

    pub async fn run(mut self) -> io::Result<()> {
        let greeting = format!("220 {} ESMTP netkit sink ready", self.config.hostname);
        self.reply(&greeting).await?;
        loop {
            let status = tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.reply("421 4.3.2 Service shutting down").await?;
                    break;
                }
                read = timeout(self.config.idle_timeout, self.buffer.read_line(&mut self.stream, MAX_COMMAND_LINE, &mut self.line)) => match read {
                    Ok(status) => status?,
                    Err(_) => {
                        self.reply("421 4.4.2 Idle for too long, closing connection").await?;
                        break;
                    }
                },
            };
            let next = match status {
                LineStatus::Closed => break,
                LineStatus::TooLong => self.error("500 5.5.2 Line too long").await?,
                LineStatus::Complete => self.command().await?,
            };
            if let Next::Close = next {
                break;
            }
        }
        let _ = timeout(self.config.idle_timeout, self.stream.shutdown()).await;
        Ok(())
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        self.write(format!("{text}\r\n").as_bytes()).await
    }

    /// Writes with the idle timeout: a client that stops reading its
    /// replies would otherwise hold its connection slot for ever.
    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        timeout(self.config.idle_timeout, write)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading its replies",
                ))
            })
    }

    /// A client error: replies, and closes after too many.
    async fn error(&mut self, text: &str) -> io::Result<Next> {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            self.reply("421 4.7.0 Too many errors, closing connection")
                .await?;
            return Ok(Next::Close);
        }
        self.reply(text).await?;
        Ok(Next::Continue)
    }

    async fn command(&mut self) -> io::Result<Next> {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" | "HELO" if arg.is_empty() => self.error("501 5.5.4 Give your host name").await,
            "EHLO" => self.ehlo(arg).await,
            "HELO" => {
                self.state = State {
                    helo: Some(arg),
                    authenticated: self.state.authenticated.take(),
                    ..State::default()
                };
                let text = format!("250 {}", self.config.hostname);
                self.reply(&text).await.map(|()| Next::Continue)
            }
            "STARTTLS" => self.starttls().await,
            "AUTH" => self.auth(&arg).await,
            "MAIL" => self.mail(&arg).await,
            "RCPT" => self.rcpt(&arg).await,
            "DATA" => self.data().await,
            "RSET" => {
                self.reset();
                self.reply("250 2.0.0 OK").await.map(|()| Next::Continue)
            }
            "NOOP" => self.reply("250 2.0.0 OK").await.map(|()| Next::Continue),
            "VRFY" => self
                .reply("252 2.5.0 Cannot verify, but will accept the message")
                .await
                .map(|()| Next::Continue),
            "HELP" => self
                .reply("214 2.0.0 EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY QUIT")
                .await
                .map(|()| Next::Continue),
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                Ok(Next::Close)
            }
            _ => self.error("500 5.5.1 Command not recognized").await,
        }
    }

    fn reset(&mut self) {
        self.state.from = None;
        self.state.recipients.clear();
    }

    async fn ehlo(&mut self, name: String) -> io::Result<Next> {
        self.state = State {
            helo: Some(name.clone()),
            authenticated: self.state.authenticated.take(),
            ..State::default()
        };
        // The name is echoed back: no control characters from the client.
        let name: String = name.chars().filter(|c| !c.is_control()).collect();
        let mut lines = vec![
            format!("{} greets {name}", self.config.hostname),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.config.tls.is_some() && !self.stream.is_tls() {
            lines.push("STARTTLS".to_owned());
        }
        // Passwords only inside TLS, as most servers are configured.
        if self.stream.is_tls() && self.state.authenticated.is_none() {
            lines.push("AUTH PLAIN".to_owned());
        }
        let reply = Reply::new(ReplyCode::OK, lines);
        let mut wire = reply.wire_lines().join("\r\n");
        wire.push_str("\r\n");
        self.write(wire.as_bytes()).await?;
        Ok(Next::Continue)
    }

    async fn starttls(&mut self) -> io::Result<Next> {
        let Some(config) = self.config.tls.clone() else {
            return self.error("502 5.5.1 STARTTLS not available").await;
        };
        if self.stream.is_tls() {
            return self.error("503 5.5.1 TLS already active").await;
        }
        self.reply("220 2.0.0 Ready to start TLS").await?;
        // Commands pipelined behind STARTTLS came in plaintext: an
        // injection attempt (RFC 3207 §6), never to be run inside TLS.
        if self.buffer.buffered() > 0 {
            warn!(peer = %self.peer, "plaintext sent after STARTTLS; closing");
            return Ok(Next::Close);
        }
        let Some(tcp) = self.stream.take_plain() else {
            return Ok(Next::Close);
        };
        let acceptor = tls::TlsAcceptor::from(config);
        match timeout(self.config.idle_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls.into()));
                if let Some(session) = self.stream.tls() {
                    debug!(peer = %self.peer, tls = %tls::describe(session), "TLS started");
                }
                self.state = State::default();
                Ok(Next::Continue)
            }
            Ok(Err(err)) => {
                debug!(peer = %self.peer, %err, "TLS handshake failed");
                Ok(Next::Close)
            }
            Err(_) => Ok(Next::Close),
        }
    }

    async fn auth(&mut self, arg: &str) -> io::Result<Next> {
        if self.state.helo.is_none() {
            return self.error("503 5.5.1 Send EHLO first").await;
        }
        if self.state.authenticated.is_some() {
            return self.error("503 5.5.1 Already authenticated").await;
        }
        if !self.stream.is_tls() {
            return self
                .error("538 5.7.11 Encryption required for requested authentication mechanism")
                .await;
        }
        let (mechanism, initial) = match arg.split_once(' ') {
            Some((mechanism, initial)) => (mechanism, Some(initial.trim().to_owned())),
            None => (arg, None),
        };
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return self
                .error("504 5.5.4 Unrecognized authentication type")
                .await;
        }
        let response = match initial {
            Some(response) => response,
            None => {
                self.reply("334 ").await?;
                let read = timeout(
                    self.config.idle_timeout,
                    self.buffer
                        .read_line(&mut self.stream, MAX_COMMAND_LINE, &mut self.line),
                )
                .await;
                match read {
                    Ok(Ok(LineStatus::Complete)) => {
                        String::from_utf8_lossy(&self.line).into_owned()
                    }
                    Ok(Ok(LineStatus::TooLong)) => {
                        return self.error("500 5.5.2 Line too long").await;
                    }
                    _ => return Ok(Next::Close),
                }
            }
        };
        if response.trim() == "*" {
            return self.error("501 5.7.0 Authentication cancelled").await;
        }
        if self.config.account.matches_plain(&response) {
            self.state.authenticated = Some(self.config.account.user.clone());
            info!(peer = %self.peer, user = %self.config.account.user, "authenticated");
            self.reply("235 2.7.0 Authentication successful").await?;
            return Ok(Next::Continue);
        }
        self.auth_failures += 1;
        warn!(peer = %self.peer, "authentication failed");
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.reply("421 4.7.0 Too many authentication failures")
                .await?;
            return Ok(Next::Close);
        }
        self.reply("535 5.7.8 Authentication credentials invalid")
            .await?;
        Ok(Next::Continue)
    }

    async fn mail(&mut self, arg: &str) -> io::Result<Next> {
        if self.state.helo.is_none() {
            return self.error("503 5.5.1 Send EHLO first").await;
        }
        if self.config.require_auth && self.state.authenticated.is_none() {
            return self.error("530 5.7.0 Authentication required").await;
        }
        if self.state.from.is_some() {
            return self.error("503 5.5.1 Sender already given").await;
        }
        let Some((path, params)) = parse_path(arg, "FROM:") else {
            return self.error("501 5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        for param in params.split_ascii_whitespace() {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if key.eq_ignore_ascii_case("SIZE") {
                match value.parse::<u64>() {
                    Ok(size) if size > self.config.max_message_size => {
                        return self
                            .error("552 5.3.4 Message size exceeds fixed limit")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.error("501 5.5.4 Bad SIZE value").await,
                }
            }
        }
        self.state.from = Some(path);
        self.reply("250 2.1.0 OK").await.map(|()| Next::Continue)
    }

    async fn rcpt(&mut self, arg: &str) -> io::Result<Next> {
        if self.state.from.is_none() {
            return self.error("503 5.5.1 Need MAIL before RCPT").await;
        }
        let Some((path, _)) = parse_path(arg, "TO:") else {
            return self.error("501 5.5.4 Syntax: RCPT TO:<address>").await;
        };
        if path.is_empty() {
            return self.error("501 5.1.3 Empty recipient").await;
        }
        if self.state.recipients.len() >= self.config.max_recipients {
            return self
                .reply("452 4.5.3 Too many recipients")
                .await
                .map(|()| Next::Continue);
        }
        self.state.recipients.push(path);
        self.reply("250 2.1.5 OK").await.map(|()| Next::Continue)
    }

    async fn data(&mut self) -> io::Result<Next> {
        let Some(from) = self.state.from.clone() else {
            return self.error("503 5.5.1 Need MAIL before DATA").await;
        };
        if self.state.recipients.is_empty() {
            return self.error("554 5.5.1 No valid recipients").await;
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let recipients = std::mem::take(&mut self.state.recipients);
        self.state.from = None;
        let mut delivery = match self.maildir.begin().await {
            Ok(delivery) => Some(delivery),
            Err(err) => {
                warn!(%err, "cannot create a message file");
                None
            }
        };
        if let Some(file) = &mut delivery {
            let header = trace_header(
                &from,
                &recipients,
                &self.state,
                &self.config.hostname,
                self.peer,
                self.stream.is_tls(),
            );
            if let Err(err) = file.write(header.as_bytes()).await {
                warn!(%err, "cannot write a message file");
                delivery = None;
            }
        }
        let mut size = 0u64;
        let mut problem: Option<&str> = None;
        // Lines may end in a bare LF, but only CRLF . CRLF ends the message.
        let mut after_crlf = true;
        loop {
            let read = timeout(
                self.config.idle_timeout,
                self.buffer
                    .read_line(&mut self.stream, MAX_DATA_LINE, &mut self.line),
            )
            .await;
            let status = match read {
                Ok(status) => status?,
                // The message is dropped (the Delivery removes its file).
                Err(_) => return Ok(Next::Close),
            };
            match status {
                LineStatus::Closed => {
                    info!(peer = %self.peer, "connection closed in the middle of DATA; message discarded");
                    return Ok(Next::Close);
                }
                LineStatus::TooLong => {
                    problem.get_or_insert("552 5.3.4 Line too long in message");
                    continue;
                }
                LineStatus::Complete => {}
            }
            let crlf = self.buffer.ended_with_crlf();
            let content = match unstuff(&self.line) {
                DataLine::End if after_crlf && crlf => break,
                DataLine::End => &self.line[..],
                DataLine::Content(content) => content,
            };
            after_crlf = crlf;
            size += content.len() as u64 + 2;
            if size > self.config.max_message_size {
                problem.get_or_insert("552 5.3.4 Message size exceeds fixed limit");
            }
            if problem.is_some() {
                continue;
            }
            if let Some(file) = &mut delivery {
                let written = async {
                    file.write(content).await?;
                    file.write(b"\r\n").await
                };
                if let Err(err) = written.await {
                    warn!(%err, "cannot write a message file");
                    delivery = None;
                }
            }
        }
        if let Some(problem) = problem {
            return self.reply(problem).await.map(|()| Next::Continue);
        }
        let Some(delivery) = delivery else {
            return self
                .reply("451 4.3.0 Cannot store the message, try again later")
                .await
                .map(|()| Next::Continue);
        };
        match delivery.commit().await {
            Ok(path) => {
                let id = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                info!(peer = %self.peer, from = %from, recipients = %recipients.join(","), size, path = %path.display(), "message stored");
                self.config.announce(&path, &from, &recipients).await;
                self.reply(&format!("250 2.0.0 OK queued as {id}")).await?;
            }
            Err(err) => {
                warn!(%err, "cannot store a message");
                self.reply("451 4.3.0 Cannot store the message, try again later")
                    .await?;
            }
        }
        Ok(Next::Continue)
    }
}

/// Splits `FROM:<path> params` (or `TO:`), tolerating a space after the
/// colon as many clients send one.
fn parse_path(arg: &str, prefix: &str) -> Option<(String, String)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let close = rest.find('>')?;
    let path = &rest[..close];
    if path.contains(|c: char| c.is_control() || c == '<') {
        return None;
    }
    Some((path.to_owned(), rest[close + 1..].trim().to_owned()))
}

/// `Return-Path` and `Received`, as a delivering server adds (RFC 5321 §4.4).
fn trace_header(
    from: &str,
    recipients: &[String],
    state: &State,
    hostname: &str,
    peer: SocketAddr,
    tls: bool,
) -> String {
    let helo = state.helo.as_deref().unwrap_or("unknown");
    let with = match (tls, state.authenticated.is_some()) {
        (true, true) => "ESMTPSA",
        (true, false) => "ESMTPS",
        (false, true) => "ESMTPA",
        (false, false) => "ESMTP",
    };
    let clean = |text: &str| text.replace(|c: char| c.is_control(), "");
    let date = mail_builder::headers::date::Date::now().to_rfc822();
    format!(
        "Return-Path: <{}>\r\nReceived: from {} ([{}])\r\n\tby {hostname} (netkit sink) with {with}\r\n\tfor <{}>; {date}\r\n",
        clean(from),
        clean(helo),
        peer.ip(),
        clean(&recipients.join(">, <")),
    )
}

#[cfg(test)]
mod tests {
    use super::parse_path;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_path_never_panics(arg in "\\PC{0,64}", prefix in prop_oneof![Just("FROM:"), Just("TO:")]) {
            if let Some((path, _)) = parse_path(&arg, prefix) {
                prop_assert!(!path.contains(['<', '\r', '\n']));
            }
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("FROM:<a@b.c> SIZE=10", "FROM:"),
            Some(("a@b.c".into(), "SIZE=10".into()))
        );
        assert_eq!(
            parse_path("from: <>", "FROM:"),
            Some((String::new(), String::new()))
        );
        assert_eq!(parse_path("TO:a@b.c", "TO:"), None);
        assert_eq!(parse_path("TO:<a@b.c", "TO:"), None);
        assert_eq!(parse_path("", "TO:"), None);
        assert_eq!(parse_path("TÖ:<x>", "TO:"), None);
    }
}
