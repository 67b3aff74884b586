//! The framed echo server (lab task 3): many clients, reconnects, misbehaving peers.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use netlab::wire::frame::{RecvMsg, SendMsg};

use crate::support::{PATIENCE, Server, echo, read_to_close, reset};

#[test]
fn fifty_concurrent_clients_exchange_a_hundred_messages_each() {
    let server = Server::start(&["echo"]);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let clients: Vec<_> = (0..50)
        .map(|c| {
            let mut stream = server.client();
            let barrier = barrier.clone();
            thread::spawn(move || {
                // All 50 are connected before any starts talking.
                barrier.wait();
                for m in 0..100 {
                    let msg = format!("клиент {c}, сообщение {m} 🦀");
                    assert_eq!(echo(&mut stream, &msg), msg);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
}

#[test]
fn server_keeps_listening_across_twenty_reconnects() {
    let server = Server::start(&["echo"]);
    for i in 0..20 {
        let mut stream = server.client();
        let msg = format!("visit {i}");
        assert_eq!(echo(&mut stream, &msg), msg);
        // Alternate between a polite close and simply going away.
        if i % 2 == 0 {
            stream.shutdown(std::net::Shutdown::Both).unwrap();
        }
    }
    let log = server.wait_for_log("closed after");
    assert!(log.matches(": connected").count() >= 20, "{log}");
}

/// A good client is connected throughout; after each kind of bad client it still echoes.
#[test]
fn misbehaving_clients_lose_only_their_own_connection() {
    let server = Server::start(&["echo"]);
    let mut good = server.client();
    let mut check_good = |round: &str| assert_eq!(echo(&mut good, round), round);

    // Declares 1 GiB: told why, then closed.
    let mut bad = server.client();
    bad.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    let notice = bad.recv_msg().unwrap().unwrap();
    assert!(
        notice.contains("over the maximum of 65536 bytes"),
        "{notice}"
    );
    assert_eq!(bad.recv_msg().unwrap(), None);
    check_good("after an oversized header");

    // Invalid UTF-8: told why, then closed.
    let mut bad = server.client();
    bad.write_all(&[0, 0, 0, 2, 0xC3, 0x28]).unwrap();
    let notice = bad.recv_msg().unwrap().unwrap();
    assert!(notice.contains("not valid UTF-8"), "{notice}");
    assert_eq!(bad.recv_msg().unwrap(), None);
    check_good("after invalid UTF-8");

    // Closes in the middle of a frame.
    let mut bad = server.client();
    bad.write_all(&[0, 0, 0, 10, b'h', b'a']).unwrap();
    drop(bad);
    server.wait_for_log("closed in the middle of a message (6 of 14 bytes received)");
    check_good("after a cut frame");

    // Resets the connection mid-conversation.
    let mut bad = server.client();
    assert_eq!(echo(&mut bad, "bye"), "bye");
    bad.write_all(&[0, 0]).unwrap();
    reset(bad);
    check_good("after a reset");

    // Garbage that is not framed at all.
    let mut bad = server.client();
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let notice = bad.recv_msg().unwrap().unwrap();
    assert!(notice.starts_with("error: message of"), "{notice}");
    check_good("after an HTTP request");

    // Each is logged once its connection has finished closing.
    server.wait_for_log("over the maximum of 65536 bytes");
    server.wait_for_log("not valid UTF-8");
}

#[test]
fn trickling_client_is_closed_by_the_frame_deadline() {
    let server = Server::start(&["echo", "--frame-timeout", "1s"]);
    let mut trickler = server.client();
    let mut writer = trickler.try_clone().unwrap();
    let started = Instant::now();
    // A 100-byte frame, one byte every 200 ms: every read succeeds, the frame never ends
    // in time. The writer stops at the first failed write, or after 100 bytes.
    thread::spawn(move || {
        let frame = [&[0u8, 0, 0, 96][..], &[b'x'; 96]].concat();
        for byte in frame {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let notice = trickler.recv_msg().unwrap().expect("a notice");
    assert!(
        notice.contains("message not finished within 1s"),
        "{notice}"
    );
    assert!(read_to_close(&mut trickler).is_empty());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
    server.wait_for_log("message not finished within 1s");
}

#[test]
fn idle_client_is_told_and_closed() {
    let server = Server::start(&["echo", "--idle-timeout", "300ms"]);
    let mut idle = server.client();
    let notice = idle.recv_msg().unwrap().expect("a notice");
    assert_eq!(
        notice,
        "error: no message for 300ms; closing the connection"
    );
    assert_eq!(idle.recv_msg().unwrap(), None);
}

#[test]
fn full_server_stops_accepting_until_a_client_leaves() {
    let server = Server::start(&["echo", "--max-connections", "2"]);
    let first = server.client();
    let _second = server.client();
    // The kernel completes the handshake, but netlab does not accept: no greeting yet.
    let mut third = server.connect();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let err = third.recv_msg().unwrap_err();
    assert!(
        matches!(&err, netlab::wire::frame::FrameError::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "{err:?}"
    );
    drop(first);
    third.set_read_timeout(Some(PATIENCE)).unwrap();
    let greeting = third
        .recv_msg()
        .unwrap()
        .expect("a greeting once a slot is free");
    assert!(greeting.contains("echo"), "{greeting}");
}

#[test]
fn smaller_max_frame_is_enforced_both_ways() {
    let server = Server::start(&["echo", "--max-frame", "300"]);
    let mut client = server.client();
    let at_limit = "ы".repeat(150);
    assert_eq!(echo(&mut client, &at_limit), at_limit);
    client.send_msg(&"ы".repeat(151)).unwrap();
    let notice = client.recv_msg().unwrap().unwrap();
    assert!(
        notice.contains("message of 302 bytes is over the maximum of 300 bytes"),
        "{notice}"
    );
}

/// Out of file descriptors, accept fails; the server logs it, pauses, and carries on,
/// neither spinning nor exiting, and serves again once descriptors are free.
#[test]
fn running_out_of_file_descriptors_neither_spins_nor_stops_the_server() {
    use std::os::unix::process::CommandExt;
    let mut cmd = crate::support::netlab();
    cmd.args(["serve", "echo", "--port", "0"]);
    // SAFETY: setrlimit is async-signal-safe, as code between fork and exec must be.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut server = Server::start_command(cmd);
    // Far more clients than descriptors: the kernel queues them, accept runs dry.
    let crowd: Vec<_> = (0..60).map(|_| server.connect()).collect();
    server.wait_for_log("accept failed");

    let pid = server.child.id();
    let cpu_ticks = || netlab::tools::bench::cpu_ticks(pid).expect("the server's /proc/PID/stat");
    let before = cpu_ticks();
    thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks() - before;
    // A busy loop would spend about 200 ticks (2 s) here; backing off spends almost none.
    assert!(
        spent < 50,
        "{spent} ticks of CPU in 2 s while out of descriptors"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );

    drop(crowd);
    let start = Instant::now();
    let greeting = loop {
        let mut stream = server.connect();
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        if let Ok(Some(greeting)) = stream.recv_msg() {
            break greeting;
        }
        assert!(start.elapsed() < PATIENCE, "never served again");
    };
    assert!(greeting.contains("echo server"), "{greeting}");
    server.kill_9();
}
