//! A server and a client built from this crate's configurations complete a
//! handshake over loopback, and verification fails when it should.

use std::io::Write;

use tls::{ClientOptions, Identity, SelfSigned, TlsAcceptor, TlsConnector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn handshake(server: Identity, client: ClientOptions) -> Result<String, std::io::Error> {
    let acceptor = TlsAcceptor::from(tls::server_config(&server, &[b"h2"]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(stream).await {
            let _ = tls.write_all(b"hello").await;
            let _ = tls.shutdown().await;
        }
    });
    let connector = TlsConnector::from(tls::client_config(&client, &[b"h2"]).unwrap());
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(tls::server_name("localhost").unwrap(), stream)
        .await?;
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    let described = tls::describe(session);
    let mut text = String::new();
    tls.read_to_string(&mut text).await?;
    assert_eq!(text, "hello");
    Ok(described)
}

#[tokio::test]
async fn self_signed_needs_insecure_or_its_ca() {
    let err = handshake(Identity::SelfSigned, ClientOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    let insecure = ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    };
    let described = handshake(Identity::SelfSigned, insecure).await.unwrap();
    assert!(described.starts_with("TLSv1.3 TLS13_"), "{described}");

    // A certificate saved to files, trusted through --cacert.
    let dir = std::env::temp_dir().join(format!("netkit-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let generated = SelfSigned::generate(&[]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::File::create(&cert)
        .unwrap()
        .write_all(generated.cert_pem.as_bytes())
        .unwrap();
    std::fs::write(&key, &generated.key_pem).unwrap();
    let trusted = ClientOptions {
        insecure: false,
        ca_file: Some(cert.clone()),
    };
    handshake(Identity::Files { cert, key }, trusted)
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
