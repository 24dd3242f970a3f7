//! Relayed direct messages: for a peer that cannot be reached over UDP,
//! and for clients without UDP at all (browsers). The server passes the
//! sender's signed message to the one session it was sealed for, filling
//! in `from` with the sender's account; it cannot change anything the
//! signature covers without the recipient noticing (direct.rs). Relayed
//! messages are not stored, and their text is never logged.

use tokio::sync::mpsc::error::TrySendError;
use tracing::debug;

use super::requests::error;
use super::session::Member;
use crate::bus::wire::Event;
use crate::frame::{Direct, ErrorCode, LeaveReason, Relay, ServerFrame, encode};

impl Member<'_> {
    pub(super) fn relay(&self, relay: Relay) {
        let max = self.shared.config.max_text;
        if relay.text.is_empty() || relay.text.len() > max {
            let why = format!(
                "message text must be 1 to {max} bytes, not {}",
                relay.text.len()
            );
            self.reply(&error(ErrorCode::InvalidText, why));
            return;
        }
        let session = self
            .shared
            .room
            .sessions(&relay.to)
            .into_iter()
            .find(|session| session.key == relay.key);
        let Some(session) = session else {
            let shown: String = relay.to.chars().take(crate::name::MAX_NAME).collect();
            let text = format!("{shown} is not online with that key");
            self.reply(&error(ErrorCode::NotOnline, text));
            return;
        };
        let direct = ServerFrame::Direct(Direct {
            from: self.name.to_string(),
            to: relay.to,
            seq: relay.seq,
            text: relay.text,
            sig: relay.sig,
        });
        let Ok(line) = encode(&direct) else {
            self.reply(&error(ErrorCode::InvalidText, "the message is too long"));
            return;
        };
        debug!(from = %self.name, "direct message relayed");
        match (session.outbox, session.kick) {
            (Some(outbox), Some(kick)) => {
                if let Err(TrySendError::Full(_)) = outbox.try_send(line) {
                    kick.fire(
                        ErrorCode::SlowConsumer,
                        LeaveReason::SlowConsumer,
                        "outgoing queue full: not reading fast enough",
                    );
                }
            }
            // On another node: that node delivers it.
            (None, None) => self.shared.room.tell(|| Event::Relay {
                to: session.id,
                line: String::from_utf8_lossy(&line).into_owned(),
            }),
            // Logged in here, its queue not made yet: as if offline.
            _ => {}
        }
    }
}
