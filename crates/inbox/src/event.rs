//! What the inbox tells its watchers (the SSE stream, the live list).

use serde_json::json;

use crate::index::Summary;

#[derive(Debug, Clone)]
pub enum Event {
    /// A message arrived.
    New(Box<Summary>),
    /// Messages were marked read or unread.
    Read { ids: Vec<String>, read: bool },
    /// Messages were deleted (by a user or by `--max-messages`).
    Deleted(Vec<String>),
    /// Every message was deleted.
    Cleared,
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::New(_) => "new",
            Event::Read { .. } => "read",
            Event::Deleted(_) => "delete",
            Event::Cleared => "clear",
        }
    }

    /// The SSE data: one line of JSON.
    pub fn data(&self) -> String {
        match self {
            Event::New(summary) => serde_json::to_string(summary).expect("a summary serializes"),
            Event::Read { ids, read } => json!({ "IDs": ids, "Read": read }).to_string(),
            Event::Deleted(ids) => json!({ "IDs": ids }).to_string(),
            Event::Cleared => "{}".into(),
        }
    }
}
