//! `--codec lines`: every mode reachable with a line of text per message, as nc, telnet
//! or a readline client would talk, through a plain `std::net::TcpStream`.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use netlab::wire::lines::read_message;

use crate::support::{Server, netlab, read_to_close};

/// A client that writes raw lines and reads server messages by the codec's rule.
struct LineClient {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl LineClient {
    fn new(stream: TcpStream) -> LineClient {
        LineClient {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn recv(&mut self) -> Option<String> {
        read_message(&mut self.reader, 1 << 20).unwrap()
    }

    /// Sends `bytes` as they are (the line ending included) and returns the reply.
    fn send_raw(&mut self, bytes: &[u8]) -> String {
        self.writer.write_all(bytes).unwrap();
        self.recv().expect("a reply")
    }

    fn say(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\n").as_bytes())
    }
}

fn line_client(server: &Server) -> (LineClient, String) {
    let mut client = LineClient::new(server.connect());
    let greeting = client.recv().expect("a greeting");
    (client, greeting)
}

#[test]
fn echo_over_lines_with_lf_and_crlf_endings() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let (mut c, greeting) = line_client(&server);
    assert_eq!(
        greeting,
        "netlab echo server: every message you send comes back unchanged. /quit leaves."
    );
    assert_eq!(c.say("hello"), "hello");
    assert_eq!(c.send_raw("привет 🦀\r\n".as_bytes()), "привет 🦀");
    assert_eq!(c.say(""), "");
    assert_eq!(c.say("  spaces kept  \t"), "  spaces kept  \t");
}

#[test]
fn echo_over_lines_is_exact_on_the_wire() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let mut stream = server.connect();
    let mut greeting = Vec::new();
    while !greeting.ends_with(b"\n") {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).unwrap();
        greeting.push(byte[0]);
    }
    assert!(
        !greeting.ends_with(b"\r\n"),
        "a one-line message ends in LF"
    );
    // Two lines in one write, one of them CRLF: two replies, each ending in LF alone.
    stream.write_all(b"one\r\ntwo\n").unwrap();
    let mut reply = [0u8; 8];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"one\ntwo\n");
}

#[test]
fn ident_over_lines_asks_names_and_greets_on_the_next_visit() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "ident", "--codec", "lines", "--port", "0", "--db"])
        .arg(data.path().join("netlab.db"));
    let server = Server::start_command(cmd);

    let mut c = LineClient::new(server.connect_from("127.0.0.2"));
    assert_eq!(
        c.recv().unwrap(),
        "Hello! I do not know you yet. What is your name?"
    );
    assert!(
        c.send_raw(b"Alice\r\n")
            .starts_with("Nice to meet you, Alice!")
    );
    assert_eq!(c.say("hi"), "hi");
    drop(c);

    let mut again = LineClient::new(server.connect_from("127.0.0.2"));
    let greeting = again.recv().unwrap();
    assert!(
        greeting.starts_with("Hello, Alice! This is visit number 2."),
        "{greeting}"
    );
}

#[test]
fn auth_over_lines_registers_signs_in_and_logs_out() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "auth", "--codec", "lines", "--port", "0"])
        .args(["--scrypt-log-n", "10", "--db"])
        .arg(data.path().join("netlab.db"));
    let server = Server::start_command(cmd);

    // The greeting is three lines, one message: the first two end in CRLF.
    let mut raw = server.connect();
    let mut greeting = vec![0u8; 256];
    let mut got = 0;
    while !netlab::wire::lines::ends_message(&greeting[..got]) {
        got += raw.read(&mut greeting[got..]).unwrap();
        assert!(got > 0 && got < greeting.len());
    }
    let greeting = String::from_utf8(greeting[..got].to_vec()).unwrap();
    let lines: Vec<&str> = greeting.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{greeting:?}");
    assert!(lines[0].ends_with("\r\n") && lines[1].ends_with("\r\n"));
    assert!(
        lines[1].contains("nc and telnet show your password"),
        "{greeting:?}"
    );
    assert_eq!(lines[2], "Username:\n");
    assert!(!greeting.contains("/token"), "no tokens over plain text");
    drop(raw);

    let (mut c, _) = line_client(&server);
    assert!(c.say("nina").starts_with("New user nina."));
    assert_eq!(c.say("password-1"), "Repeat the password:");
    let welcome = c.say("password-1");
    assert!(welcome.starts_with("Welcome, and thank you for registering, nina!"));
    assert!(!welcome.contains("token"), "{welcome}");
    assert_eq!(
        c.say("/whoami"),
        "You are nina, signed in with your password."
    );
    assert_eq!(c.say("hello"), "hello");
    assert_eq!(c.say("/logout"), "Goodbye, nina. You are signed out.");
    assert_eq!(c.recv(), None);

    let (mut c, _) = line_client(&server);
    assert!(
        c.say("/token")
            .starts_with("Session tokens need a client that keeps them")
    );
    assert_eq!(c.say("nina"), "Password:");
    assert!(c.send_raw(b"password-1\r\n").starts_with("Welcome, nina!"));
}

