//! The node's link to Redis: one task that publishes the node's events in
//! order (whatever is waiting goes in one pipeline), receives everyone's
//! from the subscription, beats, and reconnects with back-off when Redis
//! goes away. While the link is down the node's events are dropped, not
//! queued: its members were told the cluster is out of reach (`status`),
//! so nothing is claimed as delivered that was not.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::BusError;
use super::target::{Target, password_from_env};
use super::throttle::{ThrottleLimits, Throttles};
use super::wire::{Envelope, Event};

/// The one channel every node publishes on and follows.
const CHANNEL: &str = "netkit:chat:bus";
/// A counter suggesting each node that starts its number.
const NODES: &str = "netkit:chat:nodes";
/// A node's claim on its number, kept alive by its beats: a number is
/// taken while its key lives, also after Redis lost the counter.
const CLAIM: &str = "netkit:chat:node:";
/// Node numbers are 1 to this, so they fit beside a session's own
/// number in its id and in a message id's low bits.
pub const MOST_NODES: u64 = 1023;
/// Events published in one pipeline at most.
const BATCH: usize = 256;
/// Connecting, or one command, may take this long before Redis counts as
/// unreachable.
const DEADLINE: Duration = Duration::from_secs(2);
/// Reconnection back-off.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// Arrivals waiting for the server before the link stops reading.
const ARRIVALS: usize = 4096;

/// The node's own events waiting for Redis. Past this (a Redis that
/// accepts but answers slowly) new events are dropped and counted in the
/// log, rather than growing memory without bound; the other nodes see the
/// gap in the sequence numbers.
const OUTGOING: usize = 65_536;

/// A node's membership in a cluster, connected but not yet running.
#[derive(Debug)]
pub struct Bus {
    link: Link,
    uplink: Uplink,
    outgoing: mpsc::Receiver<Event>,
}

/// The connection to Redis.
#[derive(Debug)]
struct Link {
    target: Target,
    client: redis::Client,
    /// Commands and publishing; redis-rs reconnects it by itself.
    commands: ConnectionManager,
    node: u16,
    /// How long its claim lasts without a beat; it beats four times as often.
    presence: Duration,
}

/// What the link tells the server.
#[derive(Debug)]
pub enum Arrival {
    /// Connected (again): the cluster's events flow.
    Up,
    /// The link is down, and why; it is being retried.
    Down(String),
    /// Another node's event.
    Event(Envelope),
}

/// Where the server's parts hand the node's events to the link; sending
/// never blocks, so it may be done under the rooms' locks, in their order.
#[derive(Debug, Clone)]
pub struct Uplink(mpsc::Sender<Event>);

impl Uplink {
    pub fn send(&self, event: Event) {
        match self.0.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let dropped = DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "the bus is not keeping up: events not sent to the other nodes"
                    );
                }
            }
            // Gone only when the server is stopping.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Bus {
    /// Checks `url` (`redis://HOST:PORT[/DB]`, loopback only, or
    /// `rediss://`), connects, and claims a node number, which lives as
    /// long as the node beats within `presence`. The password comes from
    /// the environment (`NETKIT_REDIS_PASSWORD`, else `REDISCLI_AUTH`),
    /// never the URL.
    pub async fn connect(url: &str, presence: Duration) -> Result<Self, BusError> {
        let target = Target::parse(url, password_from_env())?;
        let unavailable = |why: String| BusError::Unavailable {
            shown: target.shown.clone(),
            why,
        };
        let client =
            redis::Client::open(target.url.as_str()).map_err(|err| unavailable(err.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE));
        let mut commands = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|err| unavailable(err.to_string()))?;
        let node = claim(&mut commands, presence)
            .await
            .map_err(|err| unavailable(err.to_string()))?
            .ok_or_else(|| unavailable(format!("all {MOST_NODES} node numbers are taken")))?;
        let (uplink, outgoing) = mpsc::channel(OUTGOING);
        Ok(Self {
            link: Link {
                target,
                client,
                commands,
                node,
                presence,
            },
            uplink: Uplink(uplink),
            outgoing,
        })
    }

    /// This node's number in the cluster.
    pub fn node(&self) -> u16 {
        self.link.node
    }

    /// `redis://HOST:PORT/DB`, never a password.
    pub fn shown(&self) -> &str {
        &self.link.target.shown
    }

    /// The login and registration throttles every node shares.
    pub fn throttles(&self, limits: ThrottleLimits) -> Throttles {
        Throttles::new(self.link.commands.clone(), self.link.node, limits)
    }

    /// Where the node's events go in; they leave once the link runs.
    pub fn uplink(&self) -> Uplink {
        self.uplink.clone()
    }

    /// Starts the link: the node's events go out from the uplink, everyone
    /// else's come out of the arrivals. It beats four times per presence
    /// bound and runs until `shutdown`, when it tells the others this node
    /// is gone.
    pub fn start(self, shutdown: CancellationToken) -> mpsc::Receiver<Arrival> {
        let (arrive, arrivals) = mpsc::channel(ARRIVALS);
        tokio::spawn(self.link.run(self.outgoing, arrive, shutdown));
        arrivals
    }
}

