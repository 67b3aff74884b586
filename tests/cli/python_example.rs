//! The Python example client (standard library only) talks to the Rust server: the
//! protocol document is enough to write a compatible client.

use crate::support::{Server, run_with_input};

#[test]
fn python_example_client_converses_with_the_server() {
    let server = Server::start(&["echo"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py");
    let mut cmd = crate::support::python3();
    cmd.args([script, "--host", "127.0.0.1", "--port", &server.port()]);
    let out = run_with_input(cmd, "hello\nпривет, мир\n👋\n");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].contains("echo server"), "{stdout}");
    assert_eq!(lines[1..], ["hello", "привет, мир", "👋"]);
}

/// Over TLS, the example client checks the certificate's fingerprint before it sends
/// anything; a server that leaves cleanly sees close_notify, not a cut connection.
#[test]
fn python_example_client_speaks_tls_and_checks_the_fingerprint() {
    let mut cmd = crate::support::netlab();
    cmd.args(["serve", "echo", "--tls", "--port", "0"]);
    let mut server = Server::start_command(cmd);
    let fingerprint = server.next_line().replace("tls certificate ", "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py");
    let python = |pin: &str| {
        let mut cmd = crate::support::python3();
        cmd.args([
            script,
            "--port",
            &server.port(),
            "--tls",
            "--fingerprint",
            pin,
        ]);
        run_with_input(cmd, "привет\n")
    };
    let out = python(&fingerprint);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .ends_with("\nпривет\n")
    );
    let log = server.wait_for_log("1 message in");
    assert!(!log.contains("WARN"), "{log}");

    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = python(&wrong);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!("client.py: the server's certificate is {fingerprint}, not {wrong}\n")
    );
}

/// On a terminal the example client reads passwords with getpass: what is typed at
/// `Password:` never reaches the screen.
#[test]
fn python_example_client_hides_passwords_on_a_terminal() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::netlab();
    cmd.args([
        "serve",
        "auth",
        "--port",
        "0",
        "--scrypt-log-n",
        "10",
        "--db",
    ])
    .arg(data.path().join("netlab.db"));
    let server = Server::start_command(cmd);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py");
    crate::support::python3(); // present, or a message that names it
    // The pseudo-terminal starts with echo off; a user's terminal has it on, so that
    // what is typed shows unless the program hides it.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        r#"stty echo && exec python3 "$0" --port "$1""#,
        script,
    ])
    .arg(server.port());
    let mut term = crate::support::in_terminal(cmd);
    let mut screen = String::new();
    screen += &term.exp_string("Username:").unwrap();
    term.send_line("kim").unwrap();
    screen += &term.exp_string("Password:").unwrap();
    term.send_line("typed-secret-1").unwrap();
    screen += &term.exp_string("Repeat the password:").unwrap();
    term.send_line("typed-secret-1").unwrap();
    screen += &term.exp_string("You are signed in").unwrap();
    term.send_line("/whoami").unwrap();
    screen += &term.exp_string("You are kim").unwrap();
    term.send_line("/quit").unwrap();
    screen += &term.exp_eof().unwrap();
    assert!(screen.contains("kim"), "what was typed is shown: {screen}");
    assert!(!screen.contains("typed-secret-1"), "{screen}");
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
    let mut cmd = crate::support::python3();
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

/// `netlab connect --codec raw` against a plain Python echo server: ten lines and a
/// 1 MB line come back as sent, and the end of input half-closes, which ends both.
#[test]
fn raw_connect_against_a_plain_python_echo_server() {
    use std::io::BufRead;
    let server = "import socket\n\
                  s = socket.create_server(('127.0.0.1', 0))\n\
                  print(s.getsockname()[1], flush=True)\n\
                  c, _ = s.accept()\n\
                  while data := c.recv(65536):\n    c.sendall(data)\n\
                  c.close()\n";
    let mut python = crate::support::python3()
        .args(["-c", server])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufReader::new(python.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let mut input: String = (0..10).map(|i| format!("line {i}\n")).collect();
    input.push_str(&"y".repeat(1_000_000));
    input.push('\n');
    let mut cmd = crate::support::netlab();
    cmd.args(["connect", "--codec", "raw", "--port", port.trim()]);
    let out = run_with_input(cmd, &input);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == input.as_bytes(),
        "the same bytes came back ({} of {})",
        out.stdout.len(),
        input.len()
    );
    let status = crate::support::wait_with_deadline(&mut python, crate::support::PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "the server saw the half-close"
    );
}

#[test]
fn a_missing_python_is_named_with_what_to_do() {
    let message = crate::support::required("netlab-no-such-python").unwrap_err();
    assert!(
        message.starts_with("this test needs netlab-no-such-python")
            && message.contains("apt-get install python3")
            && message.contains("--skip python"),
        "{message}"
    );
    assert_eq!(crate::support::required("python3"), Ok(()));
}
