//! A member's writer: one task per member that drains the member's reply
//! queue and the room's events to the socket, gathering whatever is ready
//! into one vectored write of the shared encoded frames, so a busy room
//! costs one system call per member per round, not one per message, and no
//! copies. It also notices a member that has stopped reading.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until, timeout};

use super::room::{Event, Kick, SessionId};
use crate::connection::FrameSink;
use crate::frame::{ErrorCode, LeaveReason, ServerFrame, encode};

/// Frames gathered into one (vectored) write.
const BATCH: usize = 256;

/// How often a writer blocked on a client that does not read checks
/// whether the room has left it behind.
const LAG_CHECK: Duration = Duration::from_millis(100);

/// The pace of writes to one member in a busy room: one per this
/// interval on average. Each write costs the server's core several
/// microseconds of TCP work, so with a write per message per member a busy
/// room saturates the core long before the messages themselves do; waiting
/// gathers them, as one pass of a select loop like ngircd's does.
/// (1,000 members at 1.25 messages a second each: p99 106-270 ms without
/// it, 24-70 ms with it.)
const COALESCE: Duration = Duration::from_millis(15);

/// Writes a member may get back to back before the pace applies, so a
/// quiet room adds nothing and a short burst (someone joins: `joined`,
/// then the new user list) is not held back.
const BURST: u32 = 4;

/// A batch of this many frames is written at once, pace or not: the write
/// is already worth its cost, and holding it back would only let the
/// member's backlog grow towards `--queue`.
const PACED_BELOW: usize = 32;

/// How long a last frame (`bye`) may take to write before the socket is
/// simply closed.
pub(super) const BYE_WAIT: Duration = Duration::from_secs(1);

/// What the writer found waiting.
enum Drained {
    More,
    Lagged(u64),
    Done,
}

/// Moves replies and room events into `batch` without waiting.
fn drain(
    batch: &mut Vec<Bytes>,
    queue: &mut mpsc::Receiver<Bytes>,
    events: &mut broadcast::Receiver<Event>,
    me: SessionId,
) -> Drained {
    while batch.len() < BATCH {
        if let Ok(line) = queue.try_recv() {
            batch.push(line);
            continue;
        }
        match events.try_recv() {
            Ok(event) if event.from == me => {}
            Ok(event) => batch.push(event.line),
            Err(TryRecvError::Lagged(n)) => return Drained::Lagged(n),
            Err(TryRecvError::Empty) => return Drained::More,
            Err(TryRecvError::Closed) => return Drained::Done,
        }
    }
    Drained::More
}

/// Writes until kicked; then flushes queued replies and a `bye` if the
/// stream is at a frame boundary, and closes.
pub(super) async fn write_member<W: FrameSink>(
    mut writer: W,
    mut queue: mpsc::Receiver<Bytes>,
    mut events: broadcast::Receiver<Event>,
    me: SessionId,
    kick: Kick,
    capacity: usize,
) {
    let mut batch = Vec::new();
    // When the next write would be due if writes went exactly at the
    // pace (the generic cell rate algorithm); it may come up to BURST - 1
    // intervals early.
    let mut due = Instant::now();
    let early = COALESCE * (BURST - 1);
    let lagged = |n: u64| {
        let text = format!("fell {n} events behind the room");
        kick.fire(ErrorCode::SlowConsumer, LeaveReason::SlowConsumer, text);
    };
    let fired = kick.fired();
    tokio::pin!(fired);
    let at_boundary = loop {
        tokio::select! {
            biased;
            _ = &mut fired => break true,
            line = queue.recv() => match line {
                Some(line) => batch.push(line),
                None => break true,
            },
            event = events.recv() => match event {
                Ok(event) if event.from == me => continue,
                Ok(event) => batch.push(event.line),
                Err(RecvError::Lagged(n)) => { lagged(n); break true }
                Err(RecvError::Closed) => break true,
            },
        }
        let mut drained = drain(&mut batch, &mut queue, &mut events, me);
        if matches!(drained, Drained::More)
            && (1..PACED_BELOW).contains(&batch.len())
            && let Some(ready_at) = due.checked_sub(early)
            && ready_at > Instant::now()
        {
            tokio::select! {
                biased;
                _ = &mut fired => break true,
                _ = sleep_until(ready_at) => {}
            }
            drained = drain(&mut batch, &mut queue, &mut events, me);
        }
        match drained {
            Drained::More if batch.is_empty() => continue,
            Drained::More => {}
            Drained::Lagged(n) => {
                lagged(n);
                break true;
            }
            Drained::Done => break true,
        }
        let written = {
            let write = writer.write_frames(&batch);
            tokio::pin!(write);
            loop {
                tokio::select! {
                    biased;
                    written = &mut write => break Some(written),
                    // Kicked mid-write: finish the frames under way if the
                    // client reads at all, so `bye` starts on a line of its own.
                    _ = &mut fired => break timeout(BYE_WAIT, &mut write).await.ok(),
                    // A client that stopped reading blocks this write for
                    // good; the room moving on without it is the overflow.
                    _ = tokio::time::sleep(LAG_CHECK) => {
                        if events.len() > capacity {
                            lagged(events.len() as u64);
                            break None;
                        }
                    }
                }
            }
        };
        match written {
            Some(Ok(())) => {
                // Given back rather than kept for the next round: a member
                // waiting for the room to speak holds no batch.
                batch = Vec::new();
                due = due.max(Instant::now()) + COALESCE;
            }
            Some(Err(_)) | None => break false,
        }
    };
    if at_boundary {
        while let Ok(line) = queue.try_recv() {
            batch.push(line);
        }
        if let Some(farewell) = kick.farewell() {
            let bye = ServerFrame::Bye {
                code: farewell.code,
                text: farewell.text,
            };
            batch.extend(encode(&bye));
        }
        let _ = timeout(BYE_WAIT, writer.write_frames(&batch)).await;
    }
    let _ = timeout(BYE_WAIT, writer.close()).await;
}
