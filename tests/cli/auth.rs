//! The authentication server (lab task 8): registration, login, lock-out, session
//! tokens, and secrets that never leak. Costs are lowered (scrypt N = 2^10) for speed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use netlab::wire::frame::{RecvMsg, SendMsg};

use crate::support::{Server, echo, netlab, run_with_input};

const GREETING_END: &str = "Username:";

struct Lab {
    dir: tempfile::TempDir,
    server: Server,
}

impl Lab {
    fn start(extra: &[&str]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let server = Lab::serve(dir.path(), extra);
        Lab { dir, server }
    }

    fn serve(dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = netlab();
        cmd.args([
            "serve",
            "auth",
            "--port",
            "0",
            "--scrypt-log-n",
            "10",
            "--db",
        ])
        .arg(dir.join("netlab.db"))
        .args(extra);
        Server::start_command(cmd)
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("netlab.db")
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("state").join("netlab").join("tokens")
    }

    /// `netlab connect` with this lab's token file and `input` on stdin.
    fn connect(&self, input: &str) -> Output {
        let mut cmd = netlab();
        cmd.args(["connect", "--port", &self.server.port()])
            .env("XDG_STATE_HOME", self.dir.path().join("state"));
        run_with_input(cmd, input)
    }

    /// Registers `name` with the password "password-1" through `netlab connect`, which
    /// keeps the session token it is given.
    fn register(&self, name: &str) {
        let out = stdout(&self.connect(&format!("{name}\npassword-1\npassword-1\n")));
        assert!(out.contains("thank you for registering"), "{out}");
    }

    fn sql(&self, statement: &str) {
        rusqlite::Connection::open(self.db())
            .unwrap()
            .execute_batch(statement)
            .unwrap();
    }

