//! The chat's browser client in a real browser: two headless Chromium
//! users, driven by selenium through Debian's chromedriver
//! (tests/chat_web/browser.py), and one `netkit chat join` user in one
//! room see each other's messages, the room's history on joining, its
//! topic and its members. Everything runs in a network namespace of the
//! test's own with nothing but loopback. On failure, screenshots and the
//! pages are kept under the test's temporary directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{Netns, Server};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tools() -> bool {
    if !(testkit::require("chromium")
        && testkit::require("chromedriver")
        && testkit::require("python3")
        && Netns::available())
    {
        return false;
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    selenium
        || testkit::skip_or_fail("python module selenium is not installed (.ci/requirements.txt)")
}

#[test]
fn browsers_and_a_terminal_talk_in_one_room() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let netns = Netns::new("nkchatweb");
    let netkit = env!("CARGO_BIN_EXE_netkit");
    let mut command = netns.command(netkit);
    command
        .args([
            "chat",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--web",
            "127.0.0.1:0",
        ])
        .args(["--users-interval", "20ms", "--grace", "2s", "--db"])
        .arg(dir.path().join("chat.sqlite3"));
    let server = Server::start(command, 2);
    let (chat, web) = (server.addrs()[0], server.addrs()[1]);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chat_web/browser.py");
    let mut child = netns
        .command("python3")
        .arg(script)
        .arg(netkit)
        .arg(chat.to_string())
        .arg(format!("http://{web}/"))
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let status = testkit::wait_timeout(&mut child, Duration::from_secs(240));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    println!("{}", text(&out.stdout));
    if !status.is_some_and(|s| s.success()) {
        let kept = dir.keep();
        panic!(
            "browser.py failed ({status:?}); screenshots and pages in {}:\n{}",
            kept.display(),
            text(&out.stderr)
        );
    }
}
