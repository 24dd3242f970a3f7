//! What the proxy refuses to reach, as Squid does by default: plain HTTP to
//! ports outside its safe list (`http_access deny !Safe_ports`), and the
//! proxy's own host (`to_localhost`), whose services trust local clients.
//! The own-host check runs on the addresses a connection is about to use,
//! so a name that resolves to the host is refused as well as a literal.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower_service::Service;

/// Squid's default `Safe_ports` for plain HTTP: 80, 443 and the
/// unprivileged range; the well-known ports of other services are not.
pub fn default_safe_ports() -> Vec<RangeInclusive<u16>> {
    vec![80..=80, 443..=443, 1025..=65535]
}

/// `80,443,1025-65535`: ports and ranges.
pub fn parse_ports(text: &str) -> Result<Vec<RangeInclusive<u16>>, String> {
    let port = |text: &str| {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| format!("`{}` is not a port (1-65535)", text.trim()))
    };
    text.split(',')
        .map(|item| match item.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (port(low)?, port(high)?);
                if low > high {
                    return Err(format!("`{}` is an empty range", item.trim()));
                }
                Ok(low..=high)
            }
            None => port(item).map(|port| port..=port),
        })
        .collect()
}

/// The connection would reach the proxy's own host.
#[derive(Debug, thiserror::Error)]
#[error("the origin is the proxy's own host")]
pub struct OwnAddress;

/// Whether `ip` is one of this host's addresses: loopback, unspecified
/// (which reaches the host), or an address of one of its interfaces, which
/// are the addresses a socket may be bound to.
pub fn is_own(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Refuses `addrs` if any is the proxy's own host (all the addresses of a
/// name count: the connector tries them in turn).
pub fn check(addrs: &[SocketAddr]) -> Result<(), OwnAddress> {
    match addrs.iter().any(|addr| is_own(addr.ip())) {
        true => Err(OwnAddress),
        false => Ok(()),
    }
}

/// The system resolver, refusing names that resolve to the proxy's host
/// unless `allow_own`.
#[derive(Debug, Clone)]
pub struct Resolver {
    system: GaiResolver,
    allow_own: bool,
}

impl Resolver {
    pub fn new(allow_own: bool) -> Resolver {
        Resolver {
            system: GaiResolver::new(),
            allow_own,
        }
    }
}

type Resolving =
    Pin<Box<dyn Future<Output = io::Result<std::vec::IntoIter<SocketAddr>>> + Send + 'static>>;

impl Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.system.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Resolving {
        let resolving = self.system.call(name);
        let allow_own = self.allow_own;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = resolving.await?.collect();
            if allow_own {
                return Ok(addrs.into_iter());
            }
            check(&addrs).map_err(|own| io::Error::new(io::ErrorKind::PermissionDenied, own))?;
            Ok(addrs.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists() {
        assert_eq!(
            parse_ports("80, 443,1025-65535").unwrap(),
            default_safe_ports()
        );
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("90-80").is_err());
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("70000").is_err());
    }

    #[test]
    fn own_addresses() {
        for own in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_own(own.parse().unwrap()), "{own}");
        }
        // Documentation addresses (RFC 5737, RFC 3849) are nobody's.
        for other in ["192.0.2.1", "2001:db8::1"] {
            assert!(!is_own(other.parse().unwrap()), "{other}");
        }
    }
}
