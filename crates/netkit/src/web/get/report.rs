//! What a transfer was, for scripts: `-w/--write-out` with curl's variables,
//! and `--json-output`. Times are taken as the client reports each event on
//! the socket (resolved, connected, TLS done, response head read), from the
//! start of the transfer, as curl measures them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use web::{Event, RequestHead, ResponseHead};

use super::render::{shown_value, version_text};

#[derive(Debug)]
pub struct Exchange {
    start: Instant,
    namelookup: Option<Duration>,
    connect: Option<Duration>,
    appconnect: Option<Duration>,
    starttransfer: Option<Duration>,
    pub total: Duration,
    tls: Option<(String, Option<String>)>,
    remote: Option<SocketAddr>,
    request: Option<RequestHead>,
    response: Option<ResponseHead>,
    pub url: String,
    pub url_effective: String,
    pub num_redirects: usize,
    pub size_download: u64,
    pub size_upload: u64,
    pub exit_code: u8,
    pub error: Option<String>,
    /// The body, kept for `--json-output` when it has no file to go to.
    pub captured: Option<Vec<u8>>,
    /// Response heads for `-i` to write at the start of the output file.
    pub heads: Vec<u8>,
}

impl Exchange {
    pub fn new(url: &str) -> Self {
        Self {
            start: Instant::now(),
            namelookup: None,
            connect: None,
            appconnect: None,
            starttransfer: None,
            total: Duration::ZERO,
            tls: None,
            remote: None,
            request: None,
            response: None,
            url: url.to_owned(),
            url_effective: url.to_owned(),
            num_redirects: 0,
            size_download: 0,
            size_upload: 0,
            exit_code: 0,
            error: None,
            captured: None,
            heads: Vec::new(),
        }
    }

    pub fn observe(&mut self, event: &Event) {
        let now = self.start.elapsed();
        match event {
            Event::Resolved { .. } => self.namelookup = Some(now),
            Event::Connected { addr } => {
                self.connect = Some(now);
                self.remote = Some(*addr);
            }
            Event::Tls { description, alpn } => {
                self.appconnect = Some(now);
                self.tls = Some((description.clone(), alpn.clone()));
            }
            Event::Request(head) => self.request = Some(head.clone()),
            Event::Response(head) => {
                self.starttransfer = Some(now);
                self.response = Some(head.clone());
            }
            Event::Connecting { .. } | Event::Reused { .. } | Event::Redirect { .. } => {}
        }
    }

    pub fn finish(&mut self) {
        self.total = self.start.elapsed();
    }

    fn http_code(&self) -> u16 {
        self.response
            .as_ref()
            .map_or(0, |head| head.status.as_u16())
    }

    fn speed_download(&self) -> u64 {
        let seconds = self.total.as_secs_f64();
        if seconds > 0.0 {
            (self.size_download as f64 / seconds) as u64
        } else {
            0
        }
    }

    /// curl's `-w` variables that apply, by name.
    fn variable(&self, name: &str) -> Option<Value> {
        let seconds = |at: Option<Duration>| json!(at.map_or(0.0, |at| at.as_secs_f64()));
        Some(match name {
            "http_code" | "response_code" => json!(self.http_code()),
            "time_namelookup" => seconds(self.namelookup),
            "time_connect" => seconds(self.connect),
            "time_appconnect" => seconds(self.appconnect),
            "time_starttransfer" => seconds(self.starttransfer),
            "time_total" => seconds(Some(self.total)),
            "size_download" => json!(self.size_download),
            "size_upload" => json!(self.size_upload),
            "speed_download" => json!(self.speed_download()),
            "url" => json!(self.url),
            "url_effective" => json!(self.url_effective),
            "num_redirects" => json!(self.num_redirects),
            "exitcode" => json!(self.exit_code),
            "errormsg" => json!(self.error.clone().unwrap_or_default()),
            "remote_ip" => json!(self.remote.map(|a| a.ip().to_string()).unwrap_or_default()),
            "remote_port" => json!(self.remote.map_or(0, |a| a.port())),
            "http_version" => json!(
                self.response
                    .as_ref()
                    .map(|head| version_text(head.version).trim_start_matches("HTTP/"))
                    .unwrap_or("0")
            ),
            "content_type" => json!(
                self.response
                    .as_ref()
                    .and_then(|head| head.headers.get(http::header::CONTENT_TYPE))
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("")
            ),
            _ => return None,
        })
    }

