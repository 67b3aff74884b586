//! The identification server (lab task 7): clients known by IP, greeted by name, stored
//! in SQLite. Clients bind to different loopback addresses to look like different
//! machines.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use netlab::store::Store;
use netlab::wire::frame::{RecvMsg, SendMsg};

use crate::support::{PATIENCE, Server, echo, netlab, run_with_input};

const ASK: &str = "Hello! I do not know you yet. What is your name?";

fn start(db: &Path, extra: &[&str]) -> Server {
    let mut cmd = netlab();
    cmd.args(["serve", "ident", "--port", "0", "--db"])
        .arg(db)
        .args(extra);
    Server::start_command(cmd)
}

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("netlab.db")
}

/// Connects from `source`, answers the name question with `name`, returns the reply.
fn register(server: &Server, source: &str, name: &str) -> String {
    let mut stream = server.connect_from(source);
    assert_eq!(stream.recv_msg().unwrap().as_deref(), Some(ASK));
    echo(&mut stream, name)
}

fn clients_json(db: &Path) -> serde_json::Value {
    let out = netlab()
        .args(["clients", "list", "--json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn first_visit_is_asked_then_greeted_by_name_and_other_ips_are_asked_anew() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &[]);

    let reply = register(&server, "127.0.0.2", "  Alice  ");
    assert!(
        reply.starts_with("Nice to meet you, Alice! I will know you by 127.0.0.2"),
        "{reply}"
    );

    let mut again = server.connect_from("127.0.0.2");
    let greeting = again.recv_msg().unwrap().unwrap();
    assert!(
        greeting.starts_with("Hello, Alice! This is visit number 2."),
        "{greeting}"
    );
    assert_eq!(echo(&mut again, "then echo"), "then echo");

    let mut other = server.connect_from("127.0.0.3");
    assert_eq!(other.recv_msg().unwrap().as_deref(), Some(ASK));
}

#[test]
fn names_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &[]);
    register(&server, "127.0.0.2", "Борис");
    server.terminate();
    assert!(server.wait().0.success());

    let server = start(&db_in(&dir), &[]);
    let greeting = server
        .connect_from("127.0.0.2")
        .recv_msg()
        .unwrap()
        .unwrap();
    assert!(greeting.starts_with("Hello, Борис!"), "{greeting}");
}

#[test]
fn bad_names_are_refused_with_the_reason_and_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &[]);

    let mut stream = server.connect_from("127.0.0.2");
    stream.recv_msg().unwrap();
    let reply = echo(&mut stream, "   ");
    assert_eq!(reply, "A name cannot be empty. What is your name?");
    let reply = echo(&mut stream, "Carol");
    assert!(reply.starts_with("Nice to meet you, Carol!"), "{reply}");

    // Three bad names in a row end the conversation.
    let mut stream = server.connect_from("127.0.0.3");
    stream.recv_msg().unwrap();
    let reply = echo(&mut stream, &"x".repeat(65));
    assert_eq!(
        reply,
        "A name is at most 64 characters, and this one has 65. What is your name?"
    );
    let reply = echo(&mut stream, "bell\u{7}");
    assert_eq!(
        reply,
        "A name cannot contain control, format or separator characters. What is your name?"
    );
    let reply = echo(&mut stream, "");
    assert_eq!(
        reply,
        "A name cannot be empty. Too many invalid names; goodbye."
    );
    assert_eq!(stream.recv_msg().unwrap(), None);
    assert_eq!(clients_json(&db_in(&dir)).as_array().unwrap().len(), 1);
}

#[test]
fn twenty_new_clients_at_once_from_twenty_addresses_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &[]);
    let barrier = Arc::new(Barrier::new(20));
    let addr = server.addr;
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let source = format!("127.0.1.{}", i + 1);
                let mut stream = crate::support::connect_from(addr, &source);
                assert_eq!(stream.recv_msg().unwrap().as_deref(), Some(ASK));
                barrier.wait();
                let reply = echo(&mut stream, &format!("client {i}"));
                assert!(reply.starts_with("Nice to meet you"), "{reply}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let list = clients_json(&db_in(&dir));
    let mut stored: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["ip"].as_str().unwrap().into(),
                c["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    stored.sort();
    let mut expected: Vec<(String, String)> = (0..20)
        .map(|i| (format!("127.0.1.{}", i + 1), format!("client {i}")))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    assert!(!server.log().contains("locked"), "{}", server.log());
}

#[test]
fn a_fresh_database_path_is_created_private_and_migrated() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new").join("dir").join("netlab.db");
    let server = start(&db, &[]);
    register(&server, "127.0.0.2", "Dana");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version >= 1);
}

#[test]
fn an_ipv4_client_of_a_dual_stack_listener_is_its_ipv4_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &["--host", "::"]);
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let mut stream = crate::support::connect_from(v4, "127.0.0.7");
    stream.recv_msg().unwrap();
    stream.send_msg("Eve").unwrap();
    let reply = stream.recv_msg().unwrap().unwrap();
    assert!(reply.contains("I will know you by 127.0.0.7 "), "{reply}");
    assert_eq!(clients_json(&db_in(&dir))[0]["ip"], "127.0.0.7");
}

#[test]
fn netlab_connect_binds_to_the_source_address_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &[]);
    let talk = |source: &str, input: &str| {
        let mut cmd = netlab();
        cmd.args(["connect", "--port", &server.port(), "--bind", source]);
        let out = run_with_input(cmd, input);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = talk("127.0.0.4", "Frank\nhi\n");
    assert!(
        first.starts_with(&format!("{ASK}\nNice to meet you, Frank!")),
        "{first}"
    );
    assert!(first.ends_with("\nhi\n"), "{first}");
    let second = talk("127.0.0.4", "");
    assert!(
        second.starts_with("Hello, Frank! This is visit number 2."),
        "{second}"
    );
    let other = talk("127.0.0.5", "");
    assert_eq!(other, format!("{ASK}\n"));
}

