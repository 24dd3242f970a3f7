//! The client's end of the wire: commands out, replies in, each line
//! reported to the observer, every wait bounded by the timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tls::rustls::ClientConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::error::{Error, ErrorKind, Stage};
use crate::line::{LineBuffer, LineStatus};
use crate::reply::{Reply, ReplyCode, ReplyParser};
use crate::stream::Stream;
use crate::transcript::{Event, Observer};

/// Longest reply line accepted (RFC 5321 allows 512; servers go beyond).
const MAX_REPLY_LINE: usize = 4096;

pub(crate) struct Connection<'o> {
    stream: Stream,
    buffer: LineBuffer,
    line: Vec<u8>,
    timeout: Duration,
    observer: &'o mut dyn Observer,
}

impl<'o> Connection<'o> {
    /// Connects to the first of `addrs` that answers.
    pub async fn open(
        addrs: &[SocketAddr],
        wait: Duration,
        observer: &'o mut dyn Observer,
    ) -> Result<Self, Error> {
        let fail = |kind| Error::new(Stage::Connect, kind);
        let mut last = None;
        for (i, &addr) in addrs.iter().enumerate() {
            observer.event(Event::Note(format!("Trying {addr}...")));
            let kind = match timeout(wait, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    observer.event(Event::Note(format!("Connected to {addr}.")));
                    return Ok(Self {
                        stream: Stream::Plain(tcp),
                        buffer: LineBuffer::new(),
                        line: Vec::new(),
                        timeout: wait,
                        observer,
                    });
                }
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    ErrorKind::Refused { addr }
                }
                Ok(Err(source)) => ErrorKind::Connect { addr, source },
                Err(_) => ErrorKind::Timeout(wait),
            };
            // The last failure is the caller's to report, once.
            if i + 1 < addrs.len() {
                observer.event(Event::Note(format!("{kind}")));
            }
            last = Some(kind);
        }
        Err(fail(last.unwrap_or(ErrorKind::Closed)))
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.observer.event(Event::Note(text.into()));
    }

    pub fn event(&mut self, event: Event) {
        self.observer.event(event);
    }

    /// Sends one command line, shown in the transcript as `shown`.
    pub async fn send_shown(&mut self, stage: Stage, line: &str, shown: &str) -> Result<(), Error> {
        let tls = self.is_tls();
        self.observer.event(Event::Sent {
            line: shown.to_owned(),
            tls,
        });
        self.write_all(stage, format!("{line}\r\n").as_bytes())
            .await
    }

    pub async fn send(&mut self, stage: Stage, line: &str) -> Result<(), Error> {
        self.send_shown(stage, line, line).await
    }

    /// Sends several commands in one write (PIPELINING, RFC 2920).
    pub async fn send_batch(&mut self, stage: Stage, lines: &[String]) -> Result<(), Error> {
        let tls = self.is_tls();
        let mut batch = String::new();
        for line in lines {
            self.observer.event(Event::Sent {
                line: line.clone(),
                tls,
            });
            batch.push_str(line);
            batch.push_str("\r\n");
        }
        self.write_all(stage, batch.as_bytes()).await
    }

    /// Writes raw bytes (message data) with the timeout.
    pub async fn write_all(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), Error> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Error::new(stage, io_kind(err))),
            Err(_) => Err(Error::new(stage, ErrorKind::Timeout(self.timeout))),
        }
    }

    /// Reads one whole reply, however many lines it has.
    pub async fn read_reply(&mut self, stage: Stage) -> Result<Reply, Error> {
        let wait = self.timeout;
        match timeout(wait, self.read_reply_lines(stage)).await {
            Ok(reply) => reply,
            Err(_) => Err(Error::new(stage, ErrorKind::Timeout(wait))),
        }
    }

    async fn read_reply_lines(&mut self, stage: Stage) -> Result<Reply, Error> {
        let mut parser = ReplyParser::new();
        loop {
            let status = self
                .buffer
                .read_line(&mut self.stream, MAX_REPLY_LINE, &mut self.line)
                .await
                .map_err(|err| Error::new(stage, io_kind(err)))?;
            match status {
                LineStatus::Complete => {}
                LineStatus::TooLong => {
                    return Err(Error::new(stage, ErrorKind::LineTooLong(MAX_REPLY_LINE)));
                }
                LineStatus::Closed => return Err(Error::new(stage, ErrorKind::Closed)),
            }
            let tls = self.is_tls();
            self.observer.event(Event::Received {
                line: String::from_utf8_lossy(&self.line).into_owned(),
                tls,
            });
            if let Some(reply) = parser
                .push(&self.line)
                .map_err(|err| Error::new(stage, err.into()))?
            {
                return Ok(reply);
            }
        }
    }

    /// Sends a command and requires a reply with code `expected`.
    pub async fn command(
        &mut self,
        stage: Stage,
        line: &str,
        expected: ReplyCode,
    ) -> Result<Reply, Error> {
        self.send(stage, line).await?;
        self.expect(stage, line, expected).await
    }

    /// Reads a reply and requires code `expected`; `command` names what
    /// was answered in the error.
    pub async fn expect(
        &mut self,
        stage: Stage,
        command: &str,
        expected: ReplyCode,
    ) -> Result<Reply, Error> {
        let reply = self.read_reply(stage).await?;
        if reply.code == expected {
            Ok(reply)
        } else {
            Err(rejected(stage, command, reply))
        }
    }

    /// Upgrades the connection to TLS (after a 220 to STARTTLS, or at once
    /// for implicit TLS) and reports the session and the certificate.
    pub async fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        host: &str,
        verified: bool,
    ) -> Result<(), Error> {
        let fail = |kind| Error::new(Stage::Tls, kind);
        // Anything already buffered was sent before the handshake, in
        // plaintext, by someone who may not be the server (RFC 3207 §6).
        if self.buffer.buffered() > 0 {
            return Err(fail(ErrorKind::StartTlsInjection));
        }
        let name = tls::server_name(host).map_err(|err| fail(err.into()))?;
        let tcp = self
            .stream
            .take_plain()
            .ok_or_else(|| fail(ErrorKind::Closed))?;
        let connector = tls::TlsConnector::from(config);
        let handshake = timeout(self.timeout, connector.connect(name, tcp));
        let tls = match handshake.await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => return Err(fail(handshake_error(err))),
            Err(_) => return Err(fail(ErrorKind::Timeout(self.timeout))),
        };
        let (_, session) = tls.get_ref();
        let described = tls::describe(session);
        let certificate = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| describe_certificate(cert.as_ref()));
        self.stream = Stream::Tls(Box::new(tls.into()));
        self.note(format!("TLS started with {described}"));
        let (version, cipher) = described.split_once(' ').unwrap_or((&described, ""));
        self.event(Event::TlsStarted {
            version: version.to_owned(),
            cipher: cipher.to_owned(),
        });
        if let Some(certificate) = certificate {
            let trust = if verified {
                "verified"
            } else {
                "NOT verified (--insecure)"
            };
            self.note(format!("TLS peer certificate {trust}: {certificate}"));
        }
        Ok(())
    }

    /// Ends the session politely; failures here change nothing for the user.
    pub async fn quit(&mut self) -> Option<Reply> {
        self.event(Event::Quit);
        self.send(Stage::Message, "QUIT").await.ok()?;
        let reply = self.read_reply(Stage::Message).await.ok();
        let _ = timeout(self.timeout, self.stream.shutdown()).await;
        reply
    }
}

