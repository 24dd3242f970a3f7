//! The server answers without allocating per packet: a counting global
//! allocator watches while a client keeps a window of datagrams in flight,
//! in each server mode (plain echo, impaired, STAMP stateful, heartbeats).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use udping::{Impairment, Mode, MonitorConfig, Server, ServerConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed straight to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WINDOW: usize = 16;
const WARM_UP: usize = 3_000;
const MEASURED: usize = 20_000;

/// Sends `n` datagrams (`Heartbeat` or `Ping` text, or a STAMP packet)
/// keeping `WINDOW` in flight when the server answers; returns how many
/// replies came back.
fn drive(socket: &UdpSocket, payload: &mut [u8], n: usize, answered: bool) -> usize {
    let mut buf = [0u8; 256];
    let mut replies = 0;
    let mut in_flight = 0;
    for i in 0..n {
        set_sequence(payload, i as u32);
        socket.send(payload).unwrap();
        in_flight += 1;
        while answered && in_flight >= WINDOW {
            match socket.recv(&mut buf) {
                Ok(_) => {
                    replies += 1;
                    in_flight -= 1;
                }
                // Impairment drops some; take the window as lost.
                Err(_) => in_flight = 0,
            }
        }
        if !answered && i % WINDOW == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    while answered && in_flight > 0 && socket.recv(&mut buf).is_ok() {
        replies += 1;
        in_flight -= 1;
    }
    replies
}

/// Writes `sequence` where the payload carries it: eight zero-padded digits
/// after the word in text, the first four octets in STAMP.
fn set_sequence(payload: &mut [u8], sequence: u32) {
    match payload.iter().position(|&b| b == b' ') {
        Some(space) if payload[0].is_ascii_alphabetic() => {
            // Digit by digit: formatting a String would count as ours.
            let mut rest = sequence;
            for place in (space + 1..space + 9).rev() {
                payload[place] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
        }
        _ => payload[..4].copy_from_slice(&sequence.to_be_bytes()),
    }
}

/// Allocations the server made while answering `MEASURED` datagrams after
/// a warm-up.
fn allocations_per_run(config: ServerConfig, mut payload: Vec<u8>, answered: bool) -> u64 {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(Server::bind(loopback, config)).unwrap();
    let addr = server.local_addr();
    let token = CancellationToken::new();
    let stop = token.clone();
    let serving = std::thread::spawn(move || runtime.block_on(server.run(token)));

    let socket = UdpSocket::bind(loopback).unwrap();
    socket.connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let warmed = drive(&socket, &mut payload, WARM_UP, answered);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let replies = drive(&socket, &mut payload, MEASURED, answered);
    // Let the server finish what is queued before counting.
    std::thread::sleep(Duration::from_millis(100));
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    stop.cancel();
    serving.join().unwrap();
    if answered {
        assert!(warmed > 0 && replies > MEASURED / 2, "{replies} replies");
    }
    during
}

fn assert_no_per_packet_allocation(what: &str, allocations: u64) {
    // A handful for the runtime's own bookkeeping, never one per packet.
    assert!(
        allocations < (MEASURED / 100) as u64,
        "{what}: {allocations} allocations for {MEASURED} datagrams"
    );
}

#[test]
fn echo_allocates_nothing_per_packet() {
    let count = allocations_per_run(ServerConfig::default(), b"Ping 00000000 0.0".to_vec(), true);
    assert_no_per_packet_allocation("text echo", count);
}

#[test]
fn impaired_echo_allocates_nothing_per_packet() {
    let config = ServerConfig {
        // No loss: a lost reply would stall the window for the read timeout.
        impairment: Impairment {
            loss: 0.0,
            delay: Duration::from_micros(200),
            jitter: Duration::from_micros(100),
            duplicate: 0.1,
            reorder: 0.1,
        },
        seed: 3,
        ..ServerConfig::default()
    };
    let count = allocations_per_run(config, b"Ping 00000000 0.0".to_vec(), true);
    assert_no_per_packet_allocation("impaired echo", count);
}

#[test]
fn stateful_reflector_allocates_nothing_per_packet() {
    let config = ServerConfig {
        mode: Mode::Stamp,
        stateful: true,
        ..ServerConfig::default()
    };
    let count = allocations_per_run(config, vec![0u8; 64], true);
    assert_no_per_packet_allocation("STAMP reflector", count);
}

#[test]
fn heartbeat_monitor_allocates_nothing_per_packet() {
    let config = ServerConfig {
        heartbeat: Some(MonitorConfig {
            interval: Duration::from_millis(100),
            dead_after: 3,
        }),
        ..ServerConfig::default()
    };
    let count = allocations_per_run(config, b"Heartbeat 00000000 0.0".to_vec(), false);
    assert_no_per_packet_allocation("heartbeat monitor", count);
}
