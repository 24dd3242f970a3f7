//! The client session, one stage after another as RFC 5321 §3 lays them
//! out: greeting, EHLO (or HELO), STARTTLS and EHLO again, AUTH, MAIL, one
//! RCPT per recipient, DATA, the message, QUIT.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::address::Mailbox;
use crate::auth::Credentials;
use crate::capabilities::{Capabilities, Mechanism};
use crate::connection::{Connection, rejected};
use crate::data::DotStuffer;
use crate::error::{Error, ErrorKind, Stage};
use crate::message::Message;
use crate::reply::{Reply, ReplyCode};
use crate::transcript::{Event, MASK, Observer};

/// How often the observer hears about DATA progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// When to use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS whenever the server offers it.
    Opportunistic,
    /// STARTTLS, and fail if the server does not offer it.
    RequireStartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// Never TLS.
    Plaintext,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `None`: the first of PLAIN, LOGIN that the server offers.
    pub mechanism: Option<Mechanism>,
    pub credentials: Credentials,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The name this client gives in EHLO.
    pub helo_name: String,
    pub security: Security,
    pub tls: tls::ClientOptions,
    pub auth: Option<AuthConfig>,
    pub allow_plaintext_auth: bool,
    /// Bounds connecting and each wait for a reply or a write.
    pub timeout: Duration,
    /// Report each message line as it is sent.
    pub show_body: bool,
}

/// Where to connect: the name to verify the certificate against, and its
/// addresses.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: Mailbox,
    pub recipients: Vec<Mailbox>,
}

/// What happened to each recipient, and the server's final word.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub accepted: Vec<Mailbox>,
    pub rejected: Vec<(Mailbox, Reply)>,
    /// The reply to the end of the message (250 and usually a queue id).
    pub reply: Reply,
}

impl Delivery {
    /// The server's name for the message, when its final reply gives one
    /// in a common form: `queued as ID` (Postfix, aiosmtpd, netkit),
    /// `id=ID` (Exim).
    pub fn queue_id(&self) -> Option<String> {
        let text = self.reply.text();
        let token = |rest: &str| {
            rest.split_whitespace()
                .next()
                .map(|id| id.trim_end_matches([',', ';', ')']).to_owned())
                .filter(|id| !id.is_empty())
        };
        let lower = text.to_ascii_lowercase();
        if let Some(at) = lower.find("queued as ") {
            return token(&text[at + "queued as ".len()..]);
        }
        // `id=` as a word of its own, not the end of `valid=`.
        let at = format!(" {lower}").find(" id=")?;
        token(&text[at + "id=".len()..])
    }
}

/// Runs one whole session. On a reply it did not want, it says QUIT
/// before returning the error.
pub async fn send(
    server: &Server,
    config: &ClientConfig,
    envelope: &Envelope,
    message: &Message,
    observer: &mut dyn Observer,
) -> Result<Delivery, Error> {
    observer.event(Event::Stage(Stage::Connect));
    let mut connection = Connection::open(&server.addrs, config.timeout, observer).await?;
    let mut session = Session {
        connection: &mut connection,
        config,
        server,
    };
    let result = session.run(envelope, message).await;
    if let Err(err) = &result
        && err.connection_usable()
    {
        connection.quit().await;
    }
    result
}

struct Session<'s, 'o> {
    connection: &'s mut Connection<'o>,
    config: &'s ClientConfig,
    server: &'s Server,
}

impl Session<'_, '_> {
    async fn run(&mut self, envelope: &Envelope, message: &Message) -> Result<Delivery, Error> {
        if self.config.security == Security::Implicit {
            self.connection.event(Event::Stage(Stage::Tls));
            self.start_tls().await?;
        }
        self.connection.event(Event::Stage(Stage::Greeting));
        self.connection
            .expect(Stage::Greeting, "the connection", ReplyCode::SERVICE_READY)
            .await?;
        let mut caps = self.hello().await?;
        if !self.connection.is_tls() {
            caps = self.maybe_starttls(caps).await?;
        }
        if let Some(auth) = &self.config.auth {
            self.authenticate(&caps, auth).await?;
        }
        let (accepted, rejected) = self.envelope(&caps, envelope, message).await?;
        self.connection.event(Event::Stage(Stage::Data));
        self.connection
            .command(Stage::Data, "DATA", ReplyCode::START_DATA)
            .await?;
        let reply = self.data(message).await?;
        if self.connection.quit().await.is_none() {
            self.connection
                .note("the server did not answer QUIT; the message was already accepted");
        }
        Ok(Delivery {
            accepted,
            rejected,
            reply,
        })
    }

