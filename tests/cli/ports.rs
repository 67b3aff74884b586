//! A busy port (lab task 6): move on to the next one; any other bind error is final.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::{Server, netlab, run_with_input};

#[test]
fn a_taken_port_makes_the_server_move_on_and_say_where() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let mut cmd = netlab();
    cmd.args(["serve", "echo", "--port", &taken.to_string()]);
    let server = Server::start_command(cmd);
    let got = server.addr.port();
    assert!(
        got > taken && got <= taken.saturating_add(50),
        "{taken} -> {got}"
    );
    // Whoever started it is told, not just the log.
    let stderr = server.stderr();
    assert!(
        stderr.contains(&format!(
            "netlab: port {taken} is in use; listening on {got} instead\n"
        )),
        "{stderr}"
    );
    drop(server.client());
    let log = server.wait_for_log(&format!("port {taken} is in use; trying {}", taken + 1));
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{got}")),
        "{log}"
    );
}

#[test]
fn a_free_port_is_not_announced_as_a_move() {
    let server = Server::start(&["echo"]);
    assert!(!server.stderr().contains("in use"), "{}", server.stderr());
}

#[test]
fn with_no_retries_a_taken_port_is_an_error() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().port();
    let mut cmd = netlab();
    cmd.env("XDG_DATA_HOME", tempfile::tempdir().unwrap().path())
        .args([
            "serve",
            "echo",
            "--port-retries",
            "0",
            "--port",
            &taken.to_string(),
        ]);
    let out = run_with_input(cmd, "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().last(),
        Some(
            format!(
                "netlab: could not listen on 127.0.0.1:{taken}: Address already in use (os error 98)"
            )
            .as_str()
        ),
        "{stderr}"
    );
}

#[test]
fn an_address_not_on_this_machine_fails_at_once() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    // 192.0.2.1 is reserved for documentation: binding to it fails without any traffic.
    cmd.env("XDG_DATA_HOME", data.path()).args([
        "serve",
        "echo",
        "--host",
        "192.0.2.1",
        "--port",
        "9090",
    ]);
    let started = Instant::now();
    let out = run_with_input(cmd, "");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let (log_line, error) = stderr.split_once('\n').unwrap();
    assert!(log_line.starts_with("netlab: service log: "), "{stderr}");
    assert!(
        error.starts_with(
            "netlab: could not listen on 192.0.2.1:9090: Cannot assign requested address"
        ),
        "{stderr}"
    );
    // The fatal error is in the log too.
    let log = std::fs::read_to_string(data.path().join("netlab/netlab.log")).unwrap();
    assert!(
        log.contains("ERROR [echo] could not listen on 192.0.2.1:9090"),
        "{log}"
    );
}
