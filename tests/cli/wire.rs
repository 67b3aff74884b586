//! The wire format checked byte by byte, without netlab's own helpers.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use crate::support::Server;

fn read_frame(stream: &mut impl Read) -> Vec<u8> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut payload).unwrap();
    payload
}

#[test]
fn greeting_is_one_frame_with_a_byte_count_header() {
    let server = Server::start(&["echo"]);
    let mut stream = server.connect();
    let greeting = read_frame(&mut stream);
    assert!(String::from_utf8(greeting).unwrap().contains("echo server"));
}

#[test]
fn cyrillic_length_counts_bytes() {
    let server = Server::start(&["echo"]);
    let mut stream = server.connect();
    read_frame(&mut stream);
    // "привет" is 6 characters and 12 bytes; a header of 6 would be the classic bug.
    let mut frame = vec![0x00, 0x00, 0x00, 0x0c];
    frame.extend_from_slice("привет".as_bytes());
    stream.write_all(&frame).unwrap();
    let mut reply = vec![0u8; 16];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, frame);
}

#[test]
fn two_frames_in_one_write_and_one_frame_in_pieces() {
    let server = Server::start(&["echo"]);
    let mut stream = server.connect();
    read_frame(&mut stream);
    stream.write_all(b"\0\0\0\x03one\0\0\0\x03two").unwrap();
    assert_eq!(read_frame(&mut stream), b"one");
    assert_eq!(read_frame(&mut stream), b"two");
    for piece in [&b"\0\0"[..], b"\0\x05th", b"ree"] {
        stream.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read_frame(&mut stream), b"three");
}

#[test]
fn empty_message_is_echoed_as_an_empty_frame() {
    let server = Server::start(&["echo"]);
    let mut stream = server.connect();
    read_frame(&mut stream);
    stream.write_all(&[0, 0, 0, 0]).unwrap();
    assert_eq!(read_frame(&mut stream), b"");
}
