//! The Python example client (standard library only) talks to the Rust server: the
//! protocol document is enough to write a compatible client.

use std::process::Command;

use crate::support::{Server, run_with_input};

#[test]
fn python_example_client_converses_with_the_server() {
    let server = Server::start(&["echo"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "--host", "127.0.0.1", "--port", &server.port()]);
    let out = run_with_input(cmd, "hello\nпривет, мир\n👋\n");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].contains("echo server"), "{stdout}");
    assert_eq!(lines[1..], ["hello", "привет, мир", "👋"]);
}

/// The readline-style example follows the line codec's message rule: the auth greeting,
/// three lines, is one message, so the conversation stays in step.
#[test]
fn python_line_client_registers_over_lines() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::netlab();
    cmd.args(["serve", "auth", "--codec", "lines", "--port", "0"])
        .args(["--scrypt-log-n", "10", "--db"])
        .arg(data.path().join("netlab.db"));
    let server = Server::start_command(cmd);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/line_client.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "--port", &server.port()]);
    let out = run_with_input(cmd, "ivan\npassword-1\npassword-1\n/whoami\nпривет\n");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("netlab auth server:"), "{stdout}");
    assert!(
        stdout.ends_with("You are ivan, signed in with your password.\nпривет\n"),
        "{stdout}"
    );
}
