//! How netkit's clients reach a server: `HOST:PORT` resolved to addresses,
//! and a UDP socket connected to one, so the kernel filters out datagrams
//! from anyone else and passes on ICMP errors for what we sent.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{UdpSocket, lookup_host};

/// Why a server could not be reached. The messages leave the I/O error to
/// the `source` chain, which the binary prints after them.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot resolve {host}")]
    Resolve { host: String, source: io::Error },

    #[error("{host} resolved to no addresses")]
    NoAddress { host: String },

    #[error("cannot bind {addr}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error("cannot connect to {addr}")]
    Connect { addr: SocketAddr, source: io::Error },
}

/// Resolves `HOST:PORT` to its addresses, in the resolver's order; never an
/// empty list.
pub async fn resolve(target: &str) -> Result<Vec<SocketAddr>, DialError> {
    let addrs: Vec<SocketAddr> = lookup_host(target)
        .await
        .map_err(|source| DialError::Resolve {
            host: target.to_owned(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(DialError::NoAddress {
            host: target.to_owned(),
        });
    }
    Ok(addrs)
}

/// A UDP socket bound to `bind` (an ephemeral port of `target`'s family when
/// `None`) and connected to `target`.
pub async fn udp(target: SocketAddr, bind: Option<SocketAddr>) -> Result<UdpSocket, DialError> {
    let local = bind.unwrap_or_else(|| match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    });
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|source| DialError::Bind {
            addr: local,
            source,
        })?;
    socket
        .connect(target)
        .await
        .map_err(|source| DialError::Connect {
            addr: target,
            source,
        })?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn numeric_targets_resolve_to_themselves() {
        let addrs = resolve("127.0.0.1:12000").await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:12000".parse().unwrap()]);
        let addrs = resolve("[::1]:5000").await.unwrap();
        assert_eq!(addrs, vec!["[::1]:5000".parse().unwrap()]);
    }

    #[tokio::test]
    async fn bad_targets_say_which() {
        let err = resolve("no-port").await.unwrap_err();
        assert_eq!(err.to_string(), "cannot resolve no-port");
        let err = resolve("no-such-host.invalid:1").await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot resolve no-such-host.invalid:1")
        );
    }

    #[tokio::test]
    async fn udp_sockets_are_connected_in_the_targets_family() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let socket = udp(target, None).await.unwrap();
        assert_eq!(socket.peer_addr().unwrap(), target);
        assert!(socket.local_addr().unwrap().is_ipv4());
        socket.send(b"hello").await.unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"hello"[..], socket.local_addr().unwrap())
        );
    }

    #[tokio::test]
    async fn a_taken_local_address_is_a_bind_error() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = taken.local_addr().unwrap();
        let err = udp("127.0.0.1:9".parse().unwrap(), Some(local))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DialError::Bind { addr, .. } if addr == local),
            "{err}"
        );
    }
}
