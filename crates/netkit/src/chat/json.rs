//! `netkit chat join --json`: each event of the session as one JSON object
//! a line, in netkit's JSON style (snake_case, RFC 3339 times). Text is
//! given as received: JSON escaping, not the terminal's, keeps it harmless.

use std::time::{Duration, SystemTime};

use chat::client::Event;
use serde_json::{Value, json};

use crate::json::rfc3339;

/// The object for one event; `None` for the user list, which only updates
/// the client's state.
pub fn event(event: &Event) -> Option<Value> {
    Some(match event {
        Event::Message {
            from,
            text,
            time,
            room,
            id,
            history,
        } => json!({
            "type": "message",
            "from": from,
            "text": text,
            "time": rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(*time)),
            "room": room,
            "id": id,
            "history": history,
        }),
        Event::HistoryEnd { room, count } => {
            json!({"type": "history_end", "room": room, "count": count})
        }
        Event::Direct {
            from,
            text,
            relayed,
        } => json!({
            "type": "direct",
            "from": from,
            "text": text,
            "verified": true,
            "relayed": relayed,
        }),
        Event::Relayed { to } => json!({"type": "relayed", "to": to}),
        Event::Unverified {
            source,
            claimed,
            text,
            why,
        } => json!({
            "type": "direct",
            "from": claimed,
            "text": text,
            "verified": false,
            "source": source.map(|source| source.to_string()),
            "why": why.describe(),
        }),
        Event::Joined { name, room } => json!({"type": "joined", "name": name, "room": room}),
        Event::Left { name, reason, room } => {
            json!({"type": "left", "name": name, "reason": reason, "room": room})
        }
        Event::RoomJoined {
            room,
            topic,
            created,
            operators,
        } => json!({
            "type": "room_joined",
            "room": room,
            "topic": topic,
            "created": created,
            "operators": operators,
        }),
        Event::RoomParted { room } => json!({"type": "room_parted", "room": room}),
        Event::Rooms(rooms) => json!({"type": "rooms", "rooms": rooms}),
        Event::Members { room, names } => {
            json!({"type": "members", "room": room, "names": names})
        }
        Event::Topic { room, topic, by } => {
            json!({"type": "topic", "room": room, "topic": topic, "by": by})
        }
        Event::Moderation {
            action,
            user,
            by,
            room,
            reason,
        } => json!({
            "type": "moderation",
            "action": action,
            "user": user,
            "by": by,
            "room": room,
            "reason": reason,
        }),
        Event::Bans(bans) => json!({
            "type": "bans",
            "bans": bans
                .iter()
                .map(|ban| json!({
                    "room": ban.room,
                    "user": ban.user,
                    "by": ban.by,
                    "time": rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(ban.time)),
                    "reason": ban.reason,
                }))
                .collect::<Vec<_>>(),
        }),
        Event::Users(_) => return None,
        Event::Status { cluster, text } => {
            json!({"type": "status", "cluster": cluster, "text": text})
        }
        Event::Error { code, text } => json!({"type": "error", "code": code, "text": text}),
        Event::Closed { code, text } => json!({"type": "closed", "code": code, "text": text}),
    })
}

/// The first line: where the session is and who is there.
pub fn connected(server: &str, user: &str, online: usize, tls: Option<String>) -> Value {
    json!({
        "type": "connected",
        "server": server,
        "user": user,
        "online": online,
        "tls": tls,
    })
}

/// A line the client itself says (a command's answer, a usage note).
pub fn notice(text: &str) -> Value {
    json!({"type": "notice", "text": text})
}
