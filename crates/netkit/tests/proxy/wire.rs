//! A keep-alive HTTP/1.1 client on one TCP connection that reports the
//! status line as sent: what curl hides (the version, whether the
//! connection stays open) is what some proxy tests check.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Wire {
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
pub struct Answer {
    /// `HTTP/1.1 200 OK`, as it came.
    pub status_line: String,
    pub status: u16,
    /// Lower-case names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("<none>")
    }
}

impl Wire {
    pub fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).expect("proxy reachable");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Wire {
            reader: BufReader::new(stream),
        }
    }

    /// `GET url` in absolute-form with `extra` header lines (each ending
    /// in CRLF), and its response. Panics if the connection closes first.
    pub fn get(&mut self, url: &str, extra: &str) -> Answer {
        let host = url.split('/').nth(2).expect("an absolute URL");
        self.send(
            format!("GET {url} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").as_bytes(),
            false,
        )
    }

    /// `POST url` with `body`.
    pub fn post(&mut self, url: &str, body: &str) -> Answer {
        let host = url.split('/').nth(2).expect("an absolute URL");
        let len = body.len();
        self.send(
            format!("POST {url} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len}\r\n\r\n{body}")
                .as_bytes(),
            false,
        )
    }

    /// Writes `request` as it is and reads one response (`head_only`: the
    /// request was a HEAD, so no body follows).
    pub fn send(&mut self, request: &[u8], head_only: bool) -> Answer {
        self.reader.get_mut().write_all(request).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        assert!(!status_line.is_empty(), "the connection closed");
        let status_line = status_line.trim_end().to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let mut answer = Answer {
            status_line,
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 304 || status == 204 || status / 100 == 1 {
            return answer;
        }
        if answer.header("transfer-encoding").is_some() {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                answer.body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let len: usize = answer
                .header("content-length")
                .map(|v| v.parse().expect("a length"))
                .unwrap_or(0);
            answer.body = vec![0; len];
            self.reader.read_exact(&mut answer.body).unwrap();
        }
        answer
    }
}
