//! Collapsed forwarding: while one request (the leader) fetches a URL from
//! the origin, later requests for it wait and are then answered from the
//! cache, so the origin sees one request however many clients ask at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// How a fetch that others waited on ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response is in the cache: look again.
    Stored,
    /// The response could not be cached: fetch for yourself.
    Uncacheable,
}

type Waiters = Arc<Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>>;

#[derive(Debug, Default, Clone)]
pub struct Flights {
    inflight: Waiters,
}

#[derive(Debug)]
pub enum Joined {
    Leader(Leader),
    Follower(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    pub fn join(&self, url: &str) -> Joined {
        let mut inflight = self.inflight.lock().expect("flight map lock");
        if let Some(waiting) = inflight.get(url) {
            return Joined::Follower(waiting.clone());
        }
        let (tx, rx) = watch::channel(None);
        inflight.insert(url.to_owned(), rx);
        Joined::Leader(Leader {
            url: url.to_owned(),
            tx,
            flights: self.inflight.clone(),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inflight.lock().unwrap().len()
    }
}

/// The right and duty to fetch a URL for everyone waiting on it. Dropping it
/// without an outcome (an aborted fetch) lets the followers go on their own.
#[derive(Debug)]
pub struct Leader {
    url: String,
    tx: watch::Sender<Option<Outcome>>,
    flights: Waiters,
}

impl Leader {
    pub fn finish(self, outcome: Outcome) {
        self.tx.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Forget the flight before waking anyone, so a woken follower that
        // has to fetch after all starts a new flight instead of rejoining.
        self.flights
            .lock()
            .expect("flight map lock")
            .remove(&self.url);
    }
}

/// Waits for the leader; `None` when it gave up without an outcome.
pub async fn follow(mut rx: watch::Receiver<Option<Outcome>>) -> Option<Outcome> {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => *outcome,
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_learn_the_outcome() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join("http://a/") else {
            panic!("first is leader")
        };
        let Joined::Follower(rx) = flights.join("http://a/") else {
            panic!("second follows")
        };
        assert!(matches!(flights.join("http://b/"), Joined::Leader(_)));
        let waiter = tokio::spawn(follow(rx));
        leader.finish(Outcome::Stored);
        assert_eq!(waiter.await.unwrap(), Some(Outcome::Stored));
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join("http://a/"), Joined::Leader(_)));
    }

    #[tokio::test]
    async fn abandoned_flight_releases_followers() {
        let flights = Flights::default();
        let Joined::Leader(leader) = flights.join("http://a/") else {
            panic!()
        };
        let Joined::Follower(rx) = flights.join("http://a/") else {
            panic!()
        };
        drop(leader);
        assert_eq!(follow(rx).await, None);
    }
}
