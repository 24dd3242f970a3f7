//! curl's exit codes (curl(1), EXIT CODES) for the failures `web get` has.

use web::ClientError;

pub const UNSUPPORTED_PROTOCOL: u8 = 1;
pub const MALFORMED_URL: u8 = 3;
pub const COULD_NOT_RESOLVE: u8 = 6;
pub const COULD_NOT_CONNECT: u8 = 7;
pub const WEIRD_SERVER_REPLY: u8 = 8;
pub const HTTP_ERROR: u8 = 22;
pub const WRITE_ERROR: u8 = 23;
pub const READ_ERROR: u8 = 26;
pub const TIMEOUT: u8 = 28;
pub const RANGE_ERROR: u8 = 33;
pub const TLS_HANDSHAKE: u8 = 35;
pub const TOO_MANY_REDIRECTS: u8 = 47;
pub const RECEIVE_ERROR: u8 = 56;
pub const UNTRUSTED_CERTIFICATE: u8 = 60;
pub const BAD_CONTENT_ENCODING: u8 = 61;

/// A failure that carries its own exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn write_error(err: std::io::Error) -> anyhow::Error {
    Failure::new(WRITE_ERROR, format!("cannot write the output: {err}")).into()
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.code;
        }
        if let Some(err) = cause.downcast_ref::<ClientError>() {
            return client_code(err);
        }
        if let Some(err) = cause.downcast_ref::<std::io::Error>()
            && err.kind() == std::io::ErrorKind::BrokenPipe
        {
            return WRITE_ERROR;
        }
    }
    1
}

pub fn client_code(err: &ClientError) -> u8 {
    match err {
        ClientError::InvalidUrl(_) | ClientError::InvalidProxy(_) => MALFORMED_URL,
        ClientError::UnsupportedScheme(_) => UNSUPPORTED_PROTOCOL,
        ClientError::InvalidRequest(_) | ClientError::TlsConfig(_) => 1,
        ClientError::ReadBody { .. } => READ_ERROR,
        ClientError::Resolve { .. } => COULD_NOT_RESOLVE,
        ClientError::Refused { .. } | ClientError::Connect { .. } => COULD_NOT_CONNECT,
        ClientError::ConnectTimeout { .. }
        | ClientError::TlsTimeout { .. }
        | ClientError::ProxyTimeout { .. } => TIMEOUT,
        ClientError::Tls { .. } if err.is_untrusted_certificate() => UNTRUSTED_CERTIFICATE,
        ClientError::Tls { .. } => TLS_HANDSHAKE,
        ClientError::SpeaksTls { .. } => WEIRD_SERVER_REPLY,
        ClientError::Http { .. } | ClientError::ProxyRefused { .. } => RECEIVE_ERROR,
        ClientError::TooManyRedirects(_) => TOO_MANY_REDIRECTS,
        ClientError::BadRedirect(_) => MALFORMED_URL,
    }
}

/// Whether curl's `--retry` tries again after this failure: a timeout or a
/// name that did not resolve (curl's "transient" errors).
pub fn is_transient(code: u8) -> bool {
    matches!(code, TIMEOUT | COULD_NOT_RESOLVE)
}
