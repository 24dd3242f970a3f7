//! One client connection of the sink: commands in, replies out, the
//! transaction state in between.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use listener::Connection;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::SinkConfig;
use super::answer::Answer;
use super::maildir::Maildir;
use crate::command::{Command, CommandError, Verb, parse_command};
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
    /// Idle between commands; its `closing` is shutdown or reclaim.
    connection: Connection,
    shutdown: CancellationToken,
    state: State,
    errors: u32,
    auth_failures: u32,
    /// Transfers begun in this session, for `max_messages`.
    messages: usize,
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
        connection: Connection,
        config: Arc<SinkConfig>,
        maildir: Arc<Maildir>,
    ) -> Self {
        let _ = tcp.set_nodelay(true);
        Self {
            stream: Stream::Plain(tcp),
            buffer: LineBuffer::new(),
            line: Vec::new(),
            peer: connection.peer(),
            config,
            maildir,
            shutdown: connection.closing(),
            connection,
            state: State::default(),
            errors: 0,
            auth_failures: 0,
            messages: 0,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub async fn run(mut self) -> io::Result<()> {
        let greeting = Reply::new(
            ReplyCode::SERVICE_READY,
            vec![format!("{} ESMTP netkit sink ready", self.config.hostname)],
        );
        self.reply(&greeting).await?;
        loop {
            self.connection.idle();
            let status = tokio::select! {
                _ = self.shutdown.cancelled() => {
                    let why = if self.connection.is_reclaimed() {
                        Answer::IdleReclaimed
                    } else {
                        Answer::ShuttingDown
                    };
                    self.answer(why).await?;
                    break;
                }
                read = timeout(self.config.idle_timeout, self.buffer.read_line(&mut self.stream, MAX_COMMAND_LINE, &mut self.line)) => match read {
                    Ok(status) => status?,
                    Err(_) => {
                        self.answer(Answer::IdleTooLong).await?;
                        break;
                    }
                },
            };
            self.connection.active();
            let next = match status {
                LineStatus::Closed => break,
                LineStatus::TooLong => self.error(Answer::LineTooLong).await?,
                LineStatus::Complete => {
                    let parsed = parse_command(&self.line);
                    self.command(parsed).await?
                }
            };
            if let Next::Close = next {
                break;
            }
        }
        let _ = timeout(self.config.idle_timeout, self.stream.shutdown()).await;
        Ok(())
    }

    async fn answer(&mut self, answer: Answer) -> io::Result<()> {
        self.reply(&answer.reply()).await
    }

    /// Answers and goes on with the next command.
    async fn carry_on(&mut self, answer: Answer) -> io::Result<Next> {
        self.answer(answer).await.map(|()| Next::Continue)
    }

    /// Answers and closes the connection.
    async fn close_with(&mut self, answer: Answer) -> io::Result<Next> {
        self.answer(answer).await.map(|()| Next::Close)
    }

    async fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        self.write(reply.to_wire().as_bytes()).await
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
    async fn error(&mut self, answer: Answer) -> io::Result<Next> {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            return self.close_with(Answer::TooManyErrors).await;
        }
        self.carry_on(answer).await
    }

    async fn command(&mut self, parsed: Result<Command, CommandError>) -> io::Result<Next> {
        // Whether a command may come now is answered before whether its
        // arguments are right.
        let verb = match &parsed {
            Ok(command) => Some(command.verb()),
            Err(err) => err.verb(),
        };
        if let Some(answer) = verb.and_then(|verb| self.out_of_sequence(verb)) {
            return self.error(answer).await;
        }
        let command = match parsed {
            Ok(command) => command,
            Err(err) => {
                let answer = match err {
                    CommandError::Unknown => Answer::NotRecognized,
                    CommandError::MissingHostName(_) => Answer::NeedHostName,
                    CommandError::BadPath(Verb::Rcpt) => Answer::RcptSyntax,
                    CommandError::BadPath(_) => Answer::MailSyntax,
                    CommandError::BadSize => Answer::BadSize,
                };
                return self.error(answer).await;
            }
        };
        match command {
            Command::Ehlo(name) => self.ehlo(name).await,
            Command::Helo(name) => {
                self.state = State {
                    helo: Some(name),
                    authenticated: self.state.authenticated.take(),
                    ..State::default()
                };
                let reply = Reply::new(ReplyCode::OK, vec![self.config.hostname.clone()]);
                self.reply(&reply).await.map(|()| Next::Continue)
            }
            Command::StartTls => self.starttls().await,
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial).await,
            Command::Mail { path, size, .. } => self.mail(path, size).await,
            Command::Rcpt { path, .. } => self.rcpt(path).await,
            Command::Data => self.data().await,
            Command::Rset => {
                self.reset();
                self.carry_on(Answer::Ok).await
            }
            Command::Noop => self.carry_on(Answer::Ok).await,
            Command::Vrfy(_) => self.carry_on(Answer::CannotVerify).await,
            Command::Help => self.carry_on(Answer::Help).await,
            Command::Quit => self.close_with(Answer::Bye).await,
        }
    }

    /// Why `verb` may not come at this point of the session, if it may not.
    fn out_of_sequence(&self, verb: Verb) -> Option<Answer> {
        let state = &self.state;
        match verb {
            Verb::StartTls if self.config.tls.is_none() => Some(Answer::NoStartTls),
            Verb::StartTls if self.stream.is_tls() => Some(Answer::TlsActive),
            Verb::Auth | Verb::Mail if state.helo.is_none() => Some(Answer::SendEhloFirst),
            Verb::Auth if state.authenticated.is_some() => Some(Answer::AlreadyAuthenticated),
            Verb::Auth if !self.stream.is_tls() => Some(Answer::EncryptionRequired),
            Verb::Mail if self.config.require_auth && state.authenticated.is_none() => {
                Some(Answer::AuthRequired)
            }
            Verb::Mail if state.from.is_some() => Some(Answer::SenderGiven),
            Verb::Rcpt if state.from.is_none() => Some(Answer::NeedMail),
            Verb::Data if state.from.is_none() => Some(Answer::NeedMailBeforeData),
            Verb::Data if state.recipients.is_empty() => Some(Answer::NoRecipients),
            _ => None,
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
        self.reply(&Reply::new(ReplyCode::OK, lines)).await?;
        Ok(Next::Continue)
    }

    async fn starttls(&mut self) -> io::Result<Next> {
        let Some(config) = self.config.tls.clone() else {
            return self.error(Answer::NoStartTls).await;
        };
        self.answer(Answer::ReadyForTls).await?;
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

    async fn auth(&mut self, mechanism: &str, initial: Option<String>) -> io::Result<Next> {
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return self.error(Answer::UnknownMechanism).await;
        }
        let response = match initial {
            Some(response) => response,
            None => {
                self.answer(Answer::AuthContinue).await?;
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
                    Ok(Ok(LineStatus::TooLong)) => return self.error(Answer::LineTooLong).await,
                    _ => return Ok(Next::Close),
                }
            }
        };
        if response.trim() == "*" {
            return self.error(Answer::AuthCancelled).await;
        }
        if self.config.account.matches_plain(&response) {
            self.state.authenticated = Some(self.config.account.user.clone());
            info!(peer = %self.peer, user = %self.config.account.user, "authenticated");
            return self.carry_on(Answer::AuthSuccessful).await;
        }
        self.auth_failures += 1;
        warn!(peer = %self.peer, "authentication failed");
        if self.auth_failures >= MAX_AUTH_FAILURES {
            return self.close_with(Answer::TooManyAuthFailures).await;
        }
        self.carry_on(Answer::AuthInvalid).await
    }

    async fn mail(&mut self, path: String, size: Option<u64>) -> io::Result<Next> {
        if size.is_some_and(|size| size > self.config.max_message_size) {
            return self.error(Answer::TooBig).await;
        }
        if self.messages >= self.config.max_messages {
            info!(peer = %self.peer, messages = self.messages, "message limit of the session reached");
            return self.close_with(Answer::TooManyMessages).await;
        }
        self.state.from = Some(path);
        self.carry_on(Answer::SenderOk).await
    }

    async fn rcpt(&mut self, path: String) -> io::Result<Next> {
        if path.is_empty() {
            return self.error(Answer::EmptyRecipient).await;
        }
        if self.state.recipients.len() >= self.config.max_recipients {
            return self.carry_on(Answer::TooManyRecipients).await;
        }
        self.state.recipients.push(path);
        self.carry_on(Answer::RecipientOk).await
    }

    async fn data(&mut self) -> io::Result<Next> {
        let Some(from) = self.state.from.take() else {
            return self.error(Answer::NeedMailBeforeData).await;
        };
        self.answer(Answer::StartData).await?;
        self.messages += 1;
        let recipients = std::mem::take(&mut self.state.recipients);
        let mut delivery = Some(self.maildir.begin());
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
        // However busy the client keeps it, the transfer ends by then.
        let deadline = Instant::now() + self.config.data_timeout;
        let mut size = 0u64;
        let mut problem: Option<Answer> = None;
        // Lines may end in a bare LF, but only CRLF . CRLF ends the message.
        let mut after_crlf = true;
        loop {
            let wait = self
                .config
                .idle_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let read = timeout(
                wait,
                self.buffer
                    .read_line(&mut self.stream, MAX_DATA_LINE, &mut self.line),
            )
            .await;
            // Either way the message is dropped (the Delivery removes its file).
            let status = match read {
                Ok(status) => status?,
                Err(_) if Instant::now() >= deadline => {
                    info!(peer = %self.peer, limit = ?self.config.data_timeout, "message transfer too long; message discarded");
                    return self.close_with(Answer::TransferTooLong).await;
                }
                Err(_) => return Ok(Next::Close),
            };
            match status {
                LineStatus::Closed => {
                    info!(peer = %self.peer, "connection closed in the middle of DATA; message discarded");
                    return Ok(Next::Close);
                }
                LineStatus::TooLong => {
                    problem.get_or_insert(Answer::DataLineTooLong);
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
                problem.get_or_insert(Answer::TooBig);
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
            return self.carry_on(problem).await;
        }
        let Some(delivery) = delivery else {
            return self.carry_on(Answer::CannotStore).await;
        };
        match delivery.commit().await {
            Ok(committed) => {
                let path = committed.path.clone();
                let id = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                info!(peer = %self.peer, from = %from, recipients = %recipients.join(","), size, path = %path.display(), "message stored");
                self.config.announce(committed, &from, &recipients).await;
                let queued = Reply::enhanced(ReplyCode::OK, "2.0.0", &format!("OK queued as {id}"));
                self.reply(&queued).await?;
            }
            Err(err) => {
                warn!(%err, "cannot store a message");
                self.answer(Answer::CannotStore).await?;
            }
        }
        Ok(Next::Continue)
    }
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
