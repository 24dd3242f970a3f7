//! zstd among the negotiated content codings of `web serve`: compressed
//! while sent, or a precompressed `.zst` sibling made by the `zstd` tool,
//! decoded by curl (built with libzstd) and by the `zstd` tool.

#[path = "web/support.rs"]
mod support;

use std::process::Command;

use support::*;

#[test]
fn zstd_on_the_fly_and_precompressed_siblings() {
    if !testkit::require("curl") || !testkit::require("zstd") {
        return;
    }
    let fixture = Fixture::new("encoding-zstd");
    let made = Command::new("zstd")
        .args(["-q", "-19", "-k"])
        .arg(fixture.path("docs/a.txt"))
        .status()
        .unwrap();
    assert!(made.success());
    let server = serve(Some(&fixture.root()), &[]);

    // big.txt has no sibling: compressed as it is sent.
    let raw = curl_output(
        &["-s", "-D", "-", "-H", "Accept-Encoding: zstd"],
        &[&url(&server, "/big.txt")],
    );
    let head_end = find(&raw.stdout, b"\r\n\r\n").unwrap();
    let head = text(&raw.stdout[..head_end]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: zstd"), "{head}");
    assert!(head.contains("-zst\""), "the ETag names the coding: {head}");
    let body = &raw.stdout[head_end + 4..];
    assert!(body.len() < big_text().len() / 4);
    let frame = fixture.base.join("big.txt.zst");
    std::fs::write(&frame, body).unwrap();
    let decoded = Command::new("zstd")
        .arg("-dc")
        .arg(&frame)
        .output()
        .unwrap();
    assert!(decoded.status.success(), "{}", text(&decoded.stderr));
    assert_eq!(text(&decoded.stdout), big_text());

    // curl asks for and decodes it itself.
    let out = curl_output(
        &["-s", "--compressed", "-H", "Accept-Encoding: zstd"],
        &[&url(&server, "/big.txt")],
    );
    assert_eq!(text(&out.stdout), big_text());

    // The precompressed sibling is served as is.
    let sibling = std::fs::read(fixture.path("docs/a.txt.zst")).unwrap();
    let out = curl_output(
        &["-s", "-H", "Accept-Encoding: zstd"],
        &[&url(&server, "/docs/a.txt")],
    );
    assert_eq!(out.stdout, sibling);
    let reply = curl(&[
        "--compressed",
        "-H",
        "Accept-Encoding: zstd",
        &url(&server, "/docs/a.txt"),
    ]);
    assert_eq!(reply.header("content-encoding"), Some("zstd"));
    assert_eq!(reply.body_text(), "document a\n");

    // A browser's list: brotli still wins a tie.
    let out = curl_output(
        &["-s", "-D", "-", "-o", "/dev/null"],
        &[
            "-H",
            "Accept-Encoding: gzip, deflate, br, zstd",
            &url(&server, "/big.txt"),
        ],
    );
    assert!(
        text(&out.stdout)
            .to_ascii_lowercase()
            .contains("content-encoding: br"),
        "{}",
        text(&out.stdout)
    );
}
