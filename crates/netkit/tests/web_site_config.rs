//! `web serve --config site.toml`: every flag in a file, headers and
//! Cache-Control per path pattern, flags winning over the file, mistakes
//! reported with their line (exit 2), and SIGHUP reloading the file under
//! load (curl loops, fresh and keep-alive connections) without a failed
//! request, an invalid file refused while the old site keeps serving.

#[path = "web/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::*;
use testkit::Server;

/// A config file next to the fixture's root (`dir = "root"`, relative to
/// the file), with `body` after the site-wide keys.
fn write_config(fixture: &Fixture, body: &str) -> PathBuf {
    let path = fixture.base.join("site.toml");
    std::fs::write(
        &path,
        format!("dir = \"root\"\nbind = [\"127.0.0.1:0\"]\nquiet = true\n{body}"),
    )
    .unwrap();
    path
}

fn serve_config(config: &Path, extra: &[&str], stderr: Option<&Path>) -> Server {
    let mut command = netkit();
    command.args(["web", "serve", "--config"]).arg(config);
    command.args(extra);
    if let Some(path) = stderr {
        command.stderr(std::fs::File::create(path).unwrap());
    }
    Server::start(command, 1)
}

const SITE: &str = r#"
list = true
cache-control = "public, max-age=600"

[header]
X-Frame-Options = "DENY"
X-Version = "v1"

[error-page]
404 = "docs/a.txt"

[[path]]
pattern = "/docs/*.txt"
cache-control = "public, max-age=31536000, immutable"
header = { X-Docs = "yes" }

[[path]]
pattern = "*.html"
cache-control = "no-cache"
"#;

