//! A terminal for tests: netkit in a tmux session of its own.

#![allow(dead_code)]

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::support::text;

const WAIT: Duration = Duration::from_secs(30);

/// A tmux server of its own running netkit in a detached session; killed
/// when dropped.
pub struct Terminal {
    socket: String,
}

impl Terminal {
    /// Runs `netkit ARGS`; the screen says `netkit exited N` when it ends.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let terminal = Self {
            socket: format!("netkit-{name}-{}", std::process::id()),
        };
        let quoted: Vec<String> = args
            .iter()
            .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
            .collect();
        let script = format!(
            "'{}' {}; echo \"netkit exited $?\"; sleep 600",
            env!("CARGO_BIN_EXE_netkit"),
            quoted.join(" ")
        );
        let out = terminal
            .tmux(&["new-session", "-d", "-x", "160", "-y", "50", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        command
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args);
        command
    }

    pub fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-S", "-200"])
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// Waits until `needle` appears `times` times on the screen.
    pub fn wait_for(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {times}× {needle:?} within {WAIT:?}; the screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            assert!(self.tmux(&["send-keys", key]).status().unwrap().success());
        }
    }

    pub fn type_line(&self, line: &str) {
        assert!(
            self.tmux(&["send-keys", "-l", line])
                .status()
                .unwrap()
                .success()
        );
        self.keys(&["Enter"]);
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).output();
    }
}