/// Claims the first free node number from the counter on; `None` when
/// every number is taken.
async fn claim(
    commands: &mut ConnectionManager,
    presence: Duration,
) -> Result<Option<u16>, redis::RedisError> {
    for _ in 0..MOST_NODES {
        let count: u64 = redis::cmd("INCR").arg(NODES).query_async(commands).await?;
        let node = ((count.max(1) - 1) % MOST_NODES + 1) as u16;
        let claimed: Option<String> = redis::cmd("SET")
            .arg(format!("{CLAIM}{node}"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(presence.as_millis() as u64)
            .query_async(commands)
            .await?;
        if claimed.is_some() {
            return Ok(Some(node));
        }
    }
    Ok(None)
}

impl Link {
    async fn run(
        self,
        mut outgoing: mpsc::Receiver<Event>,
        arrive: mpsc::Sender<Arrival>,
        shutdown: CancellationToken,
    ) {
        let mut seq = 0;
        let mut retry = FIRST_RETRY;
        let mut down = false;
        loop {
            let why = match self.subscribe().await {
                Ok(pubsub) => {
                    retry = FIRST_RETRY;
                    down = false;
                    if arrive.send(Arrival::Up).await.is_err() {
                        return;
                    }
                    let session = Session {
                        node: self.node,
                        presence: self.presence,
                        seq: &mut seq,
                        commands: self.commands.clone(),
                    };
                    match session
                        .serve(pubsub, &mut outgoing, &arrive, &shutdown)
                        .await
                    {
                        Ok(()) => return,
                        Err(why) => why,
                    }
                }
                Err(why) => why,
            };
            if !down {
                down = true;
                warn!(bus = %self.target.shown, %why, "lost the cluster bus: serving local members only");
                if arrive.send(Arrival::Down(why)).await.is_err() {
                    return;
                }
            }
            // Events made while down reach local members only; dropping
            // them here keeps them from arriving late, out of order.
            let wait = sleep(retry);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut wait => break,
                    event = outgoing.recv() => match event {
                        Some(_) => seq += 1,
                        None => return,
                    },
                }
            }
            retry = (retry * 2).min(LAST_RETRY);
        }
    }

    /// A subscription to the channel, once commands get through as well.
    async fn subscribe(&self) -> Result<redis::aio::PubSub, String> {
        let mut commands = self.commands.clone();
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            redis::cmd("PING").query_async::<()>(&mut commands).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match timeout(DEADLINE, connect).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {DEADLINE:?}")),
        }
    }
}

/// One connected spell of the link.
struct Session<'a> {
    node: u16,
    presence: Duration,
    seq: &'a mut u64,
    commands: ConnectionManager,
}

impl Session<'_> {
    /// Runs until shutdown (`Ok`) or until Redis fails (`Err`, why).
    async fn serve(
        mut self,
        pubsub: redis::aio::PubSub,
        outgoing: &mut mpsc::Receiver<Event>,
        arrive: &mpsc::Sender<Arrival>,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let mut messages = pubsub.into_on_message();
        self.publish(vec![Event::Hello]).await?;
        let beat = self.presence / 4;
        let mut beats = tokio::time::interval_at(Instant::now() + beat, beat);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // Whatever the node did last, then the news it is gone.
                    while let Ok(event) = outgoing.try_recv() {
                        batch.push(event);
                    }
                    batch.push(Event::Gone);
                    let _ = self.publish(std::mem::take(&mut batch)).await;
                    let mut release = redis::cmd("DEL");
                    release.arg(format!("{CLAIM}{}", self.node));
                    let _ = timeout(DEADLINE, release.query_async::<()>(&mut self.commands)).await;
                    return Ok(());
                }
                event = outgoing.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    batch.push(event);
                    while batch.len() < BATCH {
                        match outgoing.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    self.publish(std::mem::take(&mut batch)).await?;
                }
                message = messages.next() => {
                    let Some(message) = message else {
                        return Err("the subscription ended".into());
                    };
                    let envelope = match Envelope::decode(message.get_payload_bytes()) {
                        Ok(envelope) => envelope,
                        Err(err) => {
                            debug!(%err, "unreadable bus message skipped");
                            continue;
                        }
                    };
                    if envelope.node == self.node {
                        continue;
                    }
                    if arrive.send(Arrival::Event(envelope)).await.is_err() {
                        return Ok(());
                    }
                }
                _ = beats.tick() => self.publish(vec![Event::Beat]).await?,
            }
        }
    }

    /// Publishes `events` in order, in one round trip; a beat also renews
    /// the node's claim on its number (made again after Redis restarted).
    async fn publish(&mut self, events: Vec<Event>) -> Result<(), String> {
        let mut pipe = redis::pipe();
        if events.contains(&Event::Beat) || events.contains(&Event::Hello) {
            pipe.cmd("SET")
                .arg(format!("{CLAIM}{}", self.node))
                .arg(1)
                .arg("PX")
                .arg(self.presence.as_millis() as u64)
                .ignore();
        }
        for event in events {
            *self.seq += 1;
            let envelope = Envelope {
                node: self.node,
                seq: *self.seq,
                event,
            };
            let Ok(payload) = envelope.encode() else {
                continue;
            };
            pipe.cmd("PUBLISH").arg(CHANNEL).arg(payload).ignore();
        }
        match timeout(DEADLINE, pipe.query_async::<()>(&mut self.commands)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {DEADLINE:?}")),
        }
    }
}
