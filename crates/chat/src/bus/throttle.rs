//! Login and registration throttles shared by a cluster's nodes, in Redis:
//! the same rules as the single server's (crate::throttle), kept as one
//! sorted set of attempt times per account, per client address and for
//! all registrations. A script checks and counts an attempt in one step,
//! so guesses spread over every node at once get no more tries than
//! guesses sent to one.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::history::now_millis;

/// Keys: the sets an attempt counts in. Arguments: now (ms), the window
/// (ms), the attempt's member, then each key's limit. Returns 0 once the
/// attempt is counted, or the milliseconds until the set that is full
/// frees a place (the attempt is not counted).
const BEGIN: &str = r"
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[3 + i])
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
";

const PREFIX: &str = "netkit:chat:throttle:";

/// The limits, as the single server has them.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    pub login_failures: u32,
    pub login_window: Duration,
    pub register_per_address: u32,
    pub register_overall: u32,
    pub register_window: Duration,
}

/// The cluster's throttles.
#[derive(Debug)]
pub struct Throttles {
    commands: ConnectionManager,
    limits: ThrottleLimits,
    /// Makes each attempt's member unique in the cluster.
    node: u16,
    next: AtomicU64,
}

/// An attempt counted, until it is settled.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure until it is settled"]
pub struct Counted {
    /// The account's set (a login), then the others it counts in.
    account: Option<String>,
    others: Vec<String>,
    member: String,
}

/// Redis could not be asked: the caller falls back to its own counts.
#[derive(Debug)]
pub struct Unreachable;

impl Throttles {
    pub fn new(commands: ConnectionManager, node: u16, limits: ThrottleLimits) -> Self {
        Self {
            commands,
            limits,
            node,
            next: AtomicU64::new(0),
        }
    }

    /// Counts a login attempt on `account` from `source` as failed until
    /// settled, or `Err(wait)` when either is throttled.
    pub async fn begin_login(
        &self,
        account: &str,
        source: IpAddr,
    ) -> Result<Result<Counted, Duration>, Unreachable> {
        let limit = self.limits.login_failures.max(1);
        let counted = Counted {
            account: Some(format!("{PREFIX}login:account:{account}")),
            others: vec![format!("{PREFIX}login:address:{source}")],
            member: self.member(),
        };
        let keys = [
            counted.account.clone().unwrap_or_default(),
            counted.others[0].clone(),
        ];
        let wait = self
            .begin(
                &keys,
                self.limits.login_window,
                &counted.member,
                &[limit, limit],
            )
            .await?;
        Ok(wait.map_or(Ok(counted), Err))
    }

    /// Counts a registration from `source`, or `Err(wait)` when the
    /// address or the cluster has had its share.
    pub async fn begin_register(
        &self,
        source: IpAddr,
    ) -> Result<Result<Counted, Duration>, Unreachable> {
        let counted = Counted {
            account: None,
            others: vec![
                format!("{PREFIX}register:address:{source}"),
                format!("{PREFIX}register:all"),
            ],
            member: self.member(),
        };
        let limits = [
            self.limits.register_per_address.max(1),
            self.limits.register_overall.max(1),
        ];
        let wait = self
            .begin(
                &counted.others,
                self.limits.register_window,
                &counted.member,
                &limits,
            )
            .await?;
        Ok(wait.map_or(Ok(counted), Err))
    }

    /// The password was right: the account's failures are cleared, and
    /// the address keeps its earlier ones.
    pub async fn succeeded(&self, counted: Counted) {
        let mut pipe = redis::pipe();
        if let Some(account) = &counted.account {
            pipe.cmd("DEL").arg(account).ignore();
        }
        for key in &counted.others {
            pipe.cmd("ZREM").arg(key).arg(&counted.member).ignore();
        }
        let _ = pipe.query_async::<()>(&mut self.commands.clone()).await;
    }

    /// The attempt could not be decided: it counts for nothing.
    pub async fn abandoned(&self, counted: Counted) {
        let mut pipe = redis::pipe();
        for key in counted.account.iter().chain(&counted.others) {
            pipe.cmd("ZREM").arg(key).arg(&counted.member).ignore();
        }
        let _ = pipe.query_async::<()>(&mut self.commands.clone()).await;
    }

    fn member(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n}", self.node)
    }

    async fn begin(
        &self,
        keys: &[String],
        window: Duration,
        member: &str,
        limits: &[u32],
    ) -> Result<Option<Duration>, Unreachable> {
        let mut script = redis::cmd("EVAL");
        script
            .arg(BEGIN)
            .arg(keys.len())
            .arg(keys)
            .arg(now_millis())
            .arg(window.as_millis() as u64)
            .arg(member)
            .arg(limits);
        let wait: u64 = script
            .query_async(&mut self.commands.clone())
            .await
            .map_err(|err| {
                tracing::warn!(%err, "shared throttles unreachable: counting on this node alone");
                Unreachable
            })?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }
}
