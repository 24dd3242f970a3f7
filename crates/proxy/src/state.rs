//! What every request handler shares: the configuration, the cache, the
//! pooled origin client, the counters and the access log.

use hyper_util::client::legacy::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::access::AccessRecord;
use crate::body::Body;
use crate::cache::Cache;
use crate::connector::Connector;
use crate::stats::Stats;

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    pub config: Config,
    pub cache: Cache,
    pub client: Client<Connector, Body>,
    pub stats: Stats,
    pub access_log: mpsc::UnboundedSender<AccessRecord>,
    /// Cancelled when the server stops: ends CONNECT tunnels.
    pub shutdown: CancellationToken,
}

impl State {
    pub fn snapshot(&self) -> crate::Snapshot {
        self.stats
            .snapshot(self.cache.usage(), self.config.cache_size)
    }
}