    fn admin(&self, args: &[&str]) -> String {
        let out = netlab()
            .args(args)
            .arg("--db")
            .arg(self.db())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A raw framed client that reads the greeting.
fn raw_client(server: &Server) -> std::net::TcpStream {
    let mut stream = server.connect();
    let greeting = stream.recv_msg().unwrap().unwrap();
    assert!(greeting.ends_with(GREETING_END), "{greeting}");
    stream
}

#[test]
fn the_python_example_client_registers_and_logs_in_with_a_password() {
    let lab = Lab::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py");
    let python = |input: &str| {
        let mut cmd = crate::support::python3();
        cmd.args([script, "--port", &lab.server.port()]);
        stdout(&run_with_input(cmd, input))
    };
    let first = python("zoe\npassword-1\npassword-1\nhello\n");
    assert!(first.contains("New user zoe. Choose a password"), "{first}");
    assert!(
        first.contains("Welcome, and thank you for registering, zoe!"),
        "{first}"
    );
    assert!(first.ends_with("\nhello\n"), "{first}");
    assert!(
        !first.contains("password-1"),
        "the password is never echoed:\n{first}"
    );

    let second = python("zoe\npassword-1\n/whoami\n");
    assert!(second.contains("Welcome, zoe!"), "{second}");
    assert!(
        second.ends_with("You are zoe, signed in with your password.\n"),
        "{second}"
    );
    assert!(
        !second.contains("token: "),
        "no token for a client that did not ask"
    );
}

#[test]
fn mismatched_and_short_passwords_are_asked_again() {
    let lab = Lab::start(&[]);
    let mut c = raw_client(&lab.server);
    assert!(echo(&mut c, "yan").starts_with("New user yan."));
    assert_eq!(
        echo(&mut c, "short"),
        "A password is 8 to 1024 bytes. Choose a password:"
    );
    assert_eq!(echo(&mut c, "password-1"), "Repeat the password:");
    assert_eq!(
        echo(&mut c, "password-2"),
        "The passwords do not match. Choose a password:"
    );
    assert_eq!(echo(&mut c, "password-1"), "Repeat the password:");
    assert!(echo(&mut c, "password-1").starts_with("Welcome, and thank you"));
}

#[test]
fn three_wrong_passwords_close_the_connection() {
    let lab = Lab::start(&[]);
    lab.register("xena");
    let mut c = raw_client(&lab.server);
    assert_eq!(echo(&mut c, "xena"), "Password:");
    assert_eq!(echo(&mut c, "nope-nope-1"), "Wrong password. Password:");
    assert_eq!(echo(&mut c, "nope-nope-2"), "Wrong password. Password:");
    assert_eq!(
        echo(&mut c, "nope-nope-3"),
        "Wrong password. Too many failed attempts; goodbye."
    );
    assert_eq!(c.recv_msg().unwrap(), None);
}

#[test]
fn after_five_failures_even_the_right_password_must_wait() {
    let lab = Lab::start(&[]);
    lab.register("walt");
    for attempt in 0..5 {
        let mut c = raw_client(&lab.server);
        echo(&mut c, "walt");
        assert!(echo(&mut c, &format!("wrong-{attempt}-xx")).starts_with("Wrong password"));
    }
    // This address waits a second now: the right password gets the same reply as a
    // wrong one. The account counts the failures, but one address alone cannot lock it.
    let mut c = raw_client(&lab.server);
    echo(&mut c, "walt");
    assert_eq!(echo(&mut c, "password-1"), "Wrong password. Password:");
    let json: serde_json::Value =
        serde_json::from_str(&lab.admin(&["users", "list", "--json"])).unwrap();
    assert_eq!(
        (
            json[0]["failures"].as_i64(),
            json[0]["locked_until"].as_i64()
        ),
        (Some(5), Some(0))
    );
    // Once the lock has passed, it works, and the count starts again.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(echo(&mut c, "password-1").starts_with("Welcome, walt!"));
    let json: serde_json::Value =
        serde_json::from_str(&lab.admin(&["users", "list", "--json"])).unwrap();
    assert_eq!(json[0]["failures"], 0);
}

#[test]
fn the_netlab_client_keeps_a_token_and_signs_in_with_it() {
    let lab = Lab::start(&[]);
    let first = stdout(&lab.connect("vera\npassword-1\npassword-1\n/whoami\n"));
    assert!(first.contains("signed in with your password"), "{first}");
    assert!(
        !first.contains("token: "),
        "the token is never shown:\n{first}"
    );

    let second = stdout(&lab.connect("/whoami\n"));
    assert_eq!(second.matches(GREETING_END).count(), 1, "{second}");
    assert!(second.contains("Welcome back, vera!"), "{second}");
    assert!(
        second.ends_with("You are vera, signed in with a session token.\n"),
        "{second}"
    );

    let file = lab.token_file();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let sessions = lab.admin(&["sessions", "list"]);
    assert!(sessions.contains("vera"), "{sessions}");
}

#[test]
fn an_expired_token_falls_back_to_the_password_quietly() {
    let lab = Lab::start(&[]);
    lab.register("uma");
    // Age the session past its idle limit, as seven idle days would.
    lab.sql("UPDATE sessions SET last_used = last_used - 8 * 86400");
    let out = lab.connect("uma\npassword-1\n/whoami\n");
    let text = stdout(&out);
    assert_eq!(
        text.matches(GREETING_END).count(),
        1,
        "asked once, quietly:\n{text}"
    );
    assert!(
        text.ends_with("You are uma, signed in with your password.\n"),
        "{text}"
    );
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
    // The new login brought a new token, which works.
    assert!(stdout(&lab.connect("/whoami\n")).contains("signed in with a session token"));
}

#[test]
fn logout_revokes_the_token_on_both_sides() {
    let lab = Lab::start(&[]);
    lab.register("tess");
    let token_line = fs::read_to_string(lab.token_file()).unwrap();
    let token = token_line.split_whitespace().nth(1).unwrap().to_owned();

    let bye = stdout(&lab.connect("/logout\n"));
    assert!(bye.contains("Goodbye, tess. You are signed out"), "{bye}");
    assert_eq!(
        fs::read_to_string(lab.token_file()).unwrap(),
        "",
        "client side"
    );
    assert_eq!(
        lab.admin(&["sessions", "list"]),
        "no open sessions\n",
        "server side"
    );

    // The old token, presented by hand, opens nothing.
    let mut c = raw_client(&lab.server);
    assert_eq!(echo(&mut c, &format!("/token {token}")), "Username:");
}

#[test]
fn a_token_file_others_can_read_is_refused() {
    let lab = Lab::start(&[]);
    lab.register("sam");
    fs::set_permissions(lab.token_file(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = lab.connect("sam\npassword-1\n/whoami\n");
    let text = stdout(&out);
    assert!(text.ends_with("signed in with your password.\n"), "{text}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("can be read or written by other users"),
        "{stderr}"
    );
}

#[test]
fn lines_of_the_token_file_that_are_not_tokens_are_reported_once_and_kept() {
    let lab = Lab::start(&[]);
    lab.register("tess");
    let file = lab.token_file();
    let good = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        format!("{good}half a line\n127.0.0.1:1 not-a-token\n"),
    )
    .unwrap();
    // The token still signs tess in, and the lines that are not tokens are named.
    let out = lab.connect("/whoami\n/logout\n");
    let text = stdout(&out);
    assert!(text.contains("signed in with a session token"), "{text}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.matches("warning").count(),
        1,
        "once, though the file was read twice (sign-in, logout):\n{stderr}"
    );
    assert!(
        stderr.contains("tokens: lines 2, 3 are not `ADDRESS TOKEN`"),
        "{stderr}"
    );
    // The logout removed the token, and nothing else.
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "half a line\n127.0.0.1:1 not-a-token\n"
    );
}

#[test]
fn admin_revokes_sessions_and_deletes_users() {
    let lab = Lab::start(&[]);
    lab.register("rita");
    assert_eq!(
        lab.admin(&["sessions", "revoke", "rita"]),
        "ended 1 session(s) of rita\n"
    );
    let again = stdout(&lab.connect("rita\npassword-1\n/whoami\n"));
    assert!(again.contains("signed in with your password"), "{again}");
    assert_eq!(
        lab.admin(&["users", "delete", "rita"]),
        "deleted rita and ended its sessions\n"
    );
    assert_eq!(lab.admin(&["users", "list"]), "no users yet\n");
    let fresh = stdout(&lab.connect("rita\n"));
    assert!(fresh.contains("New user rita."), "{fresh}");
}

#[test]
fn a_stored_hash_with_tampered_parameters_is_refused_unchecked() {
    let lab = Lab::start(&[]);
    lab.register("quinn");
    // N = 2^27 would need 128 GiB.
    lab.sql("UPDATE users SET password_hash = replace(password_hash, 'ln=10', 'ln=27')");
    let mut c = raw_client(&lab.server);
    echo(&mut c, "quinn");
    let started = Instant::now();
    assert_eq!(echo(&mut c, "password-1"), "Wrong password. Password:");
    assert!(started.elapsed() < Duration::from_secs(2));
    lab.server
        .wait_for_log("stored password hash of \"quinn\" refused unchecked: ln=27");
}

#[test]
fn a_connection_that_does_not_sign_in_in_time_is_closed() {
    let lab = Lab::start(&["--login-timeout", "500ms"]);
    let mut c = raw_client(&lab.server);
    assert_eq!(
        echo(&mut c, "pat"),
        "New user pat. Choose a password (8 to 1024 bytes). Password:"
    );
    let notice = c.recv_msg().unwrap().unwrap();
    assert_eq!(notice, netlab::handler::auth::LOGIN_TIMEOUT);
    assert_eq!(c.recv_msg().unwrap(), None);
}

/// Passwords and tokens appear nowhere on the server's side: not in the database files
/// (WAL included), not in a log at debug level, not on the client's screen.
#[test]
fn no_password_or_token_in_the_database_the_logs_or_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.log");
    let yaml = dir.path().join("log.yaml");
    fs::write(
        &yaml,
        format!(
            "appenders:\n  f:\n    kind: file\n    path: {}\nroot:\n  level: debug\n  appenders: [f]\n",
            log.display()
        ),
    )
    .unwrap();
    let yaml = yaml.to_str().unwrap().to_owned();
    let lab = Lab {
        server: Lab::serve(dir.path(), &["--log-config", &yaml]),
        dir,
    };
    let password = "correct-horse-battery-staple";
    let mut shown = stdout(&lab.connect(&format!("olga\n{password}\n{password}\nhi\n")));
    shown += &stdout(&lab.connect("/whoami\n")); // a token login
    shown += &stdout(&lab.connect("/logout\n"));
    shown += &stdout(&lab.connect(&format!("olga\nwrong-password\n{password}\n")));
    let token_line = fs::read_to_string(lab.token_file()).unwrap();
    let token = token_line.split_whitespace().nth(1).unwrap().to_owned();
    // A signed-in client that sends its token by hand, and one that types a password
    // at the username prompt: neither reaches the debug log.
    let mut c = raw_client(&lab.server);
    echo(&mut c, "olga");
    assert!(echo(&mut c, password).starts_with("Welcome, olga!"));
    assert!(echo(&mut c, &format!("/token {token}")).starts_with("Unknown command"));
    assert!(echo(&mut c, &format!(" /token {token}")).starts_with("Unknown command"));
    let mut c = raw_client(&lab.server);
    let typed_too_soon = "Tr0ub4dor&3 secret";
    assert!(echo(&mut c, typed_too_soon).starts_with("A username is"));
    // While the server runs (its WAL holds the latest writes), and again after it has
    // exited and SQLite has checkpointed and removed the WAL.
    let secrets = [password, "wrong-password", token.as_str(), typed_too_soon];
    assert_nothing_secret(lab.dir.path(), &log, &secrets, true);
    let Lab { dir, server } = lab;
    server.terminate();
    assert!(server.wait().0.success());
    assert_nothing_secret(dir.path(), &log, &secrets, false);

    for secret in [password, "wrong-password", token.as_str()] {
        assert!(!shown.contains(secret), "{secret:?} shown to the user");
    }
}

/// Scans the log and every database file for the secrets.
fn assert_nothing_secret(dir: &Path, log: &Path, secrets: &[&str], expect_wal: bool) {
    let mut places = vec![log.to_path_buf()];
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("netlab.db")
        {
            places.push(path);
        }
    }
    if expect_wal {
        assert!(
            places.iter().any(|p| p.to_string_lossy().ends_with("-wal")),
            "{places:?}"
        );
    }
    let log_text = fs::read_to_string(log).unwrap();
    assert!(
        log_text.contains("received a message that is not logged"),
        "{log_text}"
    );
    for place in &places {
        let bytes = fs::read(place).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret:?} found in {place:?}"
            );
        }
    }
}

