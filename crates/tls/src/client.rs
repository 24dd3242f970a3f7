use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tracing::debug;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::server::read_certs;
use crate::{Error, provider};

/// How a client decides whether to trust a server.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Accept any certificate. The handshake is still checked, but the
    /// server is not authenticated: for test servers only.
    pub insecure: bool,
    /// A PEM file of CA certificates trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
}

/// A client configuration offering `alpn` protocols in order of preference.
pub fn client_config(options: &ClientOptions, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, Error> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let mut config = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let extra = match &options.ca_file {
            Some(path) => read_certs(path)?,
            None => Vec::new(),
        };
        let roots = Arc::new(roots(&extra)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|err| Error::Config(rustls::Error::General(err.to_string())))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RootsOrPinned {
                webpki,
                pinned: extra,
            }))
            .with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name to verify the server's certificate against: a DNS name or an IP.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| Error::ServerName(host.to_owned()))
}

fn roots(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        debug!(%err, "while loading system root certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    debug!(added, ignored, "system root certificates");
    for cert in extra {
        // A certificate that is not a usable trust anchor can still be
        // pinned below, so it is not an error here.
        if let Err(err) = roots.add(cert.clone()) {
            debug!(%err, "--cacert certificate is not a trust anchor");
        }
    }
    if roots.is_empty() {
        return Err(Error::NoRoots);
    }
    Ok(roots)
}

/// The system roots plus `--cacert`, checked by webpki, and two rules by
/// which OpenSSL (and so curl, swaks and Python's `ssl`) accepts what webpki
/// alone refuses:
///
/// - a server that presents exactly a certificate from `--cacert` is
///   trusted if the certificate names it and is within its validity period.
///   `openssl req -x509` makes such certificates, marked as CAs, which
///   webpki refuses as a server's own certificate (`CaUsedAsEndEntity`);
/// - a certificate with no DNS name in its subjectAltName is checked
///   against its subject's common name, as `openssl req -subj /CN=host`
///   makes them (RFC 6125 §6.4.4).
#[derive(Debug)]
struct RootsOrPinned {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl RootsOrPinned {
    /// The verdict on a certificate given with `--cacert` and presented
    /// as is: its own name and dates decide.
    fn check_pinned(
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let validity = cert.validity();
        let now = now.as_secs() as i64;
        if now < validity.not_before.timestamp() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > validity.not_after.timestamp() {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        let named = webpki::EndEntityCert::try_from(end_entity)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(server_name).is_ok())
            || common_name_matches(&cert, server_name);
        if !named {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        debug!("server certificate trusted as given with --cacert");
        Ok(ServerCertVerified::assertion())
    }
}

/// Whether a certificate without DNS names in its subjectAltName names
/// `server_name` in its subject's CN, as OpenSSL's host check allows: the
/// same name ignoring case, or a wildcard for the leftmost label. An IP
/// address is only ever matched by subjectAltName, as in OpenSSL.
fn common_name_matches(cert: &X509Certificate<'_>, server_name: &ServerName<'_>) -> bool {
    let ServerName::DnsName(host) = server_name else {
        return false;
    };
    let has_dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value
                .general_names
                .iter()
                .any(|name| matches!(name, GeneralName::DNSName(_)))
        });
    if has_dns_names {
        return false;
    }
    let host = host.as_ref().trim_end_matches('.');
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|cn| dns_name_matches(cn, host))
}

fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(parent) => host.split_once('.').is_some_and(|(label, rest)| {
            !label.is_empty() && rest.eq_ignore_ascii_case(parent) && parent.contains('.')
        }),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl ServerCertVerifier for RootsOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Ok(verified) => Ok(verified),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|pin| pin.as_ref() == end_entity.as_ref()) =>
            {
                Self::check_pinned(end_entity, server_name, now)
            }
            // webpki checks the name last, so the chain and dates are good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if x509_parser::parse_x509_certificate(end_entity)
                .is_ok_and(|(_, cert)| common_name_matches(&cert, server_name)) =>
            {
                debug!("server certificate names the host in its common name");
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Trusts every certificate but still verifies the handshake signatures,
/// so the session is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::dns_name_matches;

    #[test]
    fn common_names_match_as_openssl_does() {
        assert!(dns_name_matches("localhost", "localhost"));
        assert!(dns_name_matches("LocalHost.", "localhost"));
        assert!(!dns_name_matches("localhost", "otherhost"));
        assert!(dns_name_matches("*.example.com", "www.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.com", "example.com"));
    }
}
