//! HTTP Basic authentication (RFC 7617) against an htpasswd file, with
//! failed attempts throttled per client address.
//!
//! Checking a password costs a bcrypt or Argon2 hash, so it is done off
//! the event loop: `gate` only says whether a check is needed, and the
//! caller runs `verify` on a blocking thread. Credentials are never
//! logged; the access log gets the user name only once it is verified.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};

use crate::body::Body;
use crate::htpasswd::Htpasswd;
use crate::pages;

/// Failures a client may make before it has to wait.
const FREE_FAILURES: u32 = 5;
/// The longest a client is made to wait after a failure.
const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// A client's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Clients tracked before old entries are swept.
const SWEEP_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// Until when the client is refused without a check: 10 s after the
    /// fifth failure, doubling with each further one, at most 5 minutes.
    fn locked_until(&self) -> Option<Instant> {
        let over = self.count.checked_sub(FREE_FAILURES)?;
        let wait = Duration::from_secs(10u64 << over.min(6)).min(MAX_LOCKOUT);
        Some(self.last + wait)
    }
}

/// What to do with a request before serving it.
#[derive(Debug)]
pub enum Gate {
    /// Credentials to check (with `BasicAuth::verify`, off the event loop).
    Verify { user: String, password: Vec<u8> },
    /// Answer this without serving the request.
    Refuse(Response<Body>),
}

#[derive(Debug, Clone)]
pub struct BasicAuth {
    users: Arc<Htpasswd>,
    challenge: HeaderValue,
    failures: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

impl BasicAuth {
    /// `realm` is shown by browsers in their login prompt.
    pub fn new(users: Htpasswd, realm: &str) -> Self {
        let realm = realm.replace(['"', '\\'], "");
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                .unwrap_or(HeaderValue::from_static("Basic realm=\"netkit\""));
        Self {
            users: Arc::new(users),
            challenge,
            failures: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn gate<B>(&self, request: &Request<B>, client: IpAddr) -> Gate {
        if let Some(until) = self.locked_until(client) {
            let wait = until.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                return Gate::Refuse(too_many(wait));
            }
        }
        match credentials(request) {
            Some((user, password)) => Gate::Verify { user, password },
            None => Gate::Refuse(self.challenge()),
        }
    }

    /// Checks the password (slow: call it on a blocking thread) and
    /// records the outcome for the client's throttle.
    pub fn verify(&self, client: IpAddr, user: &str, password: &[u8]) -> bool {
        let ok = self.users.verify(user, password);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            failures.remove(&client);
        } else {
            let now = Instant::now();
            if failures.len() >= SWEEP_AT {
                failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            }
            let entry = failures.entry(client).or_insert(Failures {
                count: 0,
                last: now,
            });
            entry.count += 1;
            entry.last = now;
        }
        ok
    }

    /// `401` asking for credentials.
    pub fn challenge(&self) -> Response<Body> {
        let mut response = pages::error(
            StatusCode::UNAUTHORIZED,
            "This site needs a user name and password.",
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, self.challenge.clone());
        response
    }

    fn locked_until(&self, client: IpAddr) -> Option<Instant> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = failures.get(&client)?;
        if entry.last.elapsed() >= FORGET_AFTER {
            return None;
        }
        entry.locked_until()
    }
}

fn too_many(wait: Duration) -> Response<Body> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = pages::error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed logins from this address; wait before trying again.",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// `Authorization: Basic base64(user:password)`, decoded.
fn credentials<B>(request: &Request<B>) -> Option<(String, Vec<u8>)> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("pw", 4).unwrap();
        BasicAuth::new(Htpasswd::parse(&format!("al:{hash}\n")).unwrap(), "site")
    }

    fn with(value: &str) -> Request<()> {
        Request::get("/")
            .header(AUTHORIZATION, value)
            .body(())
            .unwrap()
    }

    #[test]
    fn decodes_and_verifies() {
        let auth = auth();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        // al:pw
        let Gate::Verify { user, password } = auth.gate(&with("Basic YWw6cHc="), client) else {
            panic!("credentials expected")
        };
        assert!(auth.verify(client, &user, &password));
        let missing = Request::get("/").body(()).unwrap();
        let Gate::Refuse(response) = auth.gate(&missing, client) else {
            panic!("a challenge expected")
        };
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("realm=\"site\"")
        );
    }

    #[test]
    fn throttles_after_repeated_failures() {
        let auth = auth();
        let client: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(!auth.verify(client, "al", b"wrong"));
        }
        assert!(matches!(
            auth.gate(&with("Basic YWw6cHc="), client),
            Gate::Refuse(r) if r.status() == 429
        ));
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(matches!(
            auth.gate(&with("Basic YWw6cHc="), other),
            Gate::Verify { .. }
        ));
    }
}
