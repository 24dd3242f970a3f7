//! The metadata file of a cache entry: what the proxy needs to answer from
//! the entry (the caching policy and the stored response header fields) and
//! what it needs to trust the body file (its length and checksum).
//!
//! On disk: `MAGIC`, the JSON length (u32 LE), the JSON's xxh3-64 (u64 LE),
//! then the JSON. Anything that does not check out is rejected, so a torn or
//! tampered file is never taken for an entry.

use std::fmt;
use std::time::SystemTime;

use http_cache_semantics::CachePolicy;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// The last byte is the format's version.
const MAGIC: &[u8; 8] = b"NKPCMET3";
const HEADER: usize = MAGIC.len() + 4 + 8;
/// Metadata is headers and a few numbers; anything bigger is not ours.
const MAX_JSON: usize = 1 << 20;

/// One stored response: a URL and, for `Vary` responses, the selecting
/// request header values, hashed into a name for its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VariantId(#[serde(with = "hex128")] u128);

impl VariantId {
    /// `vary` is the list of `(lower-case name, request value)` pairs the
    /// response's `Vary` header selects, in the order the response names them.
    pub fn new(url: &str, vary: &[(String, Vec<u8>)]) -> VariantId {
        let mut key = Vec::with_capacity(url.len() + 64);
        key.extend_from_slice(url.as_bytes());
        for (name, value) in vary {
            key.push(0);
            key.extend_from_slice(name.as_bytes());
            key.push(b':');
            key.extend_from_slice(value);
        }
        VariantId(xxh3_128(&key))
    }
}

impl fmt::Display for VariantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        u128::from_str_radix(text, 16).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub id: VariantId,
    pub url: String,
    pub policy: CachePolicy,
    /// The stored response's status, for serving it stale (the policy
    /// tells it only for a fresh response).
    #[serde(with = "http_serde::status_code")]
    pub status: http::StatusCode,
    /// The stored header fields, every value of each: the policy's view of
    /// the response keeps only the last value of a repeated field.
    #[serde(with = "http_serde::header_map")]
    pub headers: http::HeaderMap,
    pub body_len: u64,
    pub body_hash: u64,
    /// Seconds since the epoch of the last store or refresh; restores the
    /// least-recently-used order approximately after a restart.
    pub stored_at: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    #[error("not a cache metadata file")]
    Magic,
    #[error("metadata from another netkit version")]
    Version,
    #[error("truncated or oversized metadata")]
    Length,
    #[error("metadata checksum mismatch")]
    Checksum,
    #[error("unreadable metadata: {0}")]
    Json(String),
}

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("metadata always serializes");
        let mut out = Vec::with_capacity(HEADER + json.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&xxh3_64(&json).to_le_bytes());
        out.extend_from_slice(&json);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Meta, MetaError> {
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            let (family, version) = MAGIC.split_at(MAGIC.len() - 1);
            if bytes.starts_with(family) && bytes.get(family.len()) != Some(&version[0]) {
                return Err(MetaError::Version);
            }
            return Err(MetaError::Magic);
        }
        let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let sum = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let json = &bytes[HEADER..];
        if len > MAX_JSON || json.len() != len {
            return Err(MetaError::Length);
        }
        if xxh3_64(json) != sum {
            return Err(MetaError::Checksum);
        }
        serde_json::from_slice(json).map_err(|err| MetaError::Json(err.to_string()))
    }
}

/// Seconds since the epoch, as `stored_at` counts them.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn sample(url: &str, body: &[u8]) -> Meta {
        let request = http::Request::get(url)
            .header("host", "example.com")
            .body(())
            .unwrap();
        let response = http::Response::builder()
            .header("cache-control", "max-age=60")
            .header("content-type", "text/plain")
            .header("link", "</a.css>; rel=preload")
            .header("link", "</b.js>; rel=preload")
            .body(())
            .unwrap();
        Meta {
            id: VariantId::new(url, &[]),
            url: url.to_owned(),
            policy: CachePolicy::new(&request, &response),
            status: http::StatusCode::OK,
            headers: response.headers().clone(),
            body_len: body.len() as u64,
            body_hash: xxh3_64(body),
            stored_at: 1_700_000_000,
        }
    }

    #[test]
    fn round_trip() {
        let meta = sample("http://example.com/a", b"hello");
        let decoded = Meta::decode(&meta.encode()).unwrap();
        assert_eq!(decoded.id, meta.id);
        assert_eq!(decoded.url, meta.url);
        assert_eq!(decoded.body_len, 5);
        assert_eq!(decoded.body_hash, meta.body_hash);
        assert!(decoded.policy.is_storable());
        assert_eq!(decoded.headers.get_all("link").iter().count(), 2);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = sample("http://example.com/a", b"hello").encode();
        assert_eq!(
            Meta::decode(&bytes[..bytes.len() - 1]).unwrap_err(),
            MetaError::Length
        );
        assert_eq!(Meta::decode(&bytes[..10]).unwrap_err(), MetaError::Magic);
        let mut older = bytes.clone();
        older[7] = b'1';
        assert_eq!(Meta::decode(&older).unwrap_err(), MetaError::Version);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x20;
        assert_eq!(Meta::decode(&flipped).unwrap_err(), MetaError::Checksum);
    }

    #[test]
    fn variants_differ_by_selected_headers() {
        let url = "http://example.com/a";
        let gzip = [("accept-encoding".to_owned(), b"gzip".to_vec())];
        let plain = [("accept-encoding".to_owned(), b"identity".to_vec())];
        assert_ne!(VariantId::new(url, &gzip), VariantId::new(url, &plain));
        assert_ne!(VariantId::new(url, &gzip), VariantId::new(url, &[]));
        assert_eq!(VariantId::new(url, &gzip), VariantId::new(url, &gzip));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Meta::decode(&bytes);
        }

        #[test]
        fn valid_header_with_arbitrary_json_never_panics(json in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&xxh3_64(&json).to_le_bytes());
            bytes.extend_from_slice(&json);
            prop_assert!(Meta::decode(&bytes).is_err() || !json.is_empty());
        }

        #[test]
        fn any_single_byte_flip_is_rejected(at in 0usize..400, bit in 0u8..8) {
            let bytes = sample("http://example.com/x", b"body").encode();
            let at = at % bytes.len();
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            prop_assert!(Meta::decode(&damaged).is_err());
        }
    }
}
