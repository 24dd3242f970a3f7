//! A server and a client built from this crate's configurations complete a
//! handshake over loopback, and verification fails when it should.

use std::io::Write;

use tls::{ClientOptions, Identity, SelfSigned, TlsAcceptor, TlsConnector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn handshake(server: Identity, client: ClientOptions) -> Result<String, std::io::Error> {
    handshake_as("localhost", server, client).await
}

async fn handshake_as(
    name: &str,
    server: Identity,
    client: ClientOptions,
) -> Result<String, std::io::Error> {
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
        .connect(tls::server_name(name).unwrap(), stream)
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

/// What `openssl req -x509` makes: a self-signed certificate that is also
/// marked as a CA, which webpki alone refuses as a server's own certificate.
#[tokio::test]
async fn a_self_signed_ca_certificate_given_as_cacert_is_pinned() {
    let dir = std::env::temp_dir().join(format!("netkit-tls-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("ca-cert.pem"), dir.join("ca-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let identity = Identity::Files {
        cert: cert_path.clone(),
        key: key_path,
    };
    let trusted = ClientOptions {
        insecure: false,
        ca_file: Some(cert_path),
    };
    handshake(identity.clone(), trusted.clone()).await.unwrap();

    // Pinning still checks the name.
    let err = handshake_as("elsewhere.example", identity.clone(), trusted)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    // And only the pinned certificate is trusted.
    let other = SelfSigned::generate(&[]).unwrap();
    let other_path = dir.join("other.pem");
    std::fs::write(&other_path, other.cert_pem).unwrap();
    let wrong_pin = ClientOptions {
        insecure: false,
        ca_file: Some(other_path),
    };
    assert!(handshake(identity, wrong_pin).await.is_err());
    std::fs::remove_dir_all(dir).unwrap();
}
