//! Finding where mail for a domain goes (RFC 5321 §5.1): its MX records,
//! lowest preference first, or the domain's own address when it has none.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::error::{Error, ErrorKind, Stage};

/// One mail exchanger and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanger {
    pub preference: u16,
    pub host: String,
    pub addrs: Vec<IpAddr>,
}

/// A DNS resolver: the system's, or one server given as `HOST:PORT`.
#[derive(Debug, Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    pub fn new(server: Option<SocketAddr>) -> Result<Self, Error> {
        let fail = |detail: String| {
            Error::new(
                Stage::Connect,
                ErrorKind::Resolve {
                    host: "the DNS configuration".into(),
                    detail,
                },
            )
        };
        let provider = TokioRuntimeProvider::default();
        let builder = match server {
            Some(addr) => {
                let mut name_server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut name_server.connections {
                    connection.port = addr.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    provider,
                )
            }
            None => Resolver::builder(provider).map_err(|err| fail(err.to_string()))?,
        };
        let resolver = builder.build().map_err(|err| fail(err.to_string()))?;
        Ok(Self { resolver })
    }

    /// The exchangers for `domain`, best first. Without MX records, the
    /// domain itself is the exchanger (the "implicit MX").
    pub async fn exchangers(&self, domain: &str) -> Result<Vec<Exchanger>, Error> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let mut found: Vec<(u16, String)> = match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect(),
            Err(err) if err.is_no_records_found() || err.is_nx_domain() => Vec::new(),
            Err(err) => return Err(resolve_error(domain, err.to_string())),
        };
        if found.is_empty() {
            found.push((0, fqdn));
        }
        found.sort_by_key(|(preference, _)| *preference);
        let mut exchangers = Vec::new();
        for (preference, host) in found {
            let addrs = self.addresses(&host).await.unwrap_or_default();
            if !addrs.is_empty() {
                exchangers.push(Exchanger {
                    preference,
                    host: host.trim_end_matches('.').to_owned(),
                    addrs,
                });
            }
        }
        if exchangers.is_empty() {
            return Err(Error::new(
                Stage::Connect,
                ErrorKind::NoMailServer {
                    domain: domain.to_owned(),
                },
            ));
        }
        Ok(exchangers)
    }

    /// The A and AAAA addresses of `host`.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|err| resolve_error(host, err.to_string()))?;
        Ok(lookup.iter().collect())
    }
}

fn resolve_error(host: &str, detail: String) -> Error {
    Error::new(
        Stage::Connect,
        ErrorKind::Resolve {
            host: host.to_owned(),
            detail,
        },
    )
}
