//! `netkit` with no arguments: on a terminal (tmux) a menu that runs a
//! client against a real server, a server until Ctrl-C, and comes back
//! each time until the user quits; without a terminal, the help.

#[path = "cli/support.rs"]
mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// A tmux server of its own running netkit in a detached session; killed
/// when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn start(name: &str) -> Self {
        let terminal = Self {
            socket: format!("netkit-menu-{name}-{}", std::process::id()),
        };
        let script = format!(
            "'{}'; echo \"menu exited $?\"; sleep 600",
            env!("CARGO_BIN_EXE_netkit")
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

    fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-S", "-200"])
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// Waits until `needle` appears `times` times on the screen.
    fn wait_for(&self, needle: &str, times: usize) -> String {
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

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            assert!(self.tmux(&["send-keys", key]).status().unwrap().success());
        }
    }

    fn type_line(&self, line: &str) {
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

#[test]
fn the_menu_runs_a_client_and_a_server_until_quit() {
    if !testkit::require("tmux") {
        return;
    }
    let mut command = netkit();
    command.args(["upper", "serve", "--bind", "127.0.0.1:0"]);
    let upper = testkit::Server::start(command, 2);
    let addr = upper.addr().to_string();

    let terminal = Terminal::start("upper");
    // System: upper is first; verb: send is first.
    terminal.wait_for("? System ›", 1);
    terminal.wait_for("quit", 1);
    terminal.keys(&["Enter"]);
    terminal.wait_for("? netkit upper ›", 1);
    terminal.keys(&["Enter"]);
    terminal.wait_for("Server (HOST:PORT)", 1);
    terminal.type_line(&addr);
    terminal.wait_for("Text to send", 1);
    terminal.type_line("hello from the menu");
    let screen = terminal.wait_for("back to the menu", 1);
    assert!(screen.contains("HELLO FROM THE MENU"), "{screen}");
    assert!(
        screen.contains(&format!("$ netkit upper send {addr} 'hello from the menu'")),
        "{screen}"
    );

    // Again, the second verb: a server on its own port, until Ctrl-C.
    terminal.wait_for("? System ›", 1);
    terminal.keys(&["Enter"]);
    terminal.wait_for("? netkit upper ›", 1);
    terminal.keys(&["Down", "Enter"]);
    terminal.wait_for("Address (TCP and UDP)", 1);
    terminal.type_line("127.0.0.1:0");
    let screen = terminal.wait_for("(udp)", 1);
    let served = screen
        .lines()
        .find_map(testkit::listening_addr)
        .expect("the server's address");
    let reply = run_ok(&["upper", "send", &served.to_string(), "through the menu"]);
    assert_eq!(text(&reply.stdout), "THROUGH THE MENU\n");
    terminal.keys(&["C-c"]);
    terminal.wait_for("back to the menu", 2);

    // Quit is the last item.
    terminal.wait_for("? System ›", 1);
    terminal.keys(&["Up", "Enter"]);
    terminal.wait_for("menu exited 0", 1);
}

#[test]
fn without_a_terminal_no_arguments_prints_the_help() {
    let out = netkit().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = text(&out.stderr) + &text(&out.stdout);
    assert!(help.contains("Usage: netkit <COMMAND>"), "{help}");
    assert!(help.contains("completions"), "{help}");
}
