//! `web serve --list --upload`: files posted as multipart/form-data (curl
//! -F, and the listing's form in headless Chromium driven by selenium)
//! are stored whole under the root, with the path-safety layers of reads,
//! a size limit, and no overwrite unless `--overwrite`.

#[path = "web/support.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use support::*;
use testkit::{Netns, Server};

/// `curl -F` with `fields`, printing only the status.
fn post(server: &Server, path: &str, fields: &[&str], extra: &[&str]) -> u16 {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
    for field in fields {
        command.args(["-F", field]);
    }
    command.args(extra).arg(url(server, path));
    let out = command.output().unwrap();
    text(&out.stdout).parse().unwrap()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn curl_uploads_are_stored_safely_and_bounded() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("upload-curl");
    let local = fixture.base.join("local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("notes.txt"), "my notes\n").unwrap();
    std::fs::write(local.join("more.txt"), "more\n").unwrap();
    std::fs::write(local.join("big.bin"), vec![7u8; 64 * 1024]).unwrap();
    let notes = format!("file=@{}", local.join("notes.txt").display());
    let more = format!("file=@{}", local.join("more.txt").display());
    let server = serve(
        Some(&fixture.root()),
        &["--list", "--upload", "--max-upload-size", "16K"],
    );

    // Two files in one form; the answer sends the browser to the listing.
    let reply = curl(&["-F", &notes, "-F", &more, &url(&server, "/docs/")]);
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/docs/"));
    assert_eq!(
        std::fs::read_to_string(fixture.path("docs/notes.txt")).unwrap(),
        "my notes\n"
    );
    assert_eq!(
        curl(&[&url(&server, "/docs/more.txt")]).body_text(),
        "more\n"
    );
    // The listing carries the form.
    let listing = curl(&[&url(&server, "/docs/")]).body_text();
    assert!(
        listing.contains("<form id=\"upload\" method=\"post\" enctype=\"multipart/form-data\">")
    );

    // No overwrite: 409, and the file is unchanged.
    std::fs::write(local.join("notes.txt"), "replaced\n").unwrap();
    assert_eq!(post(&server, "/docs/", &[&notes], &[]), 409);
    assert_eq!(
        std::fs::read_to_string(fixture.path("docs/notes.txt")).unwrap(),
        "my notes\n"
    );
    // Over the limit: 413, nothing stored.
    let big = format!("file=@{}", local.join("big.bin").display());
    assert_eq!(post(&server, "/", &[&big], &[]), 413);
    // Without a Content-Length (chunked), the limit holds while reading.
    assert_eq!(
        post(&server, "/", &[&big], &["-H", "Transfer-Encoding: chunked"]),
        413
    );
    assert!(!fixture.path("big.bin").exists());

    // Names and places the path-safety layers refuse.
    let named = |name: &str| format!("file=@{};filename={name}", local.join("more.txt").display());
    for (path, field, status) in [
        ("/", named("../escape.txt"), 400),
        ("/", named("..\\escape.txt"), 400),
        ("/", named(".env"), 400),
        ("/", named(".."), 400),
        ("/dir-outside/", named("x.txt"), 403),
        ("/.git/", named("x.txt"), 404),
        ("/%2e%2e/", named("x.txt"), 400),
        ("/missing/", named("x.txt"), 404),
        ("/hello.txt", named("x.txt"), 405),
    ] {
        assert_eq!(
            post(&server, path, &[&field], &[]),
            status,
            "{path} {field}"
        );
    }
    // A form posted by another site's page is refused.
    assert_eq!(
        post(
            &server,
            "/",
            &[&named("x.txt")],
            &["-H", "Origin: http://evil.example"]
        ),
        403
    );
    // Not a form at all.
    let status = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
            "x",
        ])
        .arg(url(&server, "/"))
        .output()
        .unwrap();
    assert_eq!(text(&status.stdout), "415");

    assert_eq!(names(&fixture.base.join("outside")), ["secret.txt"]);
    assert_eq!(
        names(&fixture.root()),
        [
            ".env",
            ".git",
            "abs-link-inside",
            "big.txt",
            "data.bin",
            "dir-outside",
            "docs",
            "empty",
            "hello.txt",
            "link-inside",
            "link-outside",
            "odd <name> & \"q\".txt",
            "with-index"
        ],
        "nothing stored, no temporary file left"
    );
    assert_eq!(
        names(&fixture.path("docs")),
        ["a.txt", "more.txt", "notes.txt"]
    );
}

#[test]
fn overwrite_replaces_and_uploads_need_their_flags() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("upload-overwrite");
    let local = fixture.base.join("hello.txt");
    std::fs::write(&local, "new hello\n").unwrap();
    let field = format!("file=@{}", local.display());
    let plain = serve(Some(&fixture.root()), &["--list"]);
    assert_eq!(post(&plain, "/", &[&field], &[]), 405);
    drop(plain);

    let server = serve(
        Some(&fixture.root()),
        &["--list", "--upload", "--overwrite"],
    );
    assert_eq!(post(&server, "/", &[&field], &[]), 303);
    assert_eq!(
        curl(&[&url(&server, "/hello.txt")]).body_text(),
        "new hello\n"
    );

    for (flags, message) in [
        (&["--upload"][..], "add --list"),
        (
            &["--list", "--overwrite"][..],
            "--overwrite is for --upload",
        ),
        (
            &["--list", "--upload", "--max-upload-size", "lots"][..],
            "unknown unit `lots`",
        ),
    ] {
        let out = netkit()
            .args(["web", "serve", "--bind", "127.0.0.1:0"])
            .arg(fixture.root())
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    }
}

fn browser_tools() -> bool {
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
fn chromium_sorts_the_listing_and_uploads_through_its_form() {
    if !browser_tools() {
        return;
    }
    let fixture = Fixture::new("upload-browser");
    let shared = fixture.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    // Sizes and times that sort three different ways.
    let now = SystemTime::now();
    for (name, size, age) in [
        ("small.txt", 1, 10),
        ("medium.txt", 100, 300),
        ("large.txt", 10_000, 200),
    ] {
        let path = shared.join(name);
        std::fs::write(&path, "x".repeat(size)).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(now - Duration::from_secs(age)).unwrap();
    }
    let upload = fixture.base.join("from-browser.txt");
    std::fs::write(&upload, "uploaded from chromium\n").unwrap();

    let netns = Netns::new("nkupload");
    let mut command = netns.command(env!("CARGO_BIN_EXE_netkit"));
    command
        .args([
            "web",
            "serve",
            "--bind",
            "127.0.0.1:0",
            "-q",
            "--list",
            "--upload",
        ])
        .arg(fixture.root());
    let server = Server::start(command, 1);
    let work = fixture.base.join("browser");
    std::fs::create_dir_all(&work).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web/upload_browser.py");
    let mut child = netns
        .command("python3")
        .arg(script)
        .arg(url(&server, "/shared/"))
        .arg(&upload)
        .arg(&work)
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
        let kept = tempfile::tempdir().unwrap().keep();
        let _ = Command::new("cp").arg("-r").arg(&work).arg(&kept).status();
        panic!(
            "upload_browser.py failed ({status:?}); screenshot and page in {}:\n{}",
            kept.display(),
            text(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_to_string(shared.join("from-browser.txt")).unwrap(),
        "uploaded from chromium\n"
    );
}
