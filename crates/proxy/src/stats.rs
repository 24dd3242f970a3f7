//! What the proxy counts, and the page at `http://netkit.proxy/stats` that
//! shows it as JSON, or as HTML to a client that accepts HTML.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cache::Usage;

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    revalidations: AtomicU64,
    bypasses: AtomicU64,
    bytes_from_cache: AtomicU64,
    tunnels: AtomicU64,
    denied: AtomicU64,
}

/// The counters at one moment, with the cache's usage.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub uptime_seconds: u64,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub revalidations: u64,
    pub bypasses: u64,
    pub bytes_from_cache: u64,
    pub tunnels: u64,
    pub denied: u64,
    pub entries: u64,
    pub disk_bytes: u64,
    pub disk_limit: u64,
    pub memory_entries: u64,
    pub memory_bytes: u64,
}

/// What a request counts as.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Hit { bytes: u64 },
    Miss,
    Revalidation { bytes: u64 },
    Bypass,
    Tunnel,
    Denied,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            revalidations: AtomicU64::new(0),
            bypasses: AtomicU64::new(0),
            bytes_from_cache: AtomicU64::new(0),
            tunnels: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub fn count(&self, what: Counted) {
        let add = |counter: &AtomicU64, n| {
            counter.fetch_add(n, Ordering::Relaxed);
        };
        add(&self.requests, 1);
        match what {
            Counted::Hit { bytes } => {
                add(&self.hits, 1);
                add(&self.bytes_from_cache, bytes);
            }
            Counted::Revalidation { bytes } => {
                add(&self.revalidations, 1);
                add(&self.bytes_from_cache, bytes);
            }
            Counted::Miss => add(&self.misses, 1),
            Counted::Bypass => add(&self.bypasses, 1),
            Counted::Tunnel => add(&self.tunnels, 1),
            Counted::Denied => add(&self.denied, 1),
        }
    }

    pub fn snapshot(&self, usage: Usage, disk_limit: u64) -> Snapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            uptime_seconds: self.started.elapsed().as_secs(),
            requests: get(&self.requests),
            hits: get(&self.hits),
            misses: get(&self.misses),
            revalidations: get(&self.revalidations),
            bypasses: get(&self.bypasses),
            bytes_from_cache: get(&self.bytes_from_cache),
            tunnels: get(&self.tunnels),
            denied: get(&self.denied),
            entries: usage.entries,
            disk_bytes: usage.disk_bytes,
            disk_limit,
            memory_entries: usage.memory_entries,
            memory_bytes: usage.memory_bytes,
        }
    }
}

impl Snapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("counters always serialize") + "\n"
    }

    pub fn to_html(&self) -> String {
        let lookups = self.hits + self.misses + self.revalidations;
        let ratio = if lookups == 0 {
            0.0
        } else {
            100.0 * (self.hits + self.revalidations) as f64 / lookups as f64
        };
        let uptime = Duration::from_secs(self.uptime_seconds);
        let rows = [
            ("Requests", self.requests.to_string()),
            ("Hits", self.hits.to_string()),
            ("Misses", self.misses.to_string()),
            ("Revalidations", self.revalidations.to_string()),
            ("Bypasses", self.bypasses.to_string()),
            ("CONNECT tunnels", self.tunnels.to_string()),
            ("Denied", self.denied.to_string()),
            ("Hit ratio", format!("{ratio:.1} %")),
            ("Served from cache", human(self.bytes_from_cache)),
            ("Entries", self.entries.to_string()),
            (
                "Disk use",
                format!("{} of {}", human(self.disk_bytes), human(self.disk_limit)),
            ),
            (
                "Memory tier",
                format!(
                    "{} entries, {}",
                    self.memory_entries,
                    human(self.memory_bytes)
                ),
            ),
            ("Uptime", format!("{} s", uptime.as_secs())),
        ];
        let rows: String = rows
            .iter()
            .map(|(name, value)| format!("<tr><th>{name}</th><td>{value}</td></tr>\n"))
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>netkit proxy: statistics</title>\n<style>\
             body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse}}th,td{{padding:.35em 1em;border-bottom:1px solid #ddd}}\
             th{{text-align:left;font-weight:600}}td{{text-align:right;font-variant-numeric:tabular-nums}}\
             </style></head>\n<body><h1>netkit proxy</h1>\n<table>\n{rows}</table>\n\
             <p>The same figures as JSON: request this page without <code>Accept: text/html</code>.</p>\
             </body></html>\n"
        )
    }
}

/// Bytes for people: `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let stats = Stats::default();
        stats.count(Counted::Miss);
        stats.count(Counted::Hit { bytes: 1024 });
        stats.count(Counted::Hit { bytes: 1024 });
        let usage = Usage {
            entries: 1,
            disk_bytes: 1500,
            memory_entries: 1,
            memory_bytes: 1024,
        };
        let snapshot = stats.snapshot(usage, 1 << 30);
        assert_eq!(
            (snapshot.requests, snapshot.hits, snapshot.misses),
            (3, 2, 1)
        );
        let json: serde_json::Value = serde_json::from_str(&snapshot.to_json()).unwrap();
        assert_eq!(json["bytes_from_cache"], 2048);
        assert_eq!(json["entries"], 1);
        let html = snapshot.to_html();
        assert!(html.contains("<th>Hits</th><td>2</td>"), "{html}");
        assert!(html.contains("66.7 %"), "{html}");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(12), "12 B");
    }
}