    const VARIABLES: [&str; 19] = [
        "http_code",
        "response_code",
        "time_namelookup",
        "time_connect",
        "time_appconnect",
        "time_starttransfer",
        "time_total",
        "size_download",
        "size_upload",
        "speed_download",
        "url",
        "url_effective",
        "num_redirects",
        "exitcode",
        "errormsg",
        "remote_ip",
        "remote_port",
        "http_version",
        "content_type",
    ];

    /// Every variable as one JSON object, curl's `%{json}`.
    fn variables(&self) -> Value {
        let map: Map<String, Value> = Self::VARIABLES
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), self.variable(name)?)))
            .collect();
        Value::Object(map)
    }

    /// `-w FORMAT` filled in: `%{name}`, `%%`, and `\n`, `\r`, `\t`.
    pub fn write_out(&self, format: &str) -> String {
        let mut out = String::new();
        let mut rest = format;
        while let Some(at) = rest.find(['%', '\\']) {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("%{")
                && let Some(end) = after.find('}')
            {
                let name = &after[..end];
                match name {
                    "json" => out.push_str(&self.variables().to_string()),
                    _ => match self.variable(name) {
                        Some(Value::Number(n)) if name.starts_with("time_") => {
                            out.push_str(&format!("{:.6}", n.as_f64().unwrap_or(0.0)));
                        }
                        Some(Value::String(text)) => out.push_str(&text),
                        Some(value) => out.push_str(&value.to_string()),
                        None => {
                            tracing::warn!("unknown --write-out variable: '{name}'")
                        }
                    },
                }
                rest = &after[end + 1..];
                continue;
            }
            let (text, skip) = match tail.get(..2) {
                Some("%%") => ("%", 2),
                Some("\\n") => ("\n", 2),
                Some("\\r") => ("\r", 2),
                Some("\\t") => ("\t", 2),
                _ => (&tail[..1], 1),
            };
            out.push_str(text);
            rest = &tail[skip..];
        }
        out.push_str(rest);
        out
    }

    /// The exchange as one JSON object (`--json-output`); credentials are
    /// masked as in `-v`.
    pub fn json(&self, body: Option<Value>) -> Value {
        let headers = |map: &http::HeaderMap| {
            let list: Vec<Value> = map
                .iter()
                .map(|(name, value)| json!([name.as_str(), shown_value(name, value)]))
                .collect();
            Value::Array(list)
        };
        let ms = |at: Option<Duration>| at.map_or(0.0, crate::json::ms);
        let mut object = json!({
            "url": self.url,
            "url_effective": self.url_effective,
            "exit_code": self.exit_code,
            "error": self.error,
            "num_redirects": self.num_redirects,
            "remote": self.remote.map(|a| a.to_string()),
            "request": self.request.as_ref().map(|head| json!({
                "method": head.method.as_str(),
                "target": head.target,
                "http_version": version_text(head.version),
                "headers": headers(&head.headers),
            })),
            "response": self.response.as_ref().map(|head| json!({
                "status": head.status.as_u16(),
                "reason": head.status.canonical_reason(),
                "http_version": version_text(head.version),
                "headers": headers(&head.headers),
            })),
            "tls": self.tls.as_ref().map(|(description, alpn)| json!({
                "session": description,
                "alpn": alpn,
            })),
            // In netkit's JSON style (float milliseconds); `-w '%{json}'`
            // keeps curl's seconds.
            "timings_ms": {
                "namelookup": ms(self.namelookup),
                "connect": ms(self.connect),
                "appconnect": ms(self.appconnect),
                "starttransfer": ms(self.starttransfer),
                "total": ms(Some(self.total)),
            },
            "size_download": self.size_download,
            "size_upload": self.size_upload,
            "speed_download": self.speed_download(),
        });
        if let Some(body) = body {
            object["body"] = body;
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_out_variables_and_escapes() {
        let mut exchange = Exchange::new("http://example.com/");
        exchange.size_download = 42;
        exchange.num_redirects = 2;
        exchange.finish();
        assert_eq!(
            exchange.write_out("%{http_code} %{size_download}\\t%{num_redirects}%%\\n"),
            "0 42\t2%\n"
        );
        assert_eq!(
            exchange.write_out("%{url_effective}"),
            "http://example.com/"
        );
        let total = exchange.write_out("%{time_total}");
        assert_eq!(total.split('.').nth(1).unwrap().len(), 6, "{total}");
        let parsed: Value = serde_json::from_str(&exchange.write_out("%{json}")).unwrap();
        assert_eq!(parsed["size_download"], 42);
        assert_eq!(exchange.write_out("%{nope}x"), "x");
    }
}
