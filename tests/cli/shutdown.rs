//! Graceful shutdown: stop accepting, tell connected clients, exit 0.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use netlab::wire::frame::RecvMsg;

use crate::support::{PATIENCE, Server, netlab, wait_with_deadline, with_deadline};

/// The server's shutdown is a normal end for the server (exit 0), not for a client in
/// the middle of its conversation: that one is told, and exits 1 saying why.
#[test]
fn sigterm_tells_connected_clients_and_exits_zero() {
    let server = Server::start(&["echo"]);
    let mut raw_client = server.client();

    // The netlab client, waiting on a stdin that never ends.
    let mut client = netlab()
        .args(["connect", "--port", &server.port()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let greeting = lines.next().unwrap().unwrap();
    assert!(greeting.contains("echo server"), "{greeting}");

    server.terminate();

    let notice = raw_client.recv_msg().unwrap();
    assert_eq!(notice.as_deref(), Some("server is shutting down, goodbye"));
    assert_eq!(raw_client.recv_msg().unwrap(), None);

    let shown = with_deadline(PATIENCE, move || lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(shown, "server is shutting down, goodbye");
    let status = wait_with_deadline(&mut client, PATIENCE).expect("client did not exit");
    assert_eq!(status.code(), Some(1), "client: {status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        stderr,
        format!(
            "netlab: {} ended the conversation (its last message: \
             \"server is shutting down, goodbye\"); the rest of the input was not sent\n",
            server.addr
        )
    );

    let (status, rest_of_stdout, log) = server.wait();
    assert!(status.success(), "server: {status}");
    assert_eq!(rest_of_stdout, "", "stdout holds only the listening line");
    assert!(log.contains("shutting down: 2 connection(s) open"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn shutdown_with_no_client_is_prompt() {
    let server = Server::start(&["echo"]);
    server.terminate();
    let started = std::time::Instant::now();
    let (status, _, _) = server.wait();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// SIGINT sent the moment `listening on` appears still gets a graceful shutdown: the
/// handler must be in place before the line is printed. The signal goes from the thread
/// that reads the line, with nothing in between, to hit the gap if there is one.
#[test]
fn sigint_right_after_the_listening_line_is_graceful() {
    use std::io::Read;
    for round in 0..20 {
        let data = tempfile::tempdir().unwrap();
        let mut child = netlab()
            .args(["serve", "echo", "--port", "0"])
            .env("XDG_DATA_HOME", data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {}
        // SAFETY: kill only sends a signal to the child, which has not been reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let status = wait_with_deadline(&mut child, PATIENCE).expect("server did not exit");
        assert!(status.success(), "round {round}: {status}");
    }
}
