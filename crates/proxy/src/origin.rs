//! Sending a request to an origin through the pooled client, and what can
//! go wrong on the way, in words the error page can show.

use std::error::Error as StdError;
use std::io;

use http::{Request, Response, StatusCode};
use http_body_util::LengthLimitError;
use hyper::body::Incoming;

use crate::body::Body;
use crate::guard::OwnAddress;
use crate::state::State;
use crate::target::Origin;

#[derive(Debug)]
pub enum Failure {
    /// The host name does not resolve.
    Dns(String),
    /// Nothing listens at the origin.
    Refused,
    /// The connection could not be made in time.
    ConnectTimeout,
    /// Connected, but no response within `--origin-timeout`.
    Timeout,
    /// The origin is the proxy's own host (see --allow-localhost-origins).
    OwnHost,
    /// The client's body went over `--max-body` while being forwarded.
    BodyTooLarge,
    /// Anything else: a reset, a malformed response.
    Other(String),
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::Dns(_) | Failure::Refused | Failure::Other(_) => StatusCode::BAD_GATEWAY,
            Failure::ConnectTimeout | Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::OwnHost => StatusCode::FORBIDDEN,
        }
    }

    pub fn describe(&self, origin: &Origin, state: &State) -> String {
        match self {
            Failure::Dns(detail) => {
                format!(
                    "The proxy cannot resolve the host name {}: {detail}.",
                    origin.host
                )
            }
            Failure::Refused => format!("The connection to {origin} was refused."),
            Failure::ConnectTimeout => format!(
                "The proxy could not connect to {origin} within {:?}.",
                state.config.connect_timeout
            ),
            Failure::Timeout => format!(
                "{origin} did not answer within {:?}.",
                state.config.origin_timeout
            ),
            Failure::BodyTooLarge => "The request body is too large.".to_owned(),
            Failure::OwnHost => format!(
                "{origin} is this proxy's own host, which it does not fetch from (see --allow-localhost-origins)."
            ),
            Failure::Other(detail) => format!("The request to {origin} failed: {detail}."),
        }
    }

    fn classify(err: hyper_util::client::legacy::Error) -> Failure {
        let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
        let mut dns = false;
        let mut last = err.to_string();
        while let Some(cause) = source {
            if cause.downcast_ref::<LengthLimitError>().is_some() {
                return Failure::BodyTooLarge;
            }
            if cause.downcast_ref::<OwnAddress>().is_some() {
                return Failure::OwnHost;
            }
            let text = cause.to_string();
            if text == "dns error" {
                dns = true;
            }
            if let Some(io) = cause.downcast_ref::<io::Error>() {
                if io.get_ref().is_some_and(|inner| inner.is::<OwnAddress>()) {
                    return Failure::OwnHost;
                }
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => return Failure::Refused,
                    io::ErrorKind::TimedOut => return Failure::ConnectTimeout,
                    _ => {}
                }
            }
            last = text;
            source = cause.source();
        }
        if dns {
            Failure::Dns(last)
        } else if err.is_connect() {
            Failure::Other(format!("cannot connect: {last}"))
        } else {
            Failure::Other(last)
        }
    }
}

/// Sends `request` and waits up to `--origin-timeout` for the response head.
pub async fn send(state: &State, request: Request<Body>) -> Result<Response<Incoming>, Failure> {
    match tokio::time::timeout(state.config.origin_timeout, state.client.request(request)).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(err)) => Err(Failure::classify(err)),
        Ok(Ok(response)) => Ok(response),
    }
}
