use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use inbox::{Inbox, WebConfig, WebServer};
use serde_json::Value;
use smtp::sink::{Sink, SinkConfig};
use smtp::{
    AuthConfig, ClientConfig, Credentials, Draft, Envelope, Event, Password, Security, Server,
};
use tokio_util::sync::CancellationToken;

const SUBJECT: &str = "netkit demo: grüße";
const ATTACHMENT: &[u8] = b"%PDF-1.4 not really a PDF\n";

pub async fn check() -> anyhow::Result<String> {
    let dir = TempDir::new()?;
    let identity = tls::SelfSigned::generate(&[])?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &identity.cert_pem)?;
    std::fs::write(&key, &identity.key_pem)?;
    let account = Credentials {
        user: "demo".into(),
        password: Password::new("demo-password".into()),
    };
    let mut config = SinkConfig::new(account.clone());
    config.require_auth = true;
    config.tls = Some(tls::server_config(
        &tls::Identity::Files {
            cert: cert.clone(),
            key,
        },
        &[],
    )?);
    let maildir = dir.path().join("maildir");
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let inbox = {
        let maildir = maildir.clone();
        tokio::task::spawn_blocking(move || Inbox::open(&maildir, None)).await??
    };
    config.on_stored = Some(inbox.indexer());
    let web = WebServer::bind(loopback, inbox, WebConfig::default()).await?;
    let web_url = web.url();
    let sink = Sink::bind(loopback, maildir.clone(), config).await?;
    let addr = sink.local_addr();
    let token = CancellationToken::new();
    let server = tokio::spawn(sink.run(token.clone()));
    let web_server = tokio::spawn(web.run(token.clone()));
    let stop = token.drop_guard();

    let report = dir.path().join("report.pdf");
    std::fs::write(&report, ATTACHMENT)?;
    let text = "Hello from netkit.\n.A line that starts with a dot.\n";
    let message = Draft {
        from: Some("Demo <demo@example.org>".parse()?),
        to: vec!["you@example.org".parse()?],
        subject: Some(SUBJECT.into()),
        text: Some(text.into()),
        html: Some("<p>Hello from <b>netkit</b>.</p>".into()),
        attachments: vec![report],
        ..Draft::default()
    }
    .compose()?;
    let client = ClientConfig {
        helo_name: "demo.localhost".into(),
        security: Security::RequireStartTls,
        tls: tls::ClientOptions {
            insecure: false,
            ca_file: Some(cert),
        },
        auth: Some(AuthConfig {
            mechanism: None,
            credentials: account,
        }),
        allow_plaintext_auth: false,
        timeout: Duration::from_secs(5),
        show_body: false,
    };
    let envelope = Envelope {
        from: "demo@example.org".parse()?,
        recipients: vec!["you@example.org".parse()?],
    };
    let mut tls_used = None;
    let mut observer = |event: Event| {
        if let Event::Note(note) = event
            && let Some(described) = note.strip_prefix("TLS started with ")
        {
            tls_used = Some(described.to_owned());
        }
    };
    let server_addr = Server {
        host: "localhost".into(),
        addrs: vec![addr],
    };
    smtp::send(&server_addr, &client, &envelope, &message, &mut observer)
        .await
        .context("sending through the sink")?;

    let stored = stored_message(&maildir.join("new"))?;
    ensure!(
        stored.contains("Subject: =?utf-8?"),
        "stored message has no encoded subject"
    );
    ensure!(
        stored.contains("multipart/alternative") && stored.contains("filename=\"report.pdf\""),
        "stored message lacks its HTML part or attachment"
    );
    read_back(&web_url, &stored, text).await?;
    drop(stop);
    server.await?;
    web_server.await?;
    Ok(format!(
        "sink {addr}: text+HTML+attachment sent over STARTTLS ({}) with AUTH PLAIN, stored in the maildir, read back from the inbox API at {web_url}",
        tls_used.unwrap_or_else(|| "TLS".into())
    ))
}

/// Reads the message back through the inbox's API: the raw download must
/// be the stored file byte for byte, and the parsed message what was sent.
async fn read_back(web_url: &str, stored: &str, text: &str) -> anyhow::Result<()> {
    let client = web::Client::new(web::ClientConfig::default())?;
    let get = |path: String| {
        let client = &client;
        async move {
            let url = web::Client::parse_url(&format!("{web_url}{path}"))?;
            let response = client
                .send(web::ClientRequest::get(url), &mut |_| {})
                .await
                .with_context(|| format!("GET {path} from the inbox"))?;
            ensure!(response.status == 200, "GET {path}: {}", response.status);
            anyhow::Ok(response.bytes().await?)
        }
    };
    let listing: Value = serde_json::from_slice(&get("api/v1/messages".into()).await?)?;
    ensure!(
        listing["Total"] == 1,
        "the inbox lists {} messages, expected 1",
        listing["Total"]
    );
    let id = listing["Messages"][0]["ID"]
        .as_str()
        .context("the listing has no message ID")?;
    let raw = get(format!("api/v1/message/{id}/raw")).await?;
    ensure!(
        raw == stored.as_bytes(),
        "the raw download differs from the stored file"
    );
    let message: Value = serde_json::from_slice(&get(format!("api/v1/message/{id}")).await?)?;
    ensure!(
        message["Subject"] == SUBJECT,
        "the inbox shows subject {}",
        message["Subject"]
    );
    ensure!(
        message["From"]["Address"] == "demo@example.org",
        "the inbox shows sender {}",
        message["From"]
    );
    ensure!(
        message["Text"].as_str().map(|t| t.replace("\r\n", "\n")) == Some(text.to_owned()),
        "the inbox shows text {}",
        message["Text"]
    );
    let attachment = &message["Attachments"][0];
    ensure!(
        attachment["FileName"] == "report.pdf",
        "the inbox shows attachment {attachment}"
    );
    let part = get(format!("api/v1/message/{id}/part/{}", attachment["PartID"])).await?;
    ensure!(
        part == ATTACHMENT,
        "the attachment read back differs from the one sent"
    );
    Ok(())
}

fn stored_message(new: &Path) -> anyhow::Result<String> {
    let mut files = std::fs::read_dir(new)?.collect::<Result<Vec<_>, _>>()?;
    ensure!(
        files.len() == 1,
        "{} messages stored, expected 1",
        files.len()
    );
    let path = files.remove(0).path();
    Ok(std::fs::read_to_string(path)?)
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("netkit-demo-mail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
