//! A network namespace with a non-loopback address on its `lo` (192.0.2.1
//! and 2001:db8::1, documentation addresses), so a test can be a client
//! from outside loopback without touching the host's network, or keep a
//! proxy that would look up or reach other hosts off the host's network
//! (with no route out, a name lookup fails at once). Named
//! `nkproxy<pid>-<n>`; deleted on drop, also when the test fails.

#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const OUTSIDE_V4: &str = "192.0.2.1";
pub const OUTSIDE_V6: &str = "2001:db8::1";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Whether namespaces can be made here (root and iproute2); fails under CI
/// when they cannot.
pub fn available() -> bool {
    testkit::require_root() && testkit::require("ip")
}

#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "nkproxy{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        netns.ip(&["addr", "add", &format!("{OUTSIDE_V4}/32"), "dev", "lo"]);
        netns.ip(&["addr", "add", &format!("{OUTSIDE_V6}/128"), "dev", "lo"]);
        netns
    }

    fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs programs inside the namespace, for the shared test helpers.
    pub fn runner(&self) -> crate::support::Runner {
        let name = self.name.clone();
        std::sync::Arc::new(move |program| {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", &name, program]);
            command
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ok(command: &mut Command) {
    let output = command.output().expect("ip runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