pub(crate) fn rejected(stage: Stage, command: &str, reply: Reply) -> Error {
    Error::new(
        stage,
        ErrorKind::Rejected {
            command: command.to_owned(),
            reply,
        },
    )
}

fn io_kind(err: std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match err.kind() {
        Io::UnexpectedEof | Io::ConnectionReset | Io::BrokenPipe | Io::ConnectionAborted => {
            ErrorKind::Closed
        }
        _ => ErrorKind::Io(err),
    }
}

/// A certificate that does not verify is told apart from other handshake
/// failures, since the user can do something about it.
fn handshake_error(err: std::io::Error) -> ErrorKind {
    let certificate = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<tls::rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                tls::rustls::Error::InvalidCertificate(_)
                    | tls::rustls::Error::NoCertificatesPresented
            )
        });
    if certificate {
        ErrorKind::Certificate(err)
    } else {
        ErrorKind::Handshake(err)
    }
}

/// `subject CN=mx.example, issuer CN=Example CA, expires 2027-01-01`.
fn describe_certificate(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let expires = cert.validity().not_after.to_datetime().date();
            format!(
                "subject {}, issuer {}, expires {expires}",
                cert.subject(),
                cert.issuer()
            )
        }
        Err(_) => "(certificate not readable)".to_owned(),
    }
}
