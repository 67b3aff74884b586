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
    assert!(
        stderr.starts_with(&format!("netlab: could not connect to 127.0.0.1:{port}: ")),
        "{stderr}"
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