#[test]
fn the_file_sets_flags_headers_and_per_path_cache_control() {
    if !testkit::require("curl") || !testkit::require("python3") {
        return;
    }
    let fixture = Fixture::new("config-site");
    std::fs::write(fixture.path("page.html"), "<p>page</p>\n").unwrap();
    let config = write_config(&fixture, SITE);
    let server = serve_config(&config, &[], None);

    let hello = curl(&[&url(&server, "/hello.txt")]);
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("x-frame-options"), Some("DENY"));
    assert_eq!(hello.header("cache-control"), Some("public, max-age=600"));
    assert_eq!(hello.header("x-docs"), None);
    let doc = curl(&[&url(&server, "/docs/a.txt")]);
    assert_eq!(
        doc.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(doc.header("x-docs"), Some("yes"));
    assert_eq!(doc.header("x-frame-options"), Some("DENY"));
    // Patterns see the decoded path: an escaped dot is still `.html`.
    let page = curl(&[&url(&server, "/page%2Ehtml")]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    // The listing (`list = true`) and the error page of the file.
    let listing = curl(&[&url(&server, "/docs/")]);
    assert!(listing.body_text().contains("a.txt"), "{listing:?}");
    let missing = curl(&[&url(&server, "/nope")]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body_text(), "document a\n");
    assert_eq!(missing.header("cache-control"), None);

    let out = testkit::python(
        r#"
import sys, urllib.request
r = urllib.request.urlopen(sys.argv[1] + "docs/a.txt")
print(r.status, r.headers["Cache-Control"], r.headers["X-Docs"])
"#,
        &[&url(&server, "/")],
        b"",
    );
    assert_eq!(
        text(&out.stdout),
        "200 public, max-age=31536000, immutable yes\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn flags_on_the_command_line_win_over_the_file() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("config-flags");
    let config = write_config(&fixture, SITE);
    let server = serve_config(
        &config,
        &[
            "--header",
            "X-Frame-Options: SAMEORIGIN",
            "--cache-control",
            "no-store",
        ],
        None,
    );
    let hello = curl(&[&url(&server, "/hello.txt")]);
    // A repeatable flag's list replaces the file's whole table.
    assert_eq!(hello.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(hello.header("x-version"), None);
    assert_eq!(hello.header("cache-control"), Some("no-store"));
    // Path rules stay, and win over the flag.
    let doc = curl(&[&url(&server, "/docs/a.txt")]);
    assert_eq!(
        doc.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
}

/// Starts `web serve --config` on a file with `body` and returns its exit
/// code and stderr; it must not start.
fn refused(body: &str) -> (Option<i32>, String) {
    let fixture = Fixture::new("config-bad");
    let config = write_config(&fixture, body);
    let out = netkit()
        .args(["web", "serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (out.status.code(), text(&out.stderr))
}

#[test]
fn mistakes_in_the_file_name_their_line_and_exit_2() {
    // The three site-wide keys take lines 1-3.
    let cases = [
        ("lisst = true\n", "site.toml:4: unknown field `lisst`"),
        (
            "[header]\n\"X Frame\" = \"DENY\"\n",
            "site.toml:5: \"X Frame\" is not a valid header name",
        ),
        (
            "[header]\nX-A = \"line\\nbreak\"\n",
            "site.toml:5: \"line\\nbreak\" has characters a header cannot hold",
        ),
        ("list = 3\n", "site.toml:4: invalid type: integer `3`"),
        (
            "header-timeout = \"5 parsecs\"\n",
            "site.toml:4: unknown unit",
        ),
        (
            "[[path]]\npattern = \"/assets/*\"\ncache-control = \"immutable\"\n\
             [[path]]\npattern = \"*.js\"\ncache-control = \"no-cache\"\n",
            "site.toml:8: pattern *.js overlaps /assets/* (line 5): both set cache-control on paths such as /assets/x.js",
        ),
        (
            "[[path]]\npattern = \"assets/*\"\ncache-control = \"no-cache\"\n",
            "site.toml:5: pattern \"assets/*\": a pattern starts with `/` or `*`",
        ),
        (
            "[error-page]\n200 = \"x.html\"\n",
            "site.toml:5: \"200\" is not an error status",
        ),
        ("dir = \"elsewhere\"\n", "site.toml:4: duplicate key"),
    ];
    for (body, expected) in cases {
        let (code, stderr) = refused(body);
        assert_eq!(code, Some(2), "{body}: {stderr}");
        assert!(stderr.contains(expected), "{body}: {stderr}");
    }
}

/// Requests `path` until its `X-Version` is `version`, or panics after a
/// generous wait.
fn wait_for_version(server: &Server, path: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = curl(&[&url(server, path)]);
        if reply.header("x-version") == Some(version) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?}, not {version}",
            reply.header("x-version")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `needle` in the server's log file.
fn wait_for_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One load loop: curl runs with `per_run` URLs each (one keep-alive
/// connection per run), at most `runs` times or until `stop`; returns
/// every `STATUS VERSION` line.
fn load(
    base: String,
    per_run: usize,
    runs: usize,
    stop: Arc<AtomicBool>,
    batches: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..runs {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut command = Command::new("curl");
        command.args(["-s", "-w", "%{http_code} %header{x-version}\\n"]);
        for i in 0..per_run {
            let path = ["hello.txt", "docs/a.txt", "big.txt"][i % 3];
            command
                .args(["-o", "/dev/null"])
                .arg(format!("{base}{path}"));
        }
        let out = command.output().unwrap();
        lines.extend(text(&out.stdout).lines().map(str::to_owned));
        batches.fetch_add(1, Ordering::Relaxed);
    }
    lines
}

#[test]
fn sighup_reloads_under_load_without_a_failed_request() {
    if !testkit::require("curl") {
        return;
    }
    let fixture = Fixture::new("config-reload");
    let config = write_config(&fixture, SITE);
    let log = fixture.base.join("stderr.log");
    let server = serve_config(&config, &[], Some(&log));
    let base = url(&server, "/");
    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicUsize::new(0));
    // Fresh connections (one URL a curl) and keep-alive ones (many).
    let loaders: Vec<_> = [(1, 400), (1, 400), (25, 100)]
        .into_iter()
        .map(|(per_run, runs)| {
            let (base, stop, batches) = (base.clone(), stop.clone(), batches.clone());
            std::thread::spawn(move || load(base, per_run, runs, stop, batches))
        })
        .collect();
    let wait_batches = |more: usize| {
        let target = batches.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while batches.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the load loops stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_batches(3);

    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("v1", "v2"),
    )
    .unwrap();
    server.signal("HUP");
    wait_for_version(&server, "/hello.txt", "v2");
    wait_batches(6);

    // A file with a mistake is refused; the site stays as it was.
    std::fs::write(&config, "dir = \"root\"\nlisst = true\n").unwrap();
    server.signal("HUP");
    let stderr = wait_for_log(&log, "refused");
    assert!(
        stderr.contains("still serving the previous configuration")
            && stderr.contains("site.toml:2: unknown field `lisst`"),
        "{stderr}"
    );
    wait_batches(3);
    let reply = curl(&[&url(&server, "/docs/a.txt")]);
    assert_eq!(reply.header("x-version"), Some("v2"));
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    // Fixed again, the next SIGHUP takes it.
    write_config(&fixture, &SITE.replace("v1", "v3"));
    server.signal("HUP");
    wait_for_version(&server, "/hello.txt", "v3");
    wait_batches(3);
    stop.store(true, Ordering::Relaxed);

    let lines: Vec<String> = loaders
        .into_iter()
        .flat_map(|loader| loader.join().unwrap())
        .collect();
    let failed: Vec<_> = lines
        .iter()
        .filter(|line| !line.starts_with("200 "))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
    for version in ["v1", "v2", "v3"] {
        assert!(
            lines.iter().any(|line| line.ends_with(version)),
            "no response with {version} among {}",
            lines.len()
        );
    }
    // The server is still running.
    assert_eq!(curl(&[&url(&server, "/hello.txt")]).status, 200);
}
