//! Connections kept for the next request to the same origin, as curl keeps
//! them across redirects and across the URLs of one command.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};

use super::connect::FirstBytes;
use super::request::Body;

/// How long a kept HTTP/1.1 connection may take to finish its previous
/// response before a new connection is opened instead.
const READY_WAIT: Duration = Duration::from_secs(2);

/// One connection's request side.
#[derive(Debug)]
pub enum Sender {
    H1 {
        sender: http1::SendRequest<Body>,
        /// Requests go to a proxy in absolute form.
        absolute_form: bool,
        /// On a cleartext connection, what the server sent first.
        first_bytes: Option<(FirstBytes, SocketAddr)>,
    },
    H2(http2::SendRequest<Body>),
}

impl Sender {
    pub fn is_h2(&self) -> bool {
        matches!(self, Sender::H2(_))
    }

    pub fn absolute_form(&self) -> bool {
        matches!(
            self,
            Sender::H1 {
                absolute_form: true,
                ..
            }
        )
    }

    pub fn first_bytes(&self) -> Option<&(FirstBytes, SocketAddr)> {
        match self {
            Sender::H1 { first_bytes, .. } => first_bytes.as_ref(),
            Sender::H2(_) => None,
        }
    }

    pub async fn send(&mut self, request: Request<Body>) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::H1 { sender, .. } => sender.send_request(request).await,
            Sender::H2(sender) => sender.send_request(request).await,
        }
    }

    /// Whether the connection can take another request, waiting a little
    /// for an HTTP/1.1 connection to finish the response before.
    async fn usable(&mut self) -> bool {
        match self {
            Sender::H1 { sender, .. } => {
                !sender.is_closed()
                    && matches!(
                        tokio::time::timeout(READY_WAIT, sender.ready()).await,
                        Ok(Ok(()))
                    )
            }
            Sender::H2(sender) => {
                !sender.is_closed()
                    && matches!(
                        tokio::time::timeout(READY_WAIT, sender.ready()).await,
                        Ok(Ok(()))
                    )
            }
        }
    }
}

/// Kept connections by origin (scheme, authority and proxy).
#[derive(Debug, Clone, Default)]
pub struct Pool {
    kept: Arc<Mutex<Vec<(String, Sender)>>>,
}

impl Pool {
    /// A kept connection for `key` that can take a request now.
    pub async fn take(&self, key: &str) -> Option<Sender> {
        loop {
            let found = {
                let mut kept = self.kept.lock().expect("pool");
                let index = kept.iter().position(|(k, _)| k == key)?;
                kept.swap_remove(index).1
            };
            let mut sender = found;
            if sender.usable().await {
                return Some(sender);
            }
        }
    }

    pub fn put(&self, key: String, sender: Sender) {
        self.kept.lock().expect("pool").push((key, sender));
    }
}
