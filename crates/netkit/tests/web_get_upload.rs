//! `-T` streams: a 2 GiB upload to a local sink that discards it keeps
//! netkit under 64 MiB resident, as /proc reports it (not timed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

const SIZE: u64 = 2 << 30;
const LIMIT_KIB: u64 = 64 * 1024;

/// The peak resident set size of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_two_gib_upload_stays_under_64_mib() {
    let dir = std::env::temp_dir().join(format!("netkit-upload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Sparse: no disk is used, and every byte still has to be read and sent.
    let path = dir.join("big.bin");
    std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (peak_tx, peak_rx) = std::sync::mpsc::channel::<u32>();
    let (result_tx, result_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let request_line = line.trim_end().to_owned();
        let mut length = 0u64;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let received =
            std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink()).unwrap();
        // The whole body is in: netkit is still alive, waiting for the
        // answer, so its peak resident size can be read now.
        let pid = peak_rx.recv().unwrap();
        let peak = peak_rss_kib(pid);
        result_tx
            .send((request_line, length, received, peak))
            .unwrap();
        writer
            .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    });

    let child = Command::new(env!("CARGO_BIN_EXE_netkit"))
        .args(["web", "get", "-T"])
        .arg(&path)
        .arg(format!("http://{addr}/sink"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    peak_tx.send(child.id()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (line, length, received, peak) = result_rx.recv().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(line, "PUT /sink HTTP/1.1");
    assert_eq!(length, SIZE);
    assert_eq!(received, SIZE);
    let peak = peak.expect("netkit's /proc status");
    assert!(peak < LIMIT_KIB, "peak resident {peak} KiB");
    eprintln!("peak resident during a 2 GiB upload: {} MiB", peak / 1024);
}
