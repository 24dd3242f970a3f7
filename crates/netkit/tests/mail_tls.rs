//! TLS for `netkit mail send` against aiosmtpd: STARTTLS required but not
//! offered, certificates that do not verify, and a server certificate
//! issued by a CA given with --cacert (made with the openssl command).

#[path = "mail/support.rs"]
mod support;

use std::process::Command;

use support::*;

#[test]
fn tls_required_but_not_offered() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("notls");
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &[]);
    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--tls",
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--body",
            "x",
        ],
        &[],
        b"",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(29), "{stdout}\n{stderr}");
    assert!(stderr.contains("does not offer STARTTLS"), "{stderr}");
    assert!(
        stdout.contains(" -> QUIT") && stdout.contains("<-  221"),
        "{stdout}"
    );
    assert!(!stdout.contains("MAIL FROM"));
    assert!(received(&outdir).is_empty());

    // Without --tls the same server is used unencrypted, and says so.
    let out = send(
        &[
            "--server",
            &server.addr().to_string(),
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--body",
            "x",
        ],
        &[],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("=== the server does not offer STARTTLS"));
    assert_eq!(received(&outdir)[0].1["tls"], false);
}

#[test]
fn unverifiable_certificate_needs_insecure() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = Scratch::new("badcert");
    let (server, outdir, _) = aiosmtpd_tls(&dir, &[]);
    let addr = server.addr().to_string();
    let args = |extra| {
        [
            "--server",
            addr.as_str(),
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--body",
            "x",
            extra,
        ]
    };
    let out = send(&args("--tls"), &[], b"");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(29), "{stdout}\n{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    assert!(stderr.contains("--cacert FILE"), "what to do: {stderr}");
    assert!(received(&outdir).is_empty());

    let out = send(&args("--insecure"), &[], b"");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("--insecure"), "warned: {stderr}");
    assert!(stdout.contains("NOT verified"), "{stdout}");
    assert_eq!(received(&outdir).len(), 1);
}

/// A CA and a leaf certificate for localhost and 127.0.0.1 that it signed,
/// made by openssl (not netkit's code): `(ca.pem, leaf.pem, leaf.key)`.
fn ca_and_leaf(dir: &Scratch) -> (String, String, String) {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    };
    let ext = dir.write(
        "leaf.ext",
        b"subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    let (ca, ca_key) = (path("ca.pem"), path("ca.key"));
    let (leaf, leaf_key, csr) = (path("leaf.pem"), path("leaf.key"), path("leaf.csr"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=netkit test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &leaf_key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        &leaf,
    ]);
    (ca, leaf, leaf_key)
}

/// --cacert adds a CA: a server certificate it issued verifies, by name
/// and by address; without it, the same server is refused.
#[test]
fn a_certificate_issued_by_a_cacert_ca_verifies() {
    if !have_aiosmtpd() || !testkit::require("openssl") {
        return;
    }
    let dir = Scratch::new("ca");
    let (ca, leaf, leaf_key) = ca_and_leaf(&dir);
    let outdir = dir.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let server = aiosmtpd(&outdir, &["--cert", &leaf, "--key", &leaf_key]);
    let port = server.addr().port();
    for host in ["localhost", "127.0.0.1"] {
        let server = format!("{host}:{port}");
        let base = [
            "--server",
            &server,
            "--tls",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--body",
            "x",
        ];
        let out = send(&[&base[..], &["--cacert", &ca]].concat(), &[], b"");
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("certificate verified: subject CN=localhost, issuer CN=netkit test CA"),
            "{stdout}"
        );

        let out = send(&base, &[], b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(29), "{stderr}");
        assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    }
    assert_eq!(received(&outdir).len(), 2);
}
