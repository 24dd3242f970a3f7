use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
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
    let sink = Sink::bind(loopback, maildir.clone(), config).await?;
    let addr = sink.local_addr();
    let token = CancellationToken::new();
    let server = tokio::spawn(sink.run(token.clone()));
    let stop = token.drop_guard();

    let report = dir.path().join("report.pdf");
    std::fs::write(&report, ATTACHMENT)?;
    let message = Draft {
        from: Some("Demo <demo@example.org>".parse()?),
        to: vec!["you@example.org".parse()?],
        subject: Some(SUBJECT.into()),
        text: Some("Hello from netkit.\n.A line that starts with a dot.\n".into()),
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
    drop(stop);
    server.await?;
    Ok(format!(
        "sink {addr}: text+HTML+attachment sent over STARTTLS ({}) with AUTH PLAIN, stored in the maildir",
        tls_used.unwrap_or_else(|| "TLS".into())
    ))
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