    /// EHLO, or HELO when the server does not know EHLO (RFC 5321 §3.2;
    /// §4.1.4 names the replies such a server gives: 500, 501, 502, 550).
    async fn hello(&mut self) -> Result<Capabilities, Error> {
        self.connection.event(Event::Stage(Stage::Ehlo));
        let ehlo = format!("EHLO {}", self.config.helo_name);
        self.connection.send(Stage::Ehlo, &ehlo).await?;
        let reply = self.connection.read_reply(Stage::Ehlo).await?;
        if reply.code == ReplyCode::OK {
            return Ok(Capabilities::from_ehlo(&reply));
        }
        if !matches!(reply.code.value(), 500 | 501 | 502 | 504 | 550) {
            return Err(rejected(Stage::Ehlo, &ehlo, reply));
        }
        let helo = format!("HELO {}", self.config.helo_name);
        self.connection
            .command(Stage::Ehlo, &helo, ReplyCode::OK)
            .await?;
        Ok(Capabilities::none())
    }

    async fn maybe_starttls(&mut self, caps: Capabilities) -> Result<Capabilities, Error> {
        match self.config.security {
            Security::Plaintext | Security::Implicit => return Ok(caps),
            Security::RequireStartTls if !caps.starttls => {
                return Err(Error::new(Stage::Tls, ErrorKind::NoStartTls));
            }
            Security::Opportunistic if !caps.starttls => {
                self.connection
                    .note("the server does not offer STARTTLS: going on without encryption");
                return Ok(caps);
            }
            _ => {}
        }
        self.connection.event(Event::Stage(Stage::Tls));
        self.connection
            .command(Stage::Tls, "STARTTLS", ReplyCode::SERVICE_READY)
            .await?;
        self.start_tls().await?;
        // What the server said before TLS is forgotten (RFC 3207 §4.2).
        self.hello().await
    }

    async fn start_tls(&mut self) -> Result<(), Error> {
        let config = tls::client_config(&self.config.tls, &[])
            .map_err(|err| Error::new(Stage::Tls, err.into()))?;
        self.connection
            .start_tls(config, &self.server.host, !self.config.tls.insecure)
            .await
    }

    async fn authenticate(&mut self, caps: &Capabilities, auth: &AuthConfig) -> Result<(), Error> {
        self.connection.event(Event::Stage(Stage::Auth));
        let fail = |kind| Error::new(Stage::Auth, kind);
        if !self.connection.is_tls() && !self.config.allow_plaintext_auth {
            return Err(fail(ErrorKind::PlaintextAuth));
        }
        if caps.auth.is_empty() {
            return Err(fail(ErrorKind::NoAuth));
        }
        let offered = caps.auth.join(" ");
        let mechanism = match auth.mechanism {
            Some(wanted) if caps.offers(wanted) => wanted,
            Some(wanted) => {
                return Err(fail(ErrorKind::MechanismNotOffered {
                    wanted: wanted.to_string(),
                    offered,
                }));
            }
            None => Mechanism::PREFERRED
                .into_iter()
                .find(|&m| caps.offers(m))
                .ok_or_else(|| fail(ErrorKind::NoSupportedMechanism { offered }))?,
        };
        let creds = &auth.credentials;
        let command = format!("AUTH {mechanism}");
        let reply = match mechanism {
            Mechanism::Plain => {
                let line = format!("AUTH PLAIN {}", creds.plain());
                self.connection
                    .send_shown(Stage::Auth, &line, &format!("AUTH PLAIN {MASK}"))
                    .await?;
                self.connection.read_reply(Stage::Auth).await?
            }
            Mechanism::Login => {
                self.connection
                    .command(Stage::Auth, &command, ReplyCode::AUTH_CONTINUE)
                    .await?;
                let user = creds.login_user();
                self.connection.send(Stage::Auth, &user).await?;
                self.connection
                    .expect(Stage::Auth, &command, ReplyCode::AUTH_CONTINUE)
                    .await?;
                self.connection
                    .send_shown(Stage::Auth, &creds.login_password(), MASK)
                    .await?;
                self.connection.read_reply(Stage::Auth).await?
            }
        };
        if reply.code != ReplyCode::AUTH_SUCCESSFUL {
            return Err(rejected(Stage::Auth, &command, reply));
        }
        Ok(())
    }

