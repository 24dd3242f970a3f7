//! The web inbox in a real browser: headless Chromium driven by selenium
//! through Debian's chromedriver (tests/mail_inbox/browser.py). The sink,
//! the browser and a stand-in remote server run in a network namespace of
//! the test's own with nothing but loopback, so nothing leaves the host
//! and any load the page makes is seen. On failure, a screenshot and the
//! page source are kept under the test's temporary directory.

#[path = "mail_inbox/support.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use testkit::Netns;

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

fn run(scenario: &str) {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let netns = Netns::new("nkinbox");
    let mut command = netns.command(env!("CARGO_BIN_EXE_netkit"));
    command
        .args([
            "mail",
            "sink",
            "--bind",
            "127.0.0.1:0",
            "--web",
            "127.0.0.1:0",
            "--no-tls",
        ])
        .arg("--maildir")
        .arg(&maildir);
    let inbox = Inbox::from_command(command, &maildir);

    let mut child = netns
        .command("python3")
        .arg(fixture("browser.py"))
        .args([
            &inbox.smtp.ip().to_string(),
            &inbox.smtp.port().to_string(),
            &inbox.url("/"),
        ])
        .arg(dir.path())
        .arg(scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let status = testkit::wait_timeout(&mut child, Duration::from_secs(180));
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    println!("{}", text(&out.stdout));
    if !status.is_some_and(|s| s.success()) {
        let kept = dir.keep();
        panic!(
            "browser.py {scenario} failed ({status:?}); screenshot and page in {}:\n{}",
            kept.display(),
            text(&out.stderr)
        );
    }
}

#[test]
fn the_list_updates_live_and_messages_render() {
    run("live");
}

#[test]
fn hostile_mail_runs_nothing_and_loads_nothing() {
    run("hostile");
}
