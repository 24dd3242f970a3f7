//! This node's side of the cluster (crate::bus): applies the other nodes'
//! events to the rooms and delivers them to the members here, keeps track
//! of which nodes are alive, and tells members when the link is down.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Shared;
use super::rooms::{DEFAULT_ROOM, Seat};
use crate::bus::Arrival;
use crate::bus::wire::{Envelope, Event};
use crate::frame::{ClusterState, LeaveReason, ServerFrame};
use crate::history::Stored;

/// What members are told while this node is cut off.
pub(super) const DEGRADED: &str =
    "this server lost its cluster: messages reach its own members only until it is back";
const CONNECTED: &str = "this server is linked to its cluster again";

/// What this node knows of another.
struct Peer {
    /// When it was last heard from.
    heard: Instant,
    /// The last of its sequence numbers seen.
    seq: u64,
}

/// Follows the cluster until `shutdown`.
pub(super) async fn follow(
    shared: &Shared,
    mut arrivals: mpsc::Receiver<Arrival>,
    presence: Duration,
    shutdown: CancellationToken,
) {
    let mut peers: HashMap<u16, Peer> = HashMap::new();
    let mut linked = false;
    let mut checks = tokio::time::interval(presence / 4);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            arrival = arrivals.recv() => match arrival {
                None => return,
                Some(Arrival::Up) => {
                    linked = true;
                    // Whoever dropped this node while it was away learns
                    // its sessions again.
                    sync(shared);
                    // Everyone gets a fresh bound: they could not be heard
                    // while the link was down.
                    let now = Instant::now();
                    for peer in peers.values_mut() {
                        peer.heard = now;
                    }
                    if shared.degraded.swap(false, Ordering::AcqRel) {
                        info!("cluster bus back: delivering cluster-wide again");
                        shared.room.broadcast(&ServerFrame::Status {
                            cluster: ClusterState::Connected,
                            text: CONNECTED.into(),
                        });
                    }
                }
                Some(Arrival::Down(_)) => {
                    linked = false;
                    if !shared.degraded.swap(true, Ordering::AcqRel) {
                        shared.room.broadcast(&ServerFrame::Status {
                            cluster: ClusterState::Degraded,
                            text: DEGRADED.into(),
                        });
                    }
                }
                Some(Arrival::Event(envelope)) => {
                    let node = envelope.node;
                    let peer = peers.entry(node).or_insert(Peer { heard: Instant::now(), seq: 0 });
                    peer.heard = Instant::now();
                    if peer.seq != 0 && envelope.seq != peer.seq + 1 {
                        warn!(node, missed = envelope.seq.saturating_sub(peer.seq + 1), "events from a node were lost on the bus");
                    }
                    peer.seq = envelope.seq;
                    if matches!(envelope.event, Event::Gone) {
                        peers.remove(&node);
                    }
                    apply(shared, envelope);
                }
            },
            _ = checks.tick() => {
                // Nobody can be heard while the link is down: wait for it.
                if !linked {
                    continue;
                }
                let dead: Vec<u16> = peers
                    .iter()
                    .filter(|(_, peer)| peer.heard.elapsed() > presence)
                    .map(|(node, _)| *node)
                    .collect();
                for node in dead {
                    warn!(node, ?presence, "a cluster node went silent: its users leave");
                    peers.remove(&node);
                    forget(shared, node, LeaveReason::Lost);
                }
            }
        }
    }
}

/// Tells the other nodes everything this one holds.
fn sync(shared: &Shared) {
    shared.room.tell(|| Event::Sync {
        sessions: shared.room.local(),
        rooms: shared.rooms.local(),
    });
}

/// Ends every session of node `node` here.
fn forget(shared: &Shared, node: u16, reason: LeaveReason) {
    shared.rooms.sync(node, Vec::new(), reason, |_| None);
    shared.room.sync(node, Vec::new(), reason);
}

fn apply(shared: &Shared, envelope: Envelope) {
    let node = envelope.node;
    match envelope.event {
        Event::Hello => sync(shared),
        Event::Sync { sessions, rooms } => {
            shared.room.sync(node, sessions, LeaveReason::Lost);
            shared
                .rooms
                .sync(node, rooms, LeaveReason::Lost, |id| shared.room.entry(id));
        }
        Event::Beat => {}
        Event::Gone => forget(shared, node, LeaveReason::Shutdown),
        Event::Joined(present) => shared.room.remote_joined(present),
        Event::Left { id, reason } => shared.room.remote_left(id, reason),
        Event::Said {
            id,
            time,
            from,
            text,
            room,
        } => {
            shared.history.heard(Stored {
                id,
                room: room.clone().unwrap_or_else(|| DEFAULT_ROOM.to_owned()),
                from: from.clone(),
                text: text.clone(),
                time,
            });
            let message = ServerFrame::Message {
                from,
                text,
                time,
                room: room.clone(),
                id: Some(id),
                history: false,
            };
            match room {
                Some(room) => shared.rooms.remote_say(&room, &message),
                None => shared.room.broadcast(&message),
            }
        }
        Event::RoomJoined { room, id, operator } => {
            if let Some(entry) = shared.room.entry(id) {
                shared
                    .rooms
                    .remote_join(&room, Seat::remote(id, entry), operator);
            }
        }
        Event::RoomLeft { room, id, reason } => shared.rooms.remote_leave(&room, id, reason),
        Event::Topic { room, topic, by } => shared.rooms.remote_topic(&room, topic, by),
        Event::Moderated {
            room,
            action,
            target,
            by,
            reason,
        } => shared
            .rooms
            .remote_moderate(&room, action, target, by, reason),
        Event::Ended {
            account,
            code,
            text,
            deleted,
        } => {
            if deleted {
                shared.rooms.forget(&account);
            }
            for session in shared.room.sessions(&account) {
                if let Some(kick) = session.kick {
                    kick.fire(code, LeaveReason::Kicked, text.clone());
                }
            }
        }
        Event::Relay { to, line } => shared.room.deliver_to(to, Bytes::from(line)),
    }
}