    /// MAIL and the RCPTs, in one batch when the server allows PIPELINING
    /// (RFC 2920: replies come back in the order of the commands).
    async fn envelope(
        &mut self,
        caps: &Capabilities,
        envelope: &Envelope,
        message: &Message,
    ) -> Result<(Vec<Mailbox>, Vec<(Mailbox, Reply)>), Error> {
        self.connection.event(Event::Stage(Stage::Mail));
        if let Some(limit) = caps.size_limit()
            && message.size() > limit
        {
            return Err(Error::new(
                Stage::Mail,
                ErrorKind::TooBig {
                    size: message.size(),
                    limit,
                },
            ));
        }
        let utf8 = !envelope.from.is_ascii() || envelope.recipients.iter().any(|r| !r.is_ascii());
        if utf8 && !caps.smtputf8 {
            return Err(Error::new(Stage::Mail, ErrorKind::NeedsSmtpUtf8));
        }
        let mut mail = format!("MAIL FROM:<{}>", envelope.from.address);
        if caps.size.is_some() {
            mail.push_str(&format!(" SIZE={}", message.size()));
        }
        // RFC 6152: say so when the message is not 7-bit (non-ASCII
        // addresses in its headers, or bytes given as they are).
        if message.is_8bit() && caps.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| format!("RCPT TO:<{}>", r.address))
            .collect();