#[test]
fn admin_lists_and_forgets_clients() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let server = start(&db, &[]);
    register(&server, "127.0.0.2", "Grace");

    let out = netlab()
        .args(["clients", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("IP         NAME   FIRST SEEN"), "{table}");
    assert!(table.contains("127.0.0.2  Grace"), "{table}");

    let out = netlab()
        .args(["clients", "forget", "127.0.0.2", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "forgot 127.0.0.2 (Grace)\n"
    );
    let mut stream = server.connect_from("127.0.0.2");
    assert_eq!(stream.recv_msg().unwrap().as_deref(), Some(ASK));

    let out = netlab()
        .args(["clients", "forget", "127.0.0.2", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "netlab: no client is known at 127.0.0.2\n"
    );

    let missing = dir.path().join("typo.db");
    let out = netlab()
        .args(["clients", "list", "--db"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("no database at")
    );
    assert!(
        !missing.exists(),
        "a mistyped path must not create a database"
    );
}

#[test]
fn a_database_path_that_is_a_directory_or_a_device_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().display().to_string();
    for args in [
        &["clients", "list", "--db"][..],
        &["serve", "ident", "--port", "0", "--db"][..],
    ] {
        let mut cmd = netlab();
        cmd.args(args).arg(dir.path());
        let out = run_with_input(cmd, "");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            stderr.lines().last(),
            Some(
                format!(
                    "netlab: the database {path} is a directory; give the path of a file in \
                     it, such as {path}/netlab.db"
                )
                .as_str()
            ),
            "{args:?}: {stderr}"
        );
    }
    let out = netlab()
        .args(["users", "list", "--db", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "netlab: the database /dev/null is not a regular file\n"
    );
}

/// Registrations stream in while the server is killed with SIGKILL, again and again.
/// Every name the server acknowledged must be in the database afterwards, and the
/// database must pass SQLite's integrity check.
#[test]
fn kill_9_loses_no_acknowledged_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for cycle in 0..5u32 {
        let mut server = start(&db, &[]);
        let addr = server.addr;
        let registrations = thread::spawn(move || {
            let mut acked = Vec::new();
            // Until the server is gone; registrations are in flight when the kill lands.
            for i in 0..2000u32 {
                let source = format!("127.{}.{}.{}", 10 + cycle, i / 250, i % 250 + 1);
                let name = format!("c{cycle}-{i}");
                let Some(reply) = try_register(addr, &source, &name) else {
                    break;
                };
                if reply.starts_with("Nice to meet you") {
                    acked.push((source, name));
                }
            }
            acked
        });
        thread::sleep(Duration::from_millis(150 + 60 * u64::from(cycle)));
        server.kill_9();
        let acked = crate::support::with_deadline(PATIENCE, move || registrations.join().unwrap())
            .expect("registrations did not stop after the kill");
        acknowledged.extend(acked);
    }
    assert!(
        acknowledged.len() >= 10,
        "only {} registrations",
        acknowledged.len()
    );
    eprintln!(
        "{} registrations acknowledged across 5 kills",
        acknowledged.len()
    );

    let store = Store::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    for (ip, name) in &acknowledged {
        let client = store.find_client(ip.parse().unwrap()).unwrap();
        assert_eq!(
            client.map(|c| c.name).as_deref(),
            Some(name.as_str()),
            "{ip}"
        );
    }
}

/// One registration; `None` once the server is gone.
fn try_register(server: std::net::SocketAddr, source: &str, name: &str) -> Option<String> {
    let source: std::net::IpAddr = source.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket
        .bind(&std::net::SocketAddr::new(source, 0).into())
        .ok()?;
    socket
        .connect_timeout(&server.into(), Duration::from_secs(2))
        .ok()?;
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.recv_msg().ok()??;
    stream.send_msg(name).ok()?;
    stream.recv_msg().ok()?
}

/// Names that would rearrange what an admin's terminal shows are refused: a bidi
/// override, a line or paragraph separator, a zero-width no-break space.
#[test]
fn names_with_bidi_overrides_or_separators_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&db_in(&dir), &[]);
    for (i, spoof) in [
        "evil\u{202E}gnp.exe",
        "Bob\u{2028}INFO x",
        "\u{FEFF}Carol",
        "a\u{2029}b",
    ]
    .into_iter()
    .enumerate()
    {
        let reply = register(&server, &format!("127.0.0.{}", 10 + i), spoof);
        assert!(
            reply.starts_with("A name cannot contain control, format or separator characters"),
            "{spoof:?}: {reply}"
        );
    }
    assert_eq!(clients_json(&db_in(&dir)), serde_json::json!([]));
}

/// The database holds what clients are known as, and for auth, password and token hashes:
/// a copy others can read is refused at start-up, by the server and the admin commands.
#[test]
fn a_database_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let server = start(&db, &[]);
    register(&server, "127.0.0.2", "Dora");
    for companion in ["-wal", "-shm"] {
        let path = format!("{}{companion}", db.display());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
    server.terminate();
    assert!(server.wait().0.success());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut cmd = netlab();
    cmd.args(["serve", "ident", "--port", "0", "--db"]).arg(&db);
    let out = run_with_input(cmd, "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let error = stderr.lines().last().unwrap_or_default();
    assert!(error.starts_with("netlab: the database"), "{stderr}");
    assert!(
        error.contains("can be read or written by other users (mode 0644)")
            && stderr.contains(&format!("chmod 600 {}", db.display())),
        "{stderr}"
    );
    let out = netlab()
        .args(["clients", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
