//! `--codec raw`: bytes back verbatim, usable with nc or any plain socket.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;

use crate::support::{Server, read_to_close};

#[test]
fn raw_mode_echoes_bytes_with_no_greeting_and_no_framing() {
    let server = Server::start(&["echo", "--codec", "raw"]);
    let mut stream = server.connect();
    stream.write_all(b"hello\n").unwrap();
    let mut got = [0u8; 6];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\n");
}

#[test]
fn raw_mode_returns_a_large_stream_intact() {
    let server = Server::start(&["echo", "--codec", "raw"]);
    let stream = server.connect();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    // Written from another thread: the server echoes while we are still sending.
    let sender = thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reader = stream;
    assert_eq!(read_to_close(&mut reader), data);
    sender.join().unwrap();
}

#[test]
fn raw_mode_closes_an_idle_connection() {
    let server = Server::start(&["echo", "--codec", "raw", "--idle-timeout", "300ms"]);
    let mut stream = server.connect();
    stream.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    stream.read_exact(&mut got).unwrap();
    let started = std::time::Instant::now();
    // Raw mode has no notice to give: the server just closes.
    assert!(read_to_close(&mut stream).is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    server.wait_for_log("no input for 300ms");
}
