//! `netkit man [SUBCOMMAND...]`: a page for every command, each rendered by
//! man(1) and checked by groff with every warning on.

#[path = "cli/support.rs"]
mod support;

use std::process::Command;

use support::*;

#[test]
fn every_page_renders_without_warnings() {
    if !testkit::require("man") || !testkit::require("groff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for help in every_command() {
        let mut args = vec!["man"];
        args.extend(help.path.iter().map(String::as_str));
        let roff = run_ok(&args).stdout;
        let page = dir.path().join("page.1");
        std::fs::write(&page, &roff).unwrap();

        // -k: through preconv, as man does, so UTF-8 text is fine.
        let groff = Command::new("groff")
            .args(["-k", "-ww", "-z", "-man"])
            .arg(&page)
            .output()
            .unwrap();
        assert!(
            groff.status.success() && groff.stderr.is_empty(),
            "{}: {}",
            help.name(),
            text(&groff.stderr)
        );
        let man = Command::new("man")
            .args(["-l", "-Tutf8"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        assert!(
            man.status.success() && man.stderr.is_empty(),
            "{}: {}",
            help.name(),
            text(&man.stderr)
        );
        let shown = plain(&text(&man.stdout));
        let title = help.name().replace(' ', "-");
        assert!(shown.contains("NAME"), "{shown}");
        assert!(shown.contains(&title), "{title} not in\n{shown}");
    }
}

/// Terminal output without its overstrikes (`N\x08N` for a bold N).
fn plain(shown: &str) -> String {
    let mut plain = String::new();
    for c in shown.chars() {
        if c == '\x08' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn a_page_documents_its_flags() {
    let roff = text(&run_ok(&["man", "web", "get"]).stdout);
    assert!(roff.contains(".TH netkit-web-get 1 "), "{roff}");
    assert!(roff.contains("\"netkit 0."), "{roff}");
    assert!(roff.contains("json\\-output"), "{roff}");
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let out = netkit().args(["man", "web", "fetch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("netkit web fetch"));
    assert!(out.stdout.is_empty());
}
