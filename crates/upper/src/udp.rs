//! The UDP side: every datagram is answered with its converted copy.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{Error, uppercase};

/// Large enough for any UDP payload, so no datagram is ever truncated.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug)]
pub struct UdpServer {
    socket: UdpSocket,
}

impl UdpServer {
    pub async fn bind(addr: SocketAddr) -> Result<Self, Error> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { socket })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Answers datagrams until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = self.socket.recv_from(&mut buf) => received,
            };
            let (n, peer) = match received {
                Ok(received) => received,
                Err(err) => {
                    // A datagram socket has no connection to lose: one bad
                    // receive says nothing about the next.
                    warn!(%err, "udp receive failed");
                    continue;
                }
            };
            uppercase(&mut buf[..n]);
            debug!(%peer, bytes = n, "udp datagram answered");
            if let Err(err) = self.socket.send_to(&buf[..n], peer).await {
                warn!(%peer, %err, "udp reply failed");
            }
        }
    }
}
