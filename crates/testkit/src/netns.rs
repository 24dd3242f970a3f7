//! A network namespace with only its own loopback, for a test whose peer
//! (a browser, say) would otherwise reach for hosts beyond this machine:
//! inside, with no route out, a name lookup or connection off loopback fails
//! at once and nothing leaves the host. Deleted on drop, also when the test
//! fails.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Whether namespaces can be made here (root and iproute2); fails under
    /// CI when they cannot.
    pub fn available() -> bool {
        crate::require_root() && crate::require("ip")
    }

    /// A new namespace named `<prefix><pid>-<n>`, so parallel test processes
    /// never collide, with `lo` up.
    pub fn new(prefix: &str) -> Netns {
        let name = format!(
            "{prefix}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let netns = Netns { name };
        run_ok(Command::new("ip").args(["-n", &netns.name, "link", "set", "lo", "up"]));
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
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
