//! The client side: the pinger, the flood load generator and the heartbeat
//! sender, all on a connected socket so the kernel filters other senders.

pub mod flood;
pub mod heartbeat;
pub mod ping;
pub mod stats;

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::Error;

/// A UDP socket bound to `bind` (or an ephemeral port of the target's
/// family) and connected to `target`.
async fn connect(target: SocketAddr, bind: Option<SocketAddr>) -> Result<UdpSocket, Error> {
    let local = bind.unwrap_or_else(|| {
        if target.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid literal")
        } else {
            "[::]:0".parse().expect("valid literal")
        }
    });
    let socket = UdpSocket::bind(local).await.map_err(|source| Error::Bind {
        addr: local,
        source,
    })?;
    socket.connect(target).await.map_err(|source| Error::Send {
        addr: target,
        source,
    })?;
    Ok(socket)
}