        let (mail_reply, rcpt_replies) = if caps.pipelining {
            let mut batch = vec![mail.clone()];
            batch.extend(rcpts.iter().cloned());
            self.connection.send_batch(Stage::Mail, &batch).await?;
            let mail_reply = self.connection.read_reply(Stage::Mail).await?;
            if mail_reply.code == ReplyCode::SERVICE_NOT_AVAILABLE {
                return Err(rejected(Stage::Mail, &mail, mail_reply));
            }
            self.connection.event(Event::Stage(Stage::Rcpt));
            let mut replies = Vec::with_capacity(rcpts.len());
            for rcpt in &rcpts {
                let reply = match self.connection.read_reply(Stage::Rcpt).await {
                    Ok(reply) => reply,
                    // The refused MAIL is what went wrong, not the lost RCPTs.
                    Err(_) if mail_reply.code != ReplyCode::OK => {
                        return Err(rejected(Stage::Mail, &mail, mail_reply));
                    }
                    Err(err) => return Err(err),
                };
                if reply.code == ReplyCode::SERVICE_NOT_AVAILABLE {
                    return Err(rejected(Stage::Rcpt, rcpt, reply));
                }
                replies.push(reply);
            }
            (mail_reply, replies)
        } else {
            self.connection.send(Stage::Mail, &mail).await?;
            let mail_reply = self.connection.read_reply(Stage::Mail).await?;
            if mail_reply.code != ReplyCode::OK {
                return Err(rejected(Stage::Mail, &mail, mail_reply));
            }
            self.connection.event(Event::Stage(Stage::Rcpt));
            let mut replies = Vec::with_capacity(rcpts.len());
            for rcpt in &rcpts {
                self.connection.send(Stage::Rcpt, rcpt).await?;
                let reply = self.connection.read_reply(Stage::Rcpt).await?;
                if reply.code == ReplyCode::SERVICE_NOT_AVAILABLE {
                    return Err(rejected(Stage::Rcpt, rcpt, reply));
                }
                replies.push(reply);
            }
            (mail_reply, replies)
        };
        if mail_reply.code != ReplyCode::OK {
            return Err(rejected(Stage::Mail, &mail, mail_reply));
        }

        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for (recipient, reply) in envelope.recipients.iter().zip(rcpt_replies) {
            // 251: not local, will forward (RFC 5321 §3.4).
            if matches!(reply.code.value(), 250 | 251) {
                accepted.push(recipient.clone());
            } else {
                self.connection.event(Event::Warning(format!(
                    "recipient {} refused: {reply}",
                    recipient.address
                )));
                refused.push((recipient.clone(), reply));
            }
        }
        if accepted.is_empty() {
            let last = refused.pop().map(|(_, reply)| reply);
            return Err(match last {
                Some(reply) if envelope.recipients.len() == 1 => {
                    rejected(Stage::Rcpt, &rcpts[0], reply)
                }
                _ => Error::new(Stage::Rcpt, ErrorKind::NoRecipients),
            });
        }
        Ok((accepted, refused))
    }

    /// Streams the message, dot-stuffed, then `.` and the server's verdict.
    async fn data(&mut self, message: &Message) -> Result<Reply, Error> {
        let stage = Stage::Message;
        self.connection.event(Event::Stage(stage));
        let total = message.size();
        let show = self.config.show_body;
        let tls = self.connection.is_tls();
        let mut chunks = message.chunks();
        let mut stuffer = DotStuffer::new();
        let mut wire = Vec::new();
        let mut shown = LineSplitter::default();
        let mut sent = 0u64;
        let mut reported = Instant::now();
        self.connection.event(Event::Progress { sent, total });
        loop {
            let chunk = chunks.next().await.map_err(|(path, source)| {
                Error::new(stage, ErrorKind::ReadFile { path, source })
            })?;
            wire.clear();
            let Some(chunk) = chunk else { break };
            sent += chunk.len() as u64;
            stuffer.encode(chunk, &mut wire);
            if show {
                shown.lines(&wire, |line| {
                    self.connection.event(Event::Sent { line, tls });
                });
            }
            self.connection.write_all(stage, &wire).await?;
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                self.connection.event(Event::Progress { sent, total });
            }
        }
        stuffer.finish(&mut wire);
        if show {
            shown.lines(&wire, |line| {
                self.connection.event(Event::Sent { line, tls });
            });
        } else {
            self.connection
                .note(format!("message body of {total} bytes sent (hidden)"));
            self.connection.event(Event::Sent {
                line: ".".to_owned(),
                tls,
            });
        }
        self.connection.write_all(stage, &wire).await?;
        self.connection
            .event(Event::Progress { sent: total, total });
        self.connection
            .expect(stage, "the message", ReplyCode::OK)
            .await
    }
}

/// Cuts DATA bytes into transcript lines across chunk boundaries.
#[derive(Debug, Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    fn lines(&mut self, bytes: &[u8], mut each: impl FnMut(String)) {
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..at]);
            if self.partial.last() == Some(&b'\r') {
                self.partial.pop();
            }
            each(String::from_utf8_lossy(&self.partial).into_owned());
            self.partial.clear();
            rest = &rest[at + 1..];
        }
        self.partial.extend_from_slice(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(text: &str) -> Delivery {
        Delivery {
            accepted: Vec::new(),
            rejected: Vec::new(),
            reply: Reply::new(ReplyCode::OK, vec![text.to_owned()]),
        }
    }

    #[test]
    fn queue_ids_in_the_common_forms() {
        for (text, id) in [
            ("2.0.0 Ok: queued as 4Xk2Jq1Zz3z9", Some("4Xk2Jq1Zz3z9")),
            (
                "2.0.0 OK queued as 1796.M5P4Q0.localhost",
                Some("1796.M5P4Q0.localhost"),
            ),
            ("OK id=1uJZ5e-0004Qb-2R", Some("1uJZ5e-0004Qb-2R")),
            ("2.0.0 Ok: queued as ABC123, thanks", Some("ABC123")),
            ("2.0.0 OK", None),
            ("queued as", None),
            ("2.0.0 OK valid=yes", None),
        ] {
            assert_eq!(delivery(text).queue_id().as_deref(), id, "{text}");
        }
    }
}
