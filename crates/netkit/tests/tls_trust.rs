//! Which server certificates `--cacert FILE` makes trusted, checked against
//! curl's verdict with the same file and the same server: certificates made
//! by the `openssl` command line in the shapes people make them, served by
//! `openssl s_server`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl s_server` on a free loopback port, killed when dropped.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(dir: &Path, cert: &str, key: &str) -> SServer {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("openssl")
                .current_dir(dir)
                .args(["s_server", "-www", "-cert", cert, "-key", key, "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // s_server says ACCEPT once it listens, or exits if the port
            // was taken in the meantime.
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            if lines.any(|line| line.is_ok_and(|line| line.contains("ACCEPT"))) {
                std::thread::spawn(move || lines.for_each(drop));
                return SServer { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "openssl s_server did not start");
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Shapes {
    dir: PathBuf,
}

impl Drop for Shapes {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every certificate below, made as the openssl documentation shows.
fn make_shapes() -> Shapes {
    let dir = std::env::temp_dir().join(format!("netkit-tls-trust-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let d = &dir;
    let req_x509 = |name: &str, subject: &str| {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(
            d,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key,
                "-out", &cert,
            ],
        );
    };
    // The one-liner: CN only, no subjectAltName, and CA:TRUE.
    req_x509("selfsigned", "/CN=localhost");
    req_x509("wrongname", "/CN=otherhost");
    // A CA, and a leaf it signs: with a subjectAltName, and with CN only.
    req_x509("ca", "/CN=Test CA");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    std::fs::write(d.join("cn.ext"), "basicConstraints=CA:FALSE\n").unwrap();
    for (cert, ext) in [("leaf.pem", "san.ext"), ("leaf-cn.pem", "cn.ext")] {
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                ext,
                "-out",
                cert,
            ],
        );
    }
    // Self-signed and long expired, through `openssl ca` for the dates.
    std::fs::write(d.join("db/index.txt"), "").unwrap();
    std::fs::write(d.join("db/serial"), "01\n").unwrap();
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = db/index.txt\nserial = db/serial\n\
         new_certs_dir = db\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "expired.key",
            "-out",
            "expired.csr",
        ],
    );
    openssl(
        d,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "expired.key",
            "-in",
            "expired.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-out",
            "expired.pem",
        ],
    );
    Shapes { dir }
}

/// curl's and netkit's exit codes fetching from a server presenting
/// `served` (with its key), trusting `cacert`.
fn verdicts(shapes: &Shapes, served: &str, key: &str, cacert: &str) -> (i32, i32, String) {
    let server = SServer::start(&shapes.dir, served, key);
    let cacert = shapes.dir.join(cacert);
    let curl = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--cacert"])
        .arg(&cacert)
        .arg(server.url())
        .output()
        .unwrap();
    let ours = netkit()
        .args(["web", "get", "--cacert"])
        .arg(&cacert)
        .arg(server.url())
        .output()
        .unwrap();
    (
        curl.status.code().unwrap(),
        ours.status.code().unwrap(),
        String::from_utf8_lossy(&ours.stderr).into_owned(),
    )
}

#[test]
fn cacert_trusts_what_curl_trusts() {
    if !testkit::require("openssl") || !testkit::require("curl") {
        return;
    }
    let shapes = make_shapes();
    // (what the server presents, its key, the --cacert file, curl's verdict)
    let cases = [
        ("selfsigned.pem", "selfsigned.key", "selfsigned.pem", 0),
        ("leaf.pem", "leaf.key", "ca.pem", 0),
        ("leaf-cn.pem", "leaf.key", "ca.pem", 0),
        ("leaf.pem", "leaf.key", "leaf.pem", 0),
        ("wrongname.pem", "wrongname.key", "wrongname.pem", 60),
        ("expired.pem", "expired.key", "expired.pem", 60),
        ("selfsigned.pem", "selfsigned.key", "wrongname.pem", 60),
        ("leaf.pem", "leaf.key", "selfsigned.pem", 60),
    ];
    for (served, key, cacert, expected) in cases {
        let (curl, ours, err) = verdicts(&shapes, served, key, cacert);
        assert_eq!(curl, expected, "curl on {served} with --cacert {cacert}");
        assert_eq!(
            ours, curl,
            "netkit on {served} with --cacert {cacert}: {err}"
        );
        let hint = match served {
            "wrongname.pem" => "another name",
            "expired.pem" => "validity period",
            _ => "",
        };
        assert!(err.contains(hint), "{served}: {err}");
    }
}

/// The same trust through the library, for every client built on it (mail
/// send and chat join use `tls::client_config` as web get does).
#[tokio::test]
async fn the_library_pins_an_openssl_one_liner() {
    if !testkit::require("openssl") {
        return;
    }
    let shapes = make_shapes();
    let server = SServer::start(&shapes.dir, "selfsigned.pem", "selfsigned.key");
    let connect = |ca: &str| {
        let options = tls::ClientOptions {
            insecure: false,
            ca_file: Some(shapes.dir.join(ca)),
        };
        let port = server.port;
        async move {
            let config = tls::client_config(&options, &[]).unwrap();
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            tls::TlsConnector::from(config)
                .connect(tls::server_name("localhost").unwrap(), stream)
                .await
        }
    };
    connect("selfsigned.pem").await.unwrap();
    let err = connect("ca.pem").await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}
