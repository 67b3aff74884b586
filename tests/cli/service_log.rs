//! The service log (lab task 5): a private file, connection lines, nothing secret.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{Server, echo, netlab};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn built_in_log_records_connections_privately_and_console_stays_quiet() {
    let server = Server::start(&["echo"]);
    let mut client = server.client();
    let client_addr = client.local_addr().unwrap();
    assert_eq!(echo(&mut client, "a private message"), "a private message");
    drop(client);

    let log = server.wait_for_log(&format!("{client_addr}: closed after"));
    let pid = server.child.id();
    let name = format!("[echo {}]", server.addr);
    assert!(
        log.contains(&format!(
            "INFO  {name} listening on {} (pid {pid})",
            server.addr
        )),
        "{log}"
    );
    // Every line names the server: several may share this file.
    assert!(log.lines().all(|line| line.contains(" [echo")), "{log}");
    assert!(log.contains(&format!("{client_addr}: connected")), "{log}");
    assert!(
        !log.contains("a private message"),
        "contents at info level:\n{log}"
    );

    let path = server.log_path();
    assert_eq!(mode(&path), 0o600, "log file mode");
    assert_eq!(mode(path.parent().unwrap()), 0o700, "log directory mode");
    assert_eq!(
        server.stderr(),
        format!("netlab: service log: {}\n", path.display()),
        "the console says where the log is, and nothing else"
    );

    server.terminate();
    let (status, rest_of_stdout, log) = server.wait();
    assert!(status.success());
    assert_eq!(rest_of_stdout, "", "stdout holds only the listening line");
    assert!(
        log.contains(&format!("INFO  {name} stopped (pid {pid})")),
        "{log}"
    );
}

/// The line that logs a connection's end says how much it carried: what shows, in the
/// log alone, that a client was served.
#[test]
fn each_closed_connection_is_logged_with_what_it_carried() {
    use std::io::{Read, Write};

    let server = Server::start(&["echo"]);
    let mut client = server.client(); // the greeting read: 1 out
    let polite = client.local_addr().unwrap();
    for message in ["one", "два", "three"] {
        assert_eq!(echo(&mut client, message), message);
    }
    drop(client);
    let mut rude = server.connect();
    let rude_addr = rude.local_addr().unwrap();
    rude.write_all(&u32::MAX.to_be_bytes()).unwrap(); // too long: refused with a notice
    let _ = rude.read_to_end(&mut Vec::new());
    let log = server.wait_for_log(&format!("{rude_addr}: closed after"));
    let end = |addr| {
        log.lines()
            .find(|line| line.contains(&format!("{addr}: closed after")))
            .unwrap()
            .to_owned()
    };
    assert!(end(polite).ends_with("; 3 messages in, 4 out"), "{log}");
    assert!(end(rude_addr).contains("; 0 messages in, 2 out: "), "{log}");

    let mut cmd = netlab();
    cmd.args(["serve", "echo", "--codec", "raw", "--port", "0"]);
    let raw = Server::start_command(cmd);
    let mut client = raw.connect();
    let addr = client.local_addr().unwrap();
    client.write_all("привет\n".as_bytes()).unwrap();
    let mut back = [0u8; 13];
    client.read_exact(&mut back).unwrap();
    drop(client);
    let log = raw.wait_for_log(&format!("{addr}: closed after"));
    assert!(log.contains("; 13 bytes in, 13 out"), "{log}");
}

