//! CONNECT: a byte tunnel to port 443 (or a port allowed with
//! --connect-port) for HTTPS through the proxy. Nothing is decrypted.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use crate::access::Hierarchy;
use crate::body::{self, Body};
use crate::exchange::{Answer, Exchange};
use crate::origin::Failure;
use crate::state::State;
use crate::target::{Origin, parse_connect};
use crate::{guard, pages};

const HTTPS_PORT: u16 = 443;

pub async fn open(
    state: Arc<State>,
    exchange: Exchange,
    request: Request<Incoming>,
) -> Response<Body> {
    let origin = match parse_connect(request.uri()) {
        Ok(origin) => origin,
        Err(err) => {
            let page = pages::error(StatusCode::BAD_REQUEST, &err.to_string());
            return exchange.finish(&state, page, Answer::Invalid, Hierarchy::None);
        }
    };
    if origin.port != HTTPS_PORT && !state.config.connect_ports.contains(&origin.port) {
        let page = pages::error(
            StatusCode::FORBIDDEN,
            &format!(
                "CONNECT to port {} is not allowed (only 443 and ports given with --connect-port).",
                origin.port
            ),
        );
        return exchange.finish(&state, page, Answer::Denied, Hierarchy::None);
    }
    let upstream = match connect(&state, &origin).await {
        Ok(stream) => stream,
        Err(failure) => {
            let page = pages::error(failure.status(), &failure.describe(&origin, &state));
            let peer = Hierarchy::Direct(origin.host.connect_name());
            let answer = match failure {
                Failure::OwnHost => Answer::Denied,
                _ => Answer::Miss,
            };
            return exchange.finish(&state, page, answer, peer);
        }
    };
    let peer = upstream
        .peer_addr()
        .map(|addr| addr.ip().to_string())
        .unwrap_or_else(|_| "-".into());
    let _ = upstream.set_nodelay(true);
    state.stats.count(crate::stats::Counted::Tunnel);
    tokio::spawn(relay(state.clone(), exchange, request, upstream, peer));
    let mut response = Response::new(body::empty());
    crate::headers::add_via(response.headers_mut());
    response.headers_mut().insert(
        crate::headers::X_CACHE,
        http::HeaderValue::from_static("BYPASS"),
    );
    response
}

/// Connects to `origin`, refusing the proxy's own host unless allowed:
/// the addresses checked are the ones connected to.
async fn connect(state: &State, origin: &Origin) -> Result<TcpStream, Failure> {
    let target = (origin.host.connect_name(), origin.port);
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(target)
            .await
            .map_err(|err| Failure::Dns(err.to_string()))?
            .collect();
        if !state.config.allow_localhost_origins && guard::check(&addrs).is_err() {
            return Err(Failure::OwnHost);
        }
        TcpStream::connect(&addrs[..])
            .await
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::ConnectionRefused => Failure::Refused,
                std::io::ErrorKind::TimedOut => Failure::ConnectTimeout,
                _ => Failure::Other(err.to_string()),
            })
    };
    match tokio::time::timeout(state.config.connect_timeout, attempt).await {
        Err(_) => Err(Failure::ConnectTimeout),
        Ok(connected) => connected,
    }
}

/// Once hyper hands over the client's connection, copies both ways until
/// either side closes or the proxy shuts down; then logs the tunnel.
async fn relay(
    state: Arc<State>,
    exchange: Exchange,
    request: Request<Incoming>,
    mut upstream: TcpStream,
    peer: String,
) {
    let mut client = match hyper::upgrade::on(request).await {
        Ok(upgraded) => TokioIo::new(upgraded),
        Err(err) => {
            debug!(%err, "CONNECT client went away before the tunnel opened");
            return;
        }
    };
    let (to_origin, to_client) = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => copied.unwrap_or((0, 0)),
        _ = state.shutdown.cancelled() => (0, 0),
    };
    debug!(to_origin, to_client, "tunnel closed");
    let record = exchange.record(Answer::Tunnel, 200, to_client, Hierarchy::Direct(peer));
    let _ = state.access_log.send(record);
}
