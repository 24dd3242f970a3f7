use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, provider};

/// Where a server's certificate comes from.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A PEM certificate chain and its PEM private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A throwaway certificate for `localhost`, `127.0.0.1` and `::1`, made
    /// at start-up, for local testing only.
    SelfSigned,
}

/// A freshly generated self-signed certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

impl SelfSigned {
    /// A certificate valid for `localhost`, `127.0.0.1`, `::1` and `names`.
    pub fn generate(names: &[&str]) -> Result<Self, Error> {
        let mut all = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        all.extend(names.iter().map(|name| (*name).to_owned()));
        let certified = rcgen::generate_simple_self_signed(all)?;
        Ok(Self {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
        })
    }

    fn parts(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
        let cert =
            CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|err| Error::Pem {
                path: "<generated>".into(),
                detail: err.to_string(),
            })?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|err| Error::Pem {
                path: "<generated>".into(),
                detail: err.to_string(),
            })?;
        Ok((vec![cert], key))
    }
}

/// A server configuration for `identity`, offering `alpn` protocols in order
/// of preference (e.g. `[b"h2", b"http/1.1"]`, or none).
pub fn server_config(identity: &Identity, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, Error> {
    let (chain, key) = match identity {
        Identity::Files { cert, key } => (read_certs(cert)?, read_key(key)?),
        Identity::SelfSigned => SelfSigned::generate(&[])?.parts()?,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::Pem {
            path: path.to_owned(),
            detail: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(Error::Missing {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| match err {
        rustls_pki_types::pem::Error::NoItemsFound => Error::Missing {
            path: path.to_owned(),
            what: "private key",
        },
        other => Error::Pem {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })
}
