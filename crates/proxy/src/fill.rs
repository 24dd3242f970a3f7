//! Filling the cache from a response on its way to the client: the copy the
//! body makes ([`crate::body::Tee`]) is written to a temporary file with its
//! checksum, then committed and indexed. A copy that ends early (the client
//! left, the origin broke off, the object outgrew --max-object-size) is
//! thrown away and never becomes an entry.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use http_cache_semantics::CachePolicy;
use tokio::sync::mpsc;
use tracing::{debug, warn};
use xxhash_rust::xxh3::Xxh3;

use crate::body::Chunk;
use crate::cache::{Entry, Leader, Meta, Outcome, VariantId, unix_seconds};
use crate::state::State;

/// Chunks in flight between the client's response and the writer.
const CHANNEL: usize = 32;
const WRITE_BUFFER: usize = 64 * 1024;

#[derive(Debug)]
pub struct Plan {
    pub id: VariantId,
    pub url: String,
    pub policy: CachePolicy,
    pub status: http::StatusCode,
    /// The response's header fields, hop-by-hop ones removed.
    pub headers: HeaderMap,
    /// The `Content-Length` the origin announced, if any.
    pub expected_len: Option<u64>,
}

/// Starts the writer; returns where the body copy goes. `leader`, if given,
/// learns the outcome once the entry is indexed (or is dropped on failure).
pub fn start(state: Arc<State>, plan: Plan, leader: Option<Leader>) -> mpsc::Sender<Chunk> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::task::spawn_blocking(move || {
        let url = plan.url.clone();
        match write(&state, plan, rx) {
            Ok(Some((entry, memory))) => {
                debug!(%url, bytes = entry.meta.body_len, "stored");
                state.cache.insert(entry, memory);
                if let Some(leader) = leader {
                    leader.finish(Outcome::Stored);
                }
            }
            Ok(None) => debug!(%url, "response not stored: copy incomplete"),
            Err(err) => warn!(%url, %err, "cannot store response"),
        }
    });
    tx
}

type Written = Option<(Entry, Option<Bytes>)>;

fn write(state: &State, plan: Plan, mut rx: mpsc::Receiver<Chunk>) -> io::Result<Written> {
    let disk = state.cache.disk();
    let limits = *state.cache.limits();
    let (temp, file) = disk.create_temp()?;
    let result = (|| {
        let mut file = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut memory = match plan.expected_len {
            Some(len) if len <= limits.memory_object => Some(Vec::with_capacity(len as usize)),
            Some(_) => None,
            None => Some(Vec::new()),
        };
        let mut hasher = Xxh3::new();
        let mut len = 0u64;
        let complete = loop {
            match rx.blocking_recv() {
                Some(Chunk::Data(data)) => {
                    len += data.len() as u64;
                    if len > limits.object {
                        break false;
                    }
                    hasher.update(&data);
                    file.write_all(&data)?;
                    if len > limits.memory_object {
                        memory = None;
                    } else if let Some(memory) = &mut memory {
                        memory.extend_from_slice(&data);
                    }
                }
                Some(Chunk::End) => break true,
                // hyper stops polling a body once it has sent the length the
                // headers announced, so a complete copy may end without `End`.
                None => break plan.expected_len == Some(len),
            }
        };
        // Stop the copy at once if we are giving up.
        drop(rx);
        if !complete || plan.expected_len.is_some_and(|expected| expected != len) {
            return Ok(None);
        }
        file.flush()?;
        drop(file);
        let meta = Meta {
            id: plan.id,
            url: plan.url,
            policy: plan.policy,
            status: plan.status,
            headers: plan.headers,
            body_len: len,
            body_hash: hasher.digest(),
            stored_at: unix_seconds(SystemTime::now()),
        };
        let size = disk.commit(&meta, Some(&temp))?;
        Ok(Some((
            Entry::new(meta, size),
            memory.map(crate::zerocopy::body),
        )))
    })();
    if !matches!(result, Ok(Some(_))) {
        let _ = fs::remove_file(&temp);
    }
    result
}