#[test]
fn shipped_log4rs_yaml_writes_relative_to_the_working_directory() {
    let work = tempfile::tempdir().unwrap();
    let yaml = concat!(env!("CARGO_MANIFEST_DIR"), "/log4rs.yaml");
    let mut cmd = netlab();
    cmd.current_dir(work.path())
        .args(["serve", "echo", "--port", "0"])
        .env("NETLAB_LOG_CONFIG", yaml);
    let server = Server::start_command(cmd);
    drop(server.client());
    let file = work.path().join("logs/netlab.log");
    let start = std::time::Instant::now();
    while !fs::read_to_string(&file)
        .unwrap_or_default()
        .contains("closed after")
    {
        assert!(
            start.elapsed() < crate::support::PATIENCE,
            "no log in {file:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(mode(&file), 0o600);
    assert_eq!(server.log(), "", "the built-in log is not used alongside");
}

#[test]
fn client_text_is_escaped_in_the_debug_log() {
    let work = tempfile::tempdir().unwrap();
    let log_file = work.path().join("debug.log");
    let yaml = work.path().join("debug.yaml");
    fs::write(
        &yaml,
        format!(
            "appenders:\n  f:\n    kind: file\n    path: {}\n    encoder:\n      pattern: \"{{l}} {{m}}{{n}}\"\n\
             root:\n  level: debug\n  appenders: [f]\n",
            log_file.display()
        ),
    )
    .unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "echo", "--port", "0", "--log-config"])
        .arg(&yaml);
    let server = Server::start_command(cmd);
    let mut client = server.client();
    let forged = "hi\nINFO  127.0.0.9:1: connected\u{1b}[2J";
    assert_eq!(echo(&mut client, forged), forged);
    drop(client);
    server.terminate();
    let (status, _, _) = server.wait();
    assert!(status.success());

    let log = fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains(r#"received "hi\nINFO  127.0.0.9:1: connected\u{1b}[2J""#),
        "{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("INFO  127.0.0.9")),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "raw escape character in the log");
}

#[test]
fn a_missing_log_config_is_a_clear_error() {
    let out = netlab()
        .args([
            "serve",
            "echo",
            "--port",
            "0",
            "--log-config",
            "/no/such/log4rs.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("netlab: could not read the log configuration /no/such/log4rs.yaml"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn client_is_quiet_unless_rust_log_asks() {
    let server = Server::start(&["echo"]);
    let run = |rust_log: Option<&str>| {
        let mut cmd: Command = netlab();
        cmd.args(["connect", "--port", &server.port()]);
        if let Some(level) = rust_log {
            cmd.env("RUST_LOG", level);
        }
        crate::support::run_with_input(cmd, "x\n")
    };
    let quiet = run(None);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8(quiet.stderr).unwrap(), "");

    let chatty = run(Some("debug"));
    assert!(chatty.status.success());
    let stderr = String::from_utf8(chatty.stderr).unwrap();
    assert!(
        stderr.contains(&format!("connected to {}", server.addr)),
        "{stderr}"
    );
    assert!(stderr.contains("closed the connection"), "{stderr}");
}

/// A log file that others can read is refused at start-up, as a database would be.
#[test]
fn a_log_file_others_can_read_is_refused_at_start_up() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("netlab/netlab.log");
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    fs::write(&log, "an old line\n").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    let out = netlab()
        .args(["serve", "echo", "--port", "0"])
        .env("XDG_DATA_HOME", data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "it never listened");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "netlab: the log file {path} can be read or written by other users (mode 0644), \
             so netlab will not use it (fix with: chmod 600 {path})\n",
            path = log.display()
        )
    );
}

#[test]
fn servers_sharing_a_log_file_can_be_told_apart() {
    let data = tempfile::tempdir().unwrap();
    let start = |mode: &str| {
        let mut cmd = netlab();
        cmd.env("XDG_DATA_HOME", data.path())
            .args(["serve", mode, "--port", "0"]);
        if mode != "echo" {
            cmd.args(["--db", &data.path().join("db").to_string_lossy()]);
        }
        Server::start_command(cmd)
    };
    let echo_server = start("echo");
    let ident_server = start("ident");
    let from_echo = echo_server.client().local_addr().unwrap();
    let from_ident = ident_server.client().local_addr().unwrap();

    let file = data.path().join("netlab/netlab.log");
    let ends = [from_echo, from_ident].map(|c| format!("{c}: closed after"));
    let started = std::time::Instant::now();
    let log = loop {
        let log = fs::read_to_string(&file).unwrap_or_default();
        if ends.iter().all(|end| log.contains(end)) {
            break log;
        }
        assert!(
            started.elapsed() < crate::support::PATIENCE,
            "not both connections in the log:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let line_of = |client: std::net::SocketAddr| {
        log.lines()
            .find(|l| l.contains(&format!("{client}: connected")))
            .unwrap_or_else(|| panic!("no connection line for {client}:\n{log}"))
            .to_owned()
    };
    assert!(
        line_of(from_echo).contains(&format!("[echo {}]", echo_server.addr)),
        "{log}"
    );
    assert!(
        line_of(from_ident).contains(&format!("[ident {}]", ident_server.addr)),
        "{log}"
    );
}
