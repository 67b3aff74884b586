//! `netlab connect` without a terminal: scripted like nc.

use crate::support::{Server, netlab, run_with_input};

const GREETING: &str =
    "netlab echo server: every message you send comes back unchanged. /quit leaves.";

fn connect(server: &Server, extra: &[&str], input: &str) -> std::process::Output {
    let mut cmd = netlab();
    cmd.args(["connect", "--port", &server.port()]).args(extra);
    run_with_input(cmd, input)
}

#[test]
fn scripted_client_sends_each_line_and_prints_each_reply() {
    let server = Server::start(&["echo"]);
    let out = connect(&server, &[], "one\nдва\n🦀 three\n\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{GREETING}\none\nдва\n🦀 three\n\n")
    );
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
}

#[test]
fn quit_stops_sending_but_shows_replies_already_due() {
    let server = Server::start(&["echo"]);
    let out = connect(&server, &[], "first\r\n/quit\nnever sent\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{GREETING}\nfirst\n")
    );
}

#[test]
fn oversized_line_is_refused_locally_and_the_rest_goes_on() {
    let server = Server::start(&["echo"]);
    let long = "x".repeat(300);
    let out = connect(
        &server,
        &["--max-frame", "256"],
        &format!("{long}\nshort\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{GREETING}\nshort\n")
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("not sent: message of 300 bytes is over the maximum of 256 bytes"),
        "{stderr}"
    );
}

#[test]
fn connection_refused_is_a_runtime_error() {
    // Bind and release a port, so that nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = netlab();
    cmd.args(["connect", "--port", &port.to_string()]);
    let out = run_with_input(cmd, "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "netlab: could not connect to 127.0.0.1:{port}: Connection refused (os error 111); \
             is a server running on it?\n"
        )
    );
}

#[test]
fn connect_speaks_lines_to_a_line_server() {
    let server = Server::start(&["echo", "--codec", "lines"]);
    let out = connect(&server, &["--codec", "lines"], "one\nдва\n\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{GREETING}\none\nдва\n\n")
    );
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
}

#[test]
fn connect_over_lines_shows_a_message_of_several_lines_as_one() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "auth", "--codec", "lines", "--port", "0"])
        .args(["--scrypt-log-n", "10", "--db"])
        .arg(data.path().join("netlab.db"));
    let server = Server::start_command(cmd);
    // Lock-step: each line is sent only once the previous message, all its lines, is in.
    let out = connect(
        &server,
        &["--codec", "lines"],
        "lena\npassword-1\npassword-1\n/whoami\n",
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let shown: Vec<&str> = stdout.lines().collect();
    assert_eq!(shown.len(), 7, "{stdout}");
    assert_eq!(shown[2], "Username:");
    assert!(shown[3].starts_with("New user lena."), "{stdout}");
    assert_eq!(shown[6], "You are lena, signed in with your password.");
    assert!(!stdout.contains("password-1"));
}

/// A server of our own for the client to meet: accepts one connection and hands it to
/// `behave` on a thread.
fn peer_server(behave: impl FnOnce(std::net::TcpStream) + Send + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            behave(stream);
        }
    });
    port
}

fn connect_to(port: u16, extra: &[&str], input: &str) -> (Option<i32>, String, String) {
    let mut cmd = netlab();
    cmd.args(["connect", "--port", &port.to_string()])
        .args(extra);
    let out = run_with_input(cmd, input);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_server_that_never_greets_is_named_within_the_timeout() {
    let port = peer_server(|stream| {
        std::thread::sleep(std::time::Duration::from_secs(10));
        drop(stream);
    });
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = connect_to(port, &["--greeting-timeout", "500ms"], "hello\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        stderr,
        format!(
            "netlab: no greeting from 127.0.0.1:{port} within 500ms; a line, raw or TLS \
             server? try --codec lines, --codec raw or --tls; 1 line(s) of input not sent\n"
        )
    );
}

#[test]
fn netlabs_own_raw_echo_server_gets_the_same_hint() {
    let server = Server::start(&["echo", "--codec", "raw"]);
    let (code, _, stderr) = connect_to(
        server.addr.port(),
        &["--greeting-timeout", "300ms"],
        "hello\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("try --codec lines, --codec raw or --tls"),
        "{stderr}"
    );
}

#[test]
fn a_server_that_never_answers_is_an_error_with_the_unsent_count() {
    let port = peer_server(|mut stream| {
        use netlab::wire::frame::SendMsg;
        stream.send_msg("hello, I say nothing more").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(10));
    });
    let (code, stdout, stderr) = connect_to(
        port,
        &["--reply-timeout", "300ms"],
        "first\nsecond\nthird\n",
    );
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "hello, I say nothing more\n");
    assert_eq!(
        stderr,
        format!(
            "netlab: no reply from 127.0.0.1:{port} within 300ms; 2 line(s) of input not sent\n"
        )
    );
}

#[test]
fn a_reset_is_an_error() {
    let port = peer_server(|mut stream| {
        use netlab::wire::frame::{RecvMsg, SendMsg};
        stream.send_msg("hello").unwrap();
        stream.recv_msg().unwrap();
        crate::support::reset(stream);
    });
    let (code, stdout, stderr) = connect_to(port, &[], "one\ntwo\n");
    assert_eq!((code, stdout.as_str()), (Some(1), "hello\n"));
    assert!(
        stderr.starts_with(&format!("netlab: connection to 127.0.0.1:{port} failed: "))
            && stderr.contains("reset"),
        "{stderr}"
    );
}

/// A normal end is the user's; whatever the server ends is exit 1, with its last word.
#[test]
fn a_goodbye_the_client_did_not_ask_for_is_exit_1() {
    let server = Server::start(&["echo", "--idle-timeout", "300ms"]);
    let mut cmd = netlab();
    cmd.args(["connect", "--port", &server.port()]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = crate::support::wait_with_deadline(&mut child, crate::support::PATIENCE)
        .expect("the client waited for ever");
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "ended the conversation (its last message: \
             \"error: no message for 300ms; closing the connection\")"
        ),
        "{stderr}"
    );
}

#[test]
fn raw_connect_is_nc_against_netlabs_raw_echo() {
    let server = Server::start(&["echo", "--codec", "raw"]);
    let lines: String = (0..10).map(|i| format!("line {i}: строка {i}\n")).collect();
    let (code, stdout, stderr) = connect_to(server.addr.port(), &["--codec", "raw"], &lines);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert_eq!(stdout, lines, "every line back, in order, with its newline");

    let long_line = format!("{}\n", "x".repeat(1_000_000));
    let (code, stdout, _) = connect_to(server.addr.port(), &["--codec", "raw"], &long_line);
    assert_eq!(code, Some(0));
    assert!(stdout == long_line, "the 1 MB line came back whole");
}

#[test]
fn raw_connect_reports_a_server_that_closes_before_the_input_ends() {
    let port = peer_server(|mut stream| {
        use std::io::Write;
        stream.write_all(b"banner, then gone\n").unwrap();
    });
    let mut cmd = netlab();
    cmd.args(["connect", "--codec", "raw", "--port", &port.to_string()]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = crate::support::wait_with_deadline(&mut child, crate::support::PATIENCE)
        .expect("the client waited for ever");
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "banner, then gone\n"
    );
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        format!("netlab: 127.0.0.1:{port} closed the connection before the end of input\n")
    );
}
