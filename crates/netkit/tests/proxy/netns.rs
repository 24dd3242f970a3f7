//! A network namespace with a non-loopback address on its `lo` (192.0.2.1
//! and 2001:db8::1, documentation addresses), so a test can be a client
//! from outside loopback without touching the host's network, or keep a
//! proxy that would look up or reach other hosts off the host's network
//! (with no route out, a name lookup fails at once). Named
//! `nkproxy<pid>-<n>`; deleted on drop, also when the test fails.

#![allow(dead_code)]

use std::process::Command;

pub const OUTSIDE_V4: &str = "192.0.2.1";
pub const OUTSIDE_V6: &str = "2001:db8::1";

/// Whether namespaces can be made here (root and iproute2); fails under CI
/// when they cannot.
pub fn available() -> bool {
    testkit::Netns::available()
}

#[derive(Debug)]
pub struct Netns {
    inner: testkit::Netns,
}

impl Netns {
    pub fn new() -> Netns {
        let netns = Netns {
            inner: testkit::Netns::new("nkproxy"),
        };
        netns.ip(&["addr", "add", &format!("{OUTSIDE_V4}/32"), "dev", "lo"]);
        netns.ip(&["addr", "add", &format!("{OUTSIDE_V6}/128"), "dev", "lo"]);
        netns
    }

    fn ip(&self, args: &[&str]) {
        let output = Command::new("ip")
            .arg("-n")
            .arg(self.inner.name())
            .args(args)
            .output()
            .expect("ip runs");
        assert!(
            output.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        self.inner.command(program)
    }

    /// Runs programs inside the namespace, for the shared test helpers.
    pub fn runner(&self) -> crate::support::Runner {
        let name = self.inner.name().to_owned();
        std::sync::Arc::new(move |program| {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", &name, program]);
            command
        })
    }
}
