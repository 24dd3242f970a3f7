//! `netkit web get` against httpbin served by gunicorn: each check compares
//! what httpbin echoes with what was sent.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

/// httpbin under gunicorn on a port gunicorn picks, stopped when dropped.
struct Httpbin {
    child: Child,
    base: String,
}

impl Httpbin {
    fn start() -> Option<Httpbin> {
        if !testkit::require("python3") {
            return None;
        }
        let check = Command::new("python3")
            .args(["-c", "import httpbin, gunicorn"])
            .output()
            .unwrap();
        if !check.status.success() && testkit::skip_or_fail("python3 httpbin and gunicorn") {
            return None;
        }
        let mut child = Command::new("python3")
            .args([
                "-m",
                "gunicorn",
                "-w",
                "3",
                "-b",
                "127.0.0.1:0",
                "httpbin:app",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let at = line.find("Listening at: ")?;
                let url = line[at + "Listening at: ".len()..].split(' ').next()?;
                Some(url.to_owned())
            })
            .expect("gunicorn says where it listens");
        std::thread::spawn(move || lines.for_each(drop));
        Some(Httpbin { child, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(args: &[&str]) -> Output {
    netkit().args(["web", "get"]).args(args).output().unwrap()
}

fn echoed(args: &[&str]) -> Value {
    let out = get(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{args:?}: {err}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn temp(name: &str, contents: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("netkit-httpbin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn methods_forms_json_and_uploads() {
    let Some(bin) = Httpbin::start() else { return };
    for method in ["PUT", "PATCH", "DELETE"] {
        let path = format!("/{}", method.to_lowercase());
        let echo = echoed(&["-X", method, "-d", "k=v", &bin.url(&path)]);
        assert_eq!(echo["form"]["k"], "v", "{method}");
    }
    // -d repeated, joined with &, and from a file with its newlines dropped
    // (as curl does, so `c=3` and `d=4` on two lines run together).
    let file = temp("form.txt", b"c=3&\nd=4\n");
    let echo = echoed(&[
        "-d",
        "a=1",
        "-d",
        "b=two words",
        "-d",
        &format!("@{file}"),
        &bin.url("/post"),
    ]);
    assert_eq!(echo["form"]["a"], "1");
    assert_eq!(echo["form"]["b"], "two words");
    assert_eq!(echo["form"]["c"], "3");
    assert_eq!(echo["form"]["d"], "4");
    assert_eq!(
        echo["headers"]["Content-Type"],
        "application/x-www-form-urlencoded"
    );
    // --data-binary keeps the file as it is.
    let echo = echoed(&["--data-binary", &format!("@{file}"), &bin.url("/post")]);
    assert_eq!(echo["form"]["c"], "3");
    assert_eq!(echo["form"]["\nd"], "4\n", "{echo}");
    // --data-urlencode escapes; -G moves the data into the query.
    let echo = echoed(&[
        "--data-urlencode",
        "q=a b&c=d",
        "-d",
        "x=1",
        "-G",
        &bin.url("/get?y=2"),
    ]);
    assert_eq!(echo["args"]["q"], "a b&c=d");
    assert_eq!(echo["args"]["x"], "1");
    assert_eq!(echo["args"]["y"], "2");
    // --json sets both headers and sends the text as it is.
    let json = temp("body.json", br#"{"from": "file", "n": [1, 2]}"#);
    let echo = echoed(&["--json", &format!("@{json}"), &bin.url("/post")]);
    assert_eq!(echo["json"]["from"], "file");
    assert_eq!(echo["json"]["n"][1], 2);
    assert_eq!(echo["headers"]["Content-Type"], "application/json");
    assert_eq!(echo["headers"]["Accept"], "application/json");
    // -F: fields and files, with a type and a name of our choosing.
    let upload = temp("notes.txt", b"some notes\n");
    let echo = echoed(&[
        "-F",
        "field=value",
        "-F",
        &format!("doc=@{upload}"),
        "-F",
        &format!("other=@{upload};type=application/x-thing;filename=renamed.bin"),
        &bin.url("/post"),
    ]);
    assert_eq!(echo["form"]["field"], "value");
    assert_eq!(echo["files"]["doc"], "some notes\n");
    assert_eq!(echo["files"]["other"], "some notes\n");
    assert!(
        echo["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/form-data; boundary=------------------------")
    );
    // -T: PUT, the file as the body.
    let echo = echoed(&["-T", &upload, &bin.url("/put")]);
    assert_eq!(echo["data"], "some notes\n");
    // -A and -e.
    let echo = echoed(&[
        "-A",
        "agent/1",
        "-e",
        "http://from.example/",
        &bin.url("/headers"),
    ]);
    assert_eq!(echo["headers"]["User-Agent"], "agent/1");
    assert_eq!(echo["headers"]["Referer"], "http://from.example/");
}

#[test]
fn basic_auth_is_masked_and_bearer_comes_from_a_file() {
    let Some(bin) = Httpbin::start() else { return };
    let out = netkit()
        .args(["web", "get", "-v", "-u", "ada"])
        .arg(bin.url("/basic-auth/ada/s3cret"))
        .env("NETKIT_HTTP_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(echo["authenticated"], true);
    assert_eq!(echo["user"], "ada");
    let transcript = String::from_utf8_lossy(&out.stderr);
    assert!(
        transcript.contains("> authorization: Basic ****\n"),
        "{transcript}"
    );
    // base64("ada:s3cret") never appears.
    assert!(!transcript.contains("YWRhOnMzY3JldA"), "{transcript}");

    // A wrong password is httpbin's 401, an error only with --fail.
    let out = netkit()
        .args(["web", "get", "--fail", "-u", "ada"])
        .arg(bin.url("/basic-auth/ada/s3cret"))
        .env("NETKIT_HTTP_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(22));

    // A password on the command line is refused.
    let out = get(&["-u", "ada:s3cret", &bin.url("/get")]);
    assert_eq!(out.status.code(), Some(1));
    // ... saying how to give it instead, and without echoing it.
    let refusal = String::from_utf8_lossy(&out.stderr);
    assert!(
        refusal.contains("NETKIT_HTTP_PASSWORD") && refusal.contains("when asked"),
        "{refusal}"
    );
    assert!(!refusal.contains("s3cret"), "{refusal}");

    let token = temp("token", b"tok-123\n");
    let out = get(&[
        "-v",
        "--oauth2-bearer",
        &format!("@{token}"),
        &bin.url("/bearer"),
    ]);
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(echo["token"], "tok-123");
    let transcript = String::from_utf8_lossy(&out.stderr);
    assert!(transcript.contains("Bearer ****") && !transcript.contains("tok-123"));

    // Credentials are dropped on a redirect to another origin: httpbin on
    // 127.0.0.1 redirects to the same server named `localhost`.
    let elsewhere = bin.url("/headers").replace("127.0.0.1", "localhost");
    let out = netkit()
        .args(["web", "get", "-L", "-u", "ada"])
        .arg(bin.url(&format!("/redirect-to?url={elsewhere}")))
        .env("NETKIT_HTTP_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(echo["headers"].get("Authorization").is_none(), "{echo}");
    // ... and kept within the origin.
    let same = bin.url("/headers");
    let out = netkit()
        .args(["web", "get", "-L", "-u", "ada"])
        .arg(bin.url(&format!("/redirect-to?url={same}")))
        .env("NETKIT_HTTP_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(echo["headers"]["Authorization"].is_string(), "{echo}");
}

#[test]
fn cookies_redirects_and_compression() {
    let Some(bin) = Httpbin::start() else { return };
    let jar = temp("jar.txt", b"");
    std::fs::remove_file(&jar).unwrap();
    // Set by a redirect, kept across it, written in curl's format.
    let echo = echoed(&[
        "-L",
        "-c",
        &jar,
        &bin.url("/cookies/set?flavour=oat&count=2"),
    ]);
    assert_eq!(echo["cookies"]["flavour"], "oat");
    assert_eq!(echo["cookies"]["count"], "2");
    let written = std::fs::read_to_string(&jar).unwrap();
    assert!(written.starts_with("# Netscape HTTP Cookie File\n"));
    assert!(
        written.contains("\tFALSE\t/\tFALSE\t0\tflavour\toat\n"),
        "{written}"
    );
    // Read back with -b, and a literal -b string.
    let echo = echoed(&["-b", &jar, &bin.url("/cookies")]);
    assert_eq!(echo["cookies"]["flavour"], "oat");
    let echo = echoed(&["-b", "a=1; b=2", &bin.url("/cookies")]);
    assert_eq!(echo["cookies"]["b"], "2");
    // curl reads the jar netkit wrote.
    if testkit::require("curl") {
        let out = Command::new("curl")
            .args(["-s", "-b", &jar, &bin.url("/cookies")])
            .output()
            .unwrap();
        let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(echo["cookies"]["count"], "2");
    }

    // Redirects: counted, limited, and -w reports them.
    let out = get(&[
        "-L",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_redirects} %{url_effective}",
        &bin.url("/redirect/3"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("200 3 {}", bin.url("/get"))
    );
    let out = get(&["-L", "--max-redirs", "2", &bin.url("/redirect/3")]);
    assert_eq!(out.status.code(), Some(47));
    // 307 repeats the POST with its body; 302 after a POST becomes GET.
    let echo = echoed(&[
        "-L",
        "-d",
        "k=v",
        &bin.url(&format!(
            "/redirect-to?status_code=307&url={}",
            bin.url("/post")
        )),
    ]);
    assert_eq!(echo["form"]["k"], "v");
    let echo = echoed(&[
        "-L",
        "-d",
        "k=v",
        &bin.url(&format!(
            "/redirect-to?status_code=302&url={}",
            bin.url("/get")
        )),
    ]);
    assert_eq!(echo["url"], bin.url("/get"));

    // --compressed: decoded on the way.
    let echo = echoed(&["--compressed", &bin.url("/gzip")]);
    assert_eq!(echo["gzipped"], true);
    let echo = echoed(&["--compressed", &bin.url("/brotli")]);
    assert_eq!(echo["brotli"], true);
    let echo = echoed(&["--compressed", &bin.url("/deflate")]);
    assert_eq!(echo["deflated"], true);
}

#[test]
fn statuses_timeouts_retries_and_reports() {
    let Some(bin) = Httpbin::start() else { return };
    // Without --fail a 4xx is a completed transfer with its body.
    let out = get(&[&bin.url("/status/418")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("teapot"));
    let out = get(&["--fail", &bin.url("/status/418")]);
    assert_eq!(out.status.code(), Some(22));
    assert!(out.stdout.is_empty());
    let out = get(&["--fail-with-body", &bin.url("/status/418")]);
    assert_eq!(out.status.code(), Some(22));
    assert!(String::from_utf8_lossy(&out.stdout).contains("teapot"));

    // --max-time against a slow answer: curl's 28.
    let out = get(&["-m", "1s", &bin.url("/delay/5")]);
    assert_eq!(out.status.code(), Some(28));

    // --retry: a 503 is transient, tried N more times, then reported.
    let out = get(&[
        "--retry",
        "2",
        "--retry-delay",
        "100ms",
        "--fail",
        &bin.url("/status/503"),
    ]);
    assert_eq!(out.status.code(), Some(22));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 retries left") && err.contains("1 retries left"),
        "{err}"
    );
    // A timeout is transient too; --retry-max-time bounds the tries.
    let out = get(&[
        "-m",
        "500ms",
        "--retry",
        "5",
        "--retry-delay",
        "100ms",
        "--retry-max-time",
        "1s",
        &bin.url("/delay/3"),
    ]);
    assert_eq!(out.status.code(), Some(28));
    let tries = String::from_utf8_lossy(&out.stderr)
        .matches("Will retry")
        .count();
    assert!((1..5).contains(&tries), "{tries} retries");
    // A 404 is not transient.
    let out = get(&["--retry", "3", "--fail", &bin.url("/status/404")]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Will retry"));

    // --json-output: the exchange, with the body when there is no -o.
    let echo = echoed(&["--json-output", "-H", "X-Probe: 7", &bin.url("/get?a=1")]);
    assert_eq!(echo["response"]["status"], 200);
    assert_eq!(echo["request"]["method"], "GET");
    assert_eq!(echo["request"]["target"], "/get?a=1");
    let body: Value = serde_json::from_str(echo["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["headers"]["X-Probe"], "7");
    assert!(echo["timings_ms"]["total"].as_f64().unwrap() > 0.0);
    assert!(
        echo["timings_ms"]["connect"].as_f64().unwrap()
            <= echo["timings_ms"]["starttransfer"].as_f64().unwrap()
    );
    // -w: %{json} and times that grow in curl's order.
    let out = get(&["-o", "/dev/null", "-w", "%{json}", &bin.url("/bytes/1000")]);
    let vars: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(vars["size_download"], 1000);
    assert_eq!(vars["http_code"], 200);
    let t = |name: &str| vars[name].as_f64().unwrap();
    assert!(t("time_namelookup") <= t("time_connect"));
    assert!(t("time_connect") <= t("time_starttransfer"));
    assert!(t("time_starttransfer") <= t("time_total"));
}

#[test]
fn names_addresses_files_and_resuming() {
    let Some(bin) = Httpbin::start() else { return };
    let port = bin.base.rsplit(':').next().unwrap().to_owned();
    // --resolve: the name is sent as it was given, the address is ours.
    let echo = echoed(&[
        "--resolve",
        &format!("api.example.test:{port}:127.0.0.1"),
        &format!("http://api.example.test:{port}/headers"),
    ]);
    assert_eq!(echo["headers"]["Host"], format!("api.example.test:{port}"));
    // --connect-to: another host and port entirely.
    let echo = echoed(&[
        "--connect-to",
        &format!("api.example.test:80:127.0.0.1:{port}"),
        "http://api.example.test/headers",
    ]);
    assert_eq!(echo["headers"]["Host"], "api.example.test");
    // -4 keeps to IPv4; -6 finds no IPv6 address for 127.0.0.1.
    echoed(&["-4", &bin.url("/get")]);
    let out = get(&["-6", &bin.url("/get")]);
    assert_eq!(out.status.code(), Some(6));

    // -O and --remote-name-all name files after the URL, in a directory
    // --create-dirs makes for -o.
    let dir = std::env::temp_dir().join(format!("netkit-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = netkit()
        .current_dir(&dir)
        .args(["web", "get", "--remote-name-all"])
        .args([bin.url("/base64/aGVsbG8="), bin.url("/range/26")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.join("aGVsbG8=")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read(dir.join("26")).unwrap(),
        b"abcdefghijklmnopqrstuvwxyz"
    );
    let nested = dir.join("a/b/c.txt");
    let out = get(&[
        "--create-dirs",
        "-o",
        nested.to_str().unwrap(),
        &bin.url("/base64/aGVsbG8="),
    ]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&nested).unwrap(), b"hello");

    // -C -: a partial file is completed with a range request.
    let partial = dir.join("partial");
    std::fs::write(&partial, "abcdefghij").unwrap();
    let out = get(&[
        "-v",
        "-C",
        "-",
        "-o",
        partial.to_str().unwrap(),
        &bin.url("/range/26"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("> range: bytes=10-"));
    assert_eq!(
        std::fs::read(&partial).unwrap(),
        b"abcdefghijklmnopqrstuvwxyz"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