/// 20 registrations at once with 16 MiB hashes: two hashing slots keep the server's
/// memory near two hashes' worth instead of twenty.
#[test]
fn twenty_concurrent_logins_stay_within_the_hash_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    cmd.args([
        "serve",
        "auth",
        "--port",
        "0",
        "--scrypt-log-n",
        "14",
        "--hash-slots",
        "2",
        "--registrations-per-hour",
        "20",
    ])
    .arg("--db")
    .arg(dir.path().join("netlab.db"));
    let server = Server::start_command(cmd);
    let pid = server.child.id();
    let addr = server.addr;
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                // Twenty addresses: one address hashes one password at a time.
                let mut c = crate::support::connect_from(addr, &format!("127.0.1.{}", 10 + i));
                c.recv_msg().unwrap();
                let name = format!("user{i}");
                echo(&mut c, &name);
                echo(&mut c, "password-1");
                c.send_msg("password-1").unwrap();
                c.recv_msg().unwrap().unwrap()
            })
        })
        .collect();
    let mut welcomed = 0;
    for c in clients {
        if c.join().unwrap().starts_with("Welcome") {
            welcomed += 1;
        }
    }
    assert_eq!(welcomed, 20);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    // Two 16 MiB hashes plus the server itself; twenty at once would pass 320 MiB.
    eprintln!(
        "server peak RSS after 20 concurrent registrations: {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 120 * 1024, "peak RSS {peak_kib} KiB");
}

