//! Seeded impairment: for each datagram the server receives, whether to drop
//! it, how long to delay the reply, and whether to duplicate or reorder it.
//!
//! Every decision draws the same four numbers from the generator whatever the
//! configuration, so a seed names one sequence of decisions: a test (or a
//! person repeating an experiment) can recompute exactly what the server did.

use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Impairment {
    /// Probability in [0, 1] that a datagram is dropped on arrival.
    pub loss: f64,
    /// Fixed delay before the reply is sent.
    pub delay: Duration,
    /// The delay varies uniformly within ± this much (never below zero).
    pub jitter: Duration,
    /// Probability that the reply is sent twice.
    pub duplicate: f64,
    /// Probability that the reply is held back and sent after the next one.
    pub reorder: f64,
}

impl Impairment {
    pub fn is_none(&self) -> bool {
        *self == Impairment::default()
    }
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    pub drop: bool,
    pub delay: Duration,
    pub duplicate: bool,
    pub reorder: bool,
}

impl Decision {
    /// True when the reply goes out at once, once, in order.
    pub fn is_plain(&self) -> bool {
        *self == Decision::default()
    }
}

/// The decision stream for one seed.
#[derive(Debug)]
pub struct Impairer {
    config: Impairment,
    rng: ChaCha8Rng,
}

impl Impairer {
    pub fn new(config: Impairment, seed: u64) -> Self {
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn config(&self) -> &Impairment {
        &self.config
    }

    pub fn decide(&mut self) -> Decision {
        let loss: f64 = self.rng.random();
        let duplicate: f64 = self.rng.random();
        let reorder: f64 = self.rng.random();
        let jitter: f64 = self.rng.random();
        if loss < self.config.loss {
            return Decision {
                drop: true,
                ..Decision::default()
            };
        }
        let spread = self.config.jitter.as_secs_f64() * (2.0 * jitter - 1.0);
        let delay = (self.config.delay.as_secs_f64() + spread).max(0.0);
        Decision {
            drop: false,
            delay: Duration::try_from_secs_f64(delay).unwrap_or(Duration::MAX),
            duplicate: duplicate < self.config.duplicate,
            reorder: reorder < self.config.reorder,
        }
    }
}

impl Iterator for Impairer {
    type Item = Decision;

    fn next(&mut self) -> Option<Decision> {
        Some(self.decide())
    }
}

/// What a client should count when the server applies `decisions` to its
/// probes in order. Delay jitter never reorders one sender's replies (the
/// delay line keeps them in order), so only `--reorder` does: a reply held
/// for reordering goes out right after the next reply, and while one is
/// held no other is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub dropped: u64,
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Whether every reply leaves the server promptly after the last probe:
    /// the last probe is answered once and releases (rather than starts) a
    /// hold. Otherwise the end of a run depends on timing.
    pub settles: bool,
}

impl Expected {
    pub fn from_decisions(decisions: &[Decision]) -> Self {
        let mut expected = Expected::default();
        let mut held = false;
        let mut last_clean = false;
        for decision in decisions {
            if decision.drop {
                expected.dropped += 1;
                last_clean = false;
                continue;
            }
            expected.received += 1;
            expected.duplicates += u64::from(decision.duplicate);
            last_clean = !decision.duplicate && (held || !decision.reorder);
            if held {
                expected.out_of_order += 1;
                held = false;
            } else if decision.reorder {
                held = true;
            }
        }
        expected.settles = last_clean && !held;
        expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_decisions() {
        let config = Impairment {
            loss: 0.3,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            duplicate: 0.1,
            reorder: 0.1,
        };
        let a: Vec<_> = Impairer::new(config, 7).take(200).collect();
        let b: Vec<_> = Impairer::new(config, 7).take(200).collect();
        let c: Vec<_> = Impairer::new(config, 8).take(200).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let drops = a.iter().filter(|d| d.drop).count();
        assert!((30..90).contains(&drops), "{drops} drops of 200 at p=0.3");
        for decision in a.iter().filter(|d| !d.drop) {
            assert!(decision.delay >= Duration::from_millis(15));
            assert!(decision.delay <= Duration::from_millis(25));
        }
    }

    #[test]
    fn loss_decisions_do_not_depend_on_other_settings() {
        let lossy = Impairment {
            loss: 0.5,
            ..Impairment::default()
        };
        let busy = Impairment {
            duplicate: 0.9,
            reorder: 0.9,
            ..lossy
        };
        let a: Vec<bool> = Impairer::new(lossy, 1).take(100).map(|d| d.drop).collect();
        let b: Vec<bool> = Impairer::new(busy, 1).take(100).map(|d| d.drop).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn expected_counts() {
        let plain = Decision::default();
        let drop = Decision {
            drop: true,
            ..plain
        };
        let dup = Decision {
            duplicate: true,
            ..plain
        };
        let reorder = Decision {
            reorder: true,
            ..plain
        };
        // reorder(held) drop reorder(releases, not held) dup plain
        let run = [reorder, drop, reorder, dup, plain];
        let expected = Expected::from_decisions(&run);
        assert_eq!(
            expected,
            Expected {
                dropped: 1,
                received: 4,
                duplicates: 1,
                out_of_order: 1,
                settles: true,
            }
        );
        assert!(!Expected::from_decisions(&[plain, reorder]).settles);
        assert!(!Expected::from_decisions(&[plain, dup]).settles);
        assert!(!Expected::from_decisions(&[plain, drop]).settles);
        assert!(Expected::from_decisions(&[reorder, reorder]).settles);
    }

    #[test]
    fn no_impairment_is_plain() {
        assert!(Impairment::default().is_none());
        assert!(
            Impairer::new(Impairment::default(), 3)
                .take(50)
                .all(|d| d.is_plain())
        );
    }
}
