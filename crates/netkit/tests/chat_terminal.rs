//! `netkit chat` on a real terminal, through tmux: passwords typed at a
//! prompt that does not echo them, and messages arriving while the user
//! types, printed above the input line without garbling it.

#[path = "chat/support.rs"]
mod support;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{ChatServer, Member, Scratch, WAIT};

/// One tmux server of its own, running one command in a detached session;
/// killed when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    /// Runs `args` (a netkit command line) in a 100x30 terminal. When the
    /// command ends, its exit status is shown as `exited N`.
    fn run(args: &[&str]) -> Option<Self> {
        if !testkit::require("tmux") {
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "netkit-chat-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_netkit"))
            .chain(args.iter().copied())
            .map(|arg| format!("'{}'", arg.replace('\'', r"'\''")))
            .collect();
        let script = format!("{}; echo \"exited $?\"; sleep 600", quoted.join(" "));
        let terminal = Self { socket };
        let out = terminal
            .tmux(&["new-session", "-d", "-x", "100", "-y", "30", &script])
            .env_remove("NETKIT_CHAT_PASSWORD")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        Some(terminal)
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        command
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args);
        command
    }

    /// The screen as lines, trailing blanks dropped.
    fn screen(&self) -> Vec<String> {
        let out = self.tmux(&["capture-pane", "-p"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    /// Waits until the screen satisfies `done`; returns it.
    fn wait(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {WAIT:?}; the screen:\n{}",
                screen.join("\n")
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, needle: &str) -> Vec<String> {
        self.wait(needle, |screen| screen.iter().any(|l| l.contains(needle)))
    }

    /// Types `text` literally, all at once.
    fn type_text(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }

    fn press(&self, key: &str) {
        assert!(self.tmux(&["send-keys", key]).status().unwrap().success());
    }

    /// Types `text` a key at a time, as a person does, each key echoed on
    /// the input line (which already holds `before`) before the next.
    fn type_keys(&self, before: &str, text: &str) {
        for (at, c) in text.char_indices() {
            self.type_text(&c.to_string());
            let shown = format!("> {before}{}", &text[..at + c.len_utf8()]);
            self.wait(&format!("{shown:?} on the input line"), |screen| {
                screen.last().is_some_and(|l| *l == shown.trim_end())
            });
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).output();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn typing_is_not_garbled_by_incoming_messages() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    let mut bob = Member::register(&addr, "bob", "bob password");
    let args = [
        "chat",
        "join",
        "--server",
        &addr,
        "--user",
        "alice",
        "--register",
    ];
    let Some(alice) = Terminal::run(&args) else {
        return;
    };

    let secret = "alice's terminal secret";
    alice.wait_for("Password for alice:");
    alice.type_text(secret);
    alice.press("Enter");
    alice.wait_for("Repeat it:");
    alice.type_text(secret);
    alice.press("Enter");
    alice.wait_for("* connected to");
    bob.expect("* alice joined");
    assert!(
        !alice.screen().iter().any(|line| line.contains(secret)),
        "the password was echoed"
    );

    alice.type_keys("", "half typed");
    bob.send("hello from bob");
    alice.wait_for("[room] bob: hello from bob");
    bob.send("@alice: psst");
    let screen = alice.wait_for("[direct] bob: psst");
    let tail = &screen[screen.len() - 3..];
    assert_eq!(
        tail,
        [
            "[room] bob: hello from bob",
            "[direct] bob: psst",
            "> half typed"
        ],
        "the screen:\n{}",
        screen.join("\n")
    );

    // What was typed before the messages arrived is all still there.
    alice.type_keys("half typed", ", then finished");
    alice.press("Enter");
    bob.expect("[room] alice: half typed, then finished");
    alice.type_keys("", "#ls");
    alice.press("Enter");
    alice.wait_for("* online (2): alice, bob");
    alice.type_keys("", "#quit");
    alice.press("Enter");
    alice.wait_for("exited 0");
    bob.expect("* alice left (quit)");
}

#[test]
fn ctrl_c_leaves_the_room() {
    let scratch = Scratch::new();
    let server = ChatServer::start(&scratch, &[]);
    let addr = server.addr();
    drop(Member::register(&addr, "alice", "alice password"));
    let mut bob = Member::register(&addr, "bob", "bob password");
    let args = ["chat", "join", "--server", &addr, "--user", "alice"];
    let Some(alice) = Terminal::run(&args) else {
        return;
    };
    // Logging in asks once: no confirmation.
    alice.wait_for("Password for alice:");
    alice.type_text("alice password");
    alice.press("Enter");
    alice.wait_for("* connected to");
    bob.expect("* alice joined");
    alice.type_keys("", "never sent");
    alice.press("C-c");
    alice.wait_for("exited 0");
    bob.expect("* alice left (quit)");
    assert_eq!(bob.count("never sent", Duration::ZERO), 0);
}

#[test]
fn passwd_asks_twice_on_the_terminal() {
    let scratch = Scratch::new();
    let db = scratch.path("chat.sqlite3");
    let server = ChatServer::start_with_db(&db, &[]);
    drop(Member::register(&server.addr(), "alice", "first password"));
    let db_arg = db.to_str().unwrap();

    let typed = |first: &str, second: &str| -> Option<Vec<String>> {
        let terminal = Terminal::run(&["chat", "passwd", "alice", "--db", db_arg])?;
        terminal.wait_for("New password for alice:");
        terminal.type_text(first);
        terminal.press("Enter");
        terminal.wait_for("Repeat it:");
        terminal.type_text(second);
        terminal.press("Enter");
        let screen = terminal.wait_for("exited ");
        assert!(!screen.iter().any(|line| line.contains(first)));
        Some(screen)
    };
    let Some(differ) = typed("second password", "secund password") else {
        return;
    };
    assert!(
        differ
            .iter()
            .any(|l| l.contains("the two passwords differ"))
    );
    assert!(differ.iter().any(|l| l == "exited 1"), "{differ:#?}");

    let changed = typed("second password", "second password").unwrap();
    assert!(changed.iter().any(|l| l == "password for alice changed"));
    assert!(changed.iter().any(|l| l == "exited 0"), "{changed:#?}");
    let (status, _, _) = Member::spawn(&server.addr(), "alice", "first password", &[]).finish();
    assert_eq!(status.code(), Some(1));
    assert!(
        Member::login(&server.addr(), "alice", "second password")
            .quit()
            .success()
    );
}
