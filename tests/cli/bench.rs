//! `netlab bench` against netlab's own echo server, and against servers that echo
//! wrongly, which it must catch.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use crate::support::{Server, netlab, run_with_input};

fn bench(port: u16, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut cmd = netlab();
    cmd.args([
        "bench",
        "--port",
        &port.to_string(),
        "--json",
        "--warmup",
        "200ms",
    ])
    .args(["--duration", "1s"])
    .args(extra);
    let out = run_with_input(cmd, "");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    (
        out.status.code(),
        report,
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn framed_load_is_counted_and_error_free() {
    let server = Server::start(&["echo"]);
    let pid = server.child.id().to_string();
    let (code, r, _) = bench(
        server.addr.port(),
        &[
            "--conns",
            "4",
            "--size",
            "100",
            "--pipeline",
            "4",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(
        (r["errors"].as_u64(), r["connect_failures"].as_u64()),
        (Some(0), Some(0))
    );
    let messages = r["messages"].as_f64().unwrap();
    assert!(messages > 100.0, "{r}");
    // The rates follow from the counts over one second.
    assert!(
        (r["messages_per_sec"].as_f64().unwrap() - messages).abs() < 1.0,
        "{r}"
    );
    let mib = messages * 100.0 / 1048576.0;
    assert!(
        (r["mib_per_sec"].as_f64().unwrap() - mib).abs() < 1e-6,
        "{r}"
    );
    let (p50, p99, max) = (
        r["p50_us"].as_f64().unwrap(),
        r["p99_us"].as_f64().unwrap(),
        r["max_us"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{r}");
    assert!(r["server_cpu_us_per_msg"].as_f64().unwrap() > 0.0, "{r}");
    // The server saw the four connections come and go.
    server.wait_for_log("closed after");
}

#[test]
fn raw_load_against_the_raw_echo_server() {
    let server = Server::start(&["echo", "--codec", "raw"]);
    let (code, r, _) = bench(
        server.addr.port(),
        &["--codec", "raw", "--conns", "2", "--size", "4096"],
    );
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["errors"], 0);
    assert!(r["messages"].as_u64().unwrap() > 50, "{r}");
}

#[test]
fn idle_connections_are_held_and_still_echo() {
    let server = Server::start(&["echo"]);
    let (code, r, _) = bench(server.addr.port(), &["--hold", "200"]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(
        (r["held"].as_u64(), r["still_echoing"].as_u64()),
        (Some(200), Some(200))
    );
}

/// A raw echo server that changes one byte in every 50th chunk it returns.
fn corrupting_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                for chunk in 1u64.. {
                    let Ok(n) = stream.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    if chunk % 50 == 0 {
                        buf[n - 1] ^= 0x20;
                    }
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_wrong_echo_is_an_error_and_fails_the_run() {
    let port = corrupting_server();
    let (code, r, stderr) = bench(port, &["--codec", "raw", "--conns", "2", "--size", "64"]);
    assert_eq!(code, Some(1), "{r}");
    assert!(r["errors"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["wrong_echoes"].as_u64().unwrap() >= 1, "{r}");
    assert!(stderr.contains("wrong echo(es)"), "{stderr}");
}

#[test]
fn a_server_that_never_answers_is_an_error() {
    // Accepts, reads, and says nothing: every echo is missing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(1) {
            held.push(stream);
            thread::sleep(std::time::Duration::from_secs(15));
        }
    });
    let (code, r, _) = bench(port, &["--codec", "raw", "--conns", "1"]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["errors"], 1);
    assert_eq!(r["missing_echoes"], 1);
    assert_eq!(r["messages"], 0);
}

/// A raw echo server that serves one client at a time, as many student servers do: the
/// others wait in the backlog until the one before them leaves.
fn one_at_a_time_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    port
}

#[test]
fn a_server_that_serves_one_client_at_a_time_fails_a_short_run() {
    let port = one_at_a_time_server();
    let mut cmd = netlab();
    cmd.args(["bench", "--port", &port.to_string(), "--json"])
        .args(["--codec", "raw", "--conns", "3"])
        .args(["--duration", "2s", "--warmup", "0s"]);
    let out = run_with_input(cmd, "");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // The first connection is served; the other two have their echoes only once it
    // leaves at the end of the run: nothing while measuring.
    assert!(r["messages"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["silent_connections"], 2, "{r}");
    assert_eq!(r["errors"], 2, "{r}");
    assert!(
        stderr.contains("2 connection(s) with no echo while measuring"),
        "{stderr}"
    );
}

#[test]
fn connected_but_never_greeted_is_said_so() {
    // Accepts and holds connections without a word: a raw server, to a framed bench.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(2).collect();
        thread::sleep(std::time::Duration::from_secs(15));
        drop(held);
    });
    let mut cmd = netlab();
    cmd.args(["bench", "--port", &port.to_string(), "--conns", "2"]);
    let out = run_with_input(cmd, "");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("but no greeting came within 5s") && stderr.contains("--no-greeting"),
        "{stderr}"
    );
    assert!(!stderr.contains("no connection"), "{stderr}");
}

#[test]
fn an_echo_later_than_the_end_of_the_run_is_missing() {
    // Echoes everything, each chunk 2.5 s late: within the 5 s an echo may take, but
    // well after the end of a 1 s run.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let Some(Ok(mut stream)) = listener.incoming().next() else {
            return;
        };
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            thread::sleep(std::time::Duration::from_millis(2500));
            if n == 0 || stream.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let (code, r, stderr) = bench(port, &["--codec", "raw", "--conns", "1"]);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["missing_echoes"], 1, "{r}");
    assert_eq!(r["messages"], 0, "{r}");
    assert!(stderr.contains("1 missing or late echo(es)"), "{stderr}");
}

#[test]
fn tls_load_and_connection_cycles_are_measured_without_errors() {
    let server = Server::start(&["echo", "--tls"]);
    let (code, report, stderr) = bench(server.addr.port(), &["--tls", "--conns", "4"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["messages"].as_u64().unwrap() > 0, "{report}");

    for extra in [&["--tls"][..], &["--tls", "--tls-fresh"][..]] {
        let args: Vec<&str> = [&["--reconnect", "--conns", "2"][..], extra].concat();
        let (code, report, stderr) = bench(server.addr.port(), &args);
        assert_eq!(code, Some(0), "{extra:?}: {stderr}");
        assert_eq!(report["mode"], "reconnect");
        assert_eq!(report["errors"], 0, "{report}");
        assert!(report["messages"].as_u64().unwrap() > 0, "{report}");
    }
    // Every cycle ended in order: no connection was cut without TLS's close_notify.
    let log = server.wait_for_log("closed after");
    assert!(!log.contains("close_notify"), "{log}");

    // Plain cycles against a TLS port fail, and say so.
    let (code, report, _) = bench(server.addr.port(), &["--reconnect", "--conns", "1"]);
    assert_eq!(code, Some(1));
    assert!(report["errors"].as_u64().unwrap() > 0, "{report}");
}