#[test]
fn an_over_long_line_is_refused_and_closed() {
    let server = Server::start(&["echo", "--codec", "lines", "--max-frame", "300"]);
    let (mut c, _) = line_client(&server);
    assert_eq!(c.say(&"ы".repeat(150)), "ы".repeat(150));
    // No newline needed: the server stops reading once the line is past the maximum.
    c.writer.write_all(&[b'x'; 400]).unwrap();
    assert_eq!(
        c.recv().unwrap(),
        "error: line longer than the maximum of 300 bytes; closing the connection"
    );
    assert_eq!(c.recv(), None);
}

#[test]
fn invalid_utf8_is_refused_and_closed() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let (mut c, _) = line_client(&server);
    let notice = c.send_raw(b"ok then \xC3\x28\n");
    assert_eq!(
        notice,
        "error: line is not valid UTF-8 (invalid byte at offset 8); closing the connection"
    );
    assert_eq!(c.recv(), None);
}

#[test]
fn telnet_negotiation_is_refused_with_a_clear_message() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let (mut c, _) = line_client(&server);
    // IAC WILL TERMINAL-TYPE, as some telnet clients send on connecting.
    c.writer.write_all(&[0xFF, 0xFB, 0x18]).unwrap();
    let notice = c.recv().unwrap();
    assert!(
        notice.starts_with("error: telnet negotiation (byte 0xFF) is not text"),
        "{notice}"
    );
    assert_eq!(c.recv(), None);
}

#[test]
fn a_line_cut_by_the_close_is_logged_as_an_error() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let (mut c, _) = line_client(&server);
    c.writer.write_all(b"no newline").unwrap();
    c.writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.recv(), None, "no reply to a line that never ended");
    server.wait_for_log("connection closed in the middle of a line (10 bytes and no newline)");
}

#[test]
fn a_trickled_line_is_closed_by_the_frame_deadline() {
    let server = Server::start(&["echo", "--codec", "lines", "--frame-timeout", "1s"]);
    let (mut c, _) = line_client(&server);
    let mut writer = c.writer.try_clone().unwrap();
    thread::spawn(move || {
        for _ in 0..100 {
            if writer.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let started = Instant::now();
    assert_eq!(
        c.recv().unwrap(),
        "error: message not finished within 1s; closing the connection"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_shutdown_notice_arrives_as_a_line() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let (mut c, _) = line_client(&server);
    server.terminate();
    let mut rest = Vec::new();
    c.reader.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"server is shutting down, goodbye\n");
    let (status, _, _) = server.wait();
    assert!(status.success());
}

#[test]
fn raw_is_refused_for_modes_that_need_messages() {
    for mode in ["ident", "auth"] {
        let out = netlab()
            .args(["serve", mode, "--codec", "raw", "--port", "0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{mode}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("invalid value 'raw' for '--codec <CODEC>'")
                && stderr.contains("[possible values: framed, lines]"),
            "{stderr}"
        );
    }
}

#[test]
fn a_pipelined_burst_is_answered_in_order() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let (mut c, _) = line_client(&server);
    let burst: String = (0..500).map(|i| format!("line {i}\n")).collect();
    let mut writer = c.writer.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(burst.as_bytes()).unwrap());
    for i in 0..500 {
        assert_eq!(c.recv().unwrap(), format!("line {i}"));
    }
    sender.join().unwrap();
    c.writer.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_to_close(&mut c.writer).is_empty());
}
