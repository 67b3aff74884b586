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
    assert!(stderr.contains("wrong or missing echo"), "{stderr}");
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
    assert_eq!(r["messages"], 0);
}