/// On a terminal, the answers to password questions are not echoed.
#[test]
fn passwords_typed_on_a_terminal_are_hidden() {
    use rexpect::reader::Options;
    let lab = Lab::start(&[]);
    // rexpect turns the terminal's echo off; a real terminal echoes what is typed, so
    // turn it back on, or hidden and echoed input would look the same.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "stty echo && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_netlab"))
        .args([
            "connect",
            "--host",
            "127.0.0.1",
            "--port",
            &lab.server.port(),
        ])
        .env("XDG_STATE_HOME", lab.dir.path().join("state"));
    let options = Options::new()
        .timeout_ms(Some(crate::support::PATIENCE.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    let mut term = rexpect::session::spawn_with_options(cmd, options).unwrap();
    term.exp_string("Username:").unwrap();
    term.send_line("nora").unwrap();
    // The username is echoed, as on any terminal: echo is on.
    term.exp_string("nora").unwrap();
    term.exp_string("Choose a password (8 to 1024 bytes). Password:")
        .unwrap();
    term.send_line("hidden-pass-1").unwrap();
    let screen = term.exp_string("Repeat the password:").unwrap();
    term.send_line("hidden-pass-1").unwrap();
    let mut rest = term.exp_string("You are signed in.").unwrap();
    term.send_line("/quit").unwrap();
    rest += &term.exp_eof().unwrap();
    assert!(!screen.contains("hidden-pass-1"), "echoed: {screen:?}");
    assert!(!rest.contains("hidden-pass-1"), "echoed: {rest:?}");
    assert!(rest.contains("Welcome"), "{rest:?}");
}

/// Ctrl-D at a hidden password question is the end of input, not an empty password.
#[test]
fn ctrl_d_at_a_password_question_ends_input_instead_of_sending_an_empty_password() {
    let lab = Lab::start(&[]);
    let mut cmd = netlab();
    cmd.args([
        "connect",
        "--host",
        "127.0.0.1",
        "--port",
        &lab.server.port(),
    ])
    .env("XDG_STATE_HOME", lab.dir.path().join("state"));
    let mut term = crate::support::in_terminal(cmd);
    term.exp_string("Username:").unwrap();
    term.send_line("olga").unwrap();
    term.exp_string("Password:").unwrap();
    term.send_control('d').unwrap();
    let rest = term.exp_eof().unwrap();
    let status = term.process().wait().unwrap();
    // An empty password would have been answered; the end of input is not.
    assert!(!rest.contains("Password"), "{rest:?}");
    assert!(!rest.contains("bytes"), "{rest:?}");
    // The end of input is an ordinary end (see "The client" in the README).
    assert_eq!(
        format!("{status:?}").rsplit(", ").next(),
        Some("0)"),
        "{status:?}"
    );
}
