//! Everything that can go wrong in a request, with what the user can do
//! about a certificate the client does not trust.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;

/// Everything that can go wrong in a request. Where there is an underlying
/// cause it is the error's `source`, not repeated in the message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{0}` is not a valid URL")]
    InvalidUrl(String),
    #[error("unsupported scheme `{0}`: use http:// or https://")]
    UnsupportedScheme(String),
    #[error("the proxy must be http://HOST:PORT, not `{0}`")]
    InvalidProxy(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("cannot read {path}")]
    ReadBody { path: PathBuf, source: io::Error },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connection refused by {addr}: is the server running?")]
    Refused { addr: SocketAddr },
    #[error("cannot connect to {addr}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("timed out after {timeout:?} connecting to {addr}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },
    #[error("TLS handshake with {host} failed: {reason}{}", tls_hint(reason))]
    Tls { host: String, reason: io::Error },
    #[error("TLS handshake with {host} timed out after {timeout:?}")]
    TlsTimeout { host: String, timeout: Duration },
    #[error(transparent)]
    TlsConfig(#[from] tls::Error),
    #[error("proxy {proxy} refused to connect to {target}: {status}")]
    ProxyRefused {
        proxy: String,
        target: String,
        status: StatusCode,
    },
    #[error("proxy {proxy} did not answer CONNECT within {timeout:?}")]
    ProxyTimeout { proxy: String, timeout: Duration },
    #[error("{context}")]
    Http {
        context: String,
        source: hyper::Error,
    },
    #[error("the server at {authority} speaks TLS: try https://")]
    SpeaksTls { authority: String },
    #[error("stopped after {0} redirects")]
    TooManyRedirects(usize),
    #[error("redirect to an invalid location `{0}`")]
    BadRedirect(String),
}

impl ClientError {
    /// Whether the TLS handshake failed because the server's certificate
    /// is not trusted (curl's exit 60) rather than for another reason.
    pub fn is_untrusted_certificate(&self) -> bool {
        match self {
            ClientError::Tls { reason, .. } => reason
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tls::rustls::Error>())
                .is_some_and(|err| {
                    matches!(
                        err,
                        tls::rustls::Error::InvalidCertificate(_)
                            | tls::rustls::Error::NoCertificatesPresented
                    )
                }),
            _ => false,
        }
    }
}

/// For a certificate the client does not trust, what the user can do.
fn tls_hint(reason: &io::Error) -> &'static str {
    let reason = reason.to_string();
    if reason.contains("NotValidForName") {
        " (the certificate is for another name)"
    } else if reason.contains("Expired") || reason.contains("NotValidYet") {
        " (the certificate is outside its validity period)"
    } else if reason.contains("CaUsedAsEndEntity") {
        // What `openssl req -x509` makes unless told otherwise.
        " (the server presents a self-signed CA certificate as its own: \
         trust exactly that certificate with --cacert FILE, or use --insecure)"
    } else if reason.contains("certificate") {
        " (for a test server, use --cacert FILE, or --insecure)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_say_what_to_do() {
        let hint = |text: &str| tls_hint(&io::Error::other(text.to_owned()));
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("--cacert"));
        assert!(
            hint("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))")
                .contains("--cacert FILE")
        );
        assert_eq!(hint("received corrupt message"), "");
    }
}
