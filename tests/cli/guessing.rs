//! The policy layer against hostile clients: many connections, many guesses, many
//! addresses. Attempts are admitted before any hash, penalised per source and per
//! account; connections and registrations are capped per address; closed registration
//! reveals no names. Clients bind to loopback addresses to be different machines.

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use netlab::wire::frame::{RecvMsg, SendMsg};

use crate::support::{PATIENCE, Server, connect_from, echo, netlab, run_with_input};

const WRONG: &str = "Wrong password. Password:";

struct Lab {
    dir: tempfile::TempDir,
    server: Server,
}

impl Lab {
    fn start(extra: &[&str]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let server = Lab::serve(&dir, extra);
        Lab { dir, server }
    }

    fn serve(dir: &tempfile::TempDir, extra: &[&str]) -> Server {
        let mut cmd = netlab();
        cmd.args(["serve", "auth", "--port", "0", "--scrypt-log-n", "10"])
            .arg("--db")
            .arg(dir.path().join("netlab.db"))
            .args(extra);
        Server::start_command(cmd)
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("netlab.db")
    }

    /// A framed client from `ip`, past the greeting.
    fn client(&self, ip: &str) -> TcpStream {
        let mut c = connect_from(self.server.addr, ip);
        let greeting = c.recv_msg().unwrap().expect("a greeting");
        assert!(greeting.ends_with("Username:"), "{greeting}");
        c
    }

    /// Registers `name` with the password "password-1" from `ip`; the welcome.
    fn register(&self, ip: &str, name: &str) -> String {
        let mut c = self.client(ip);
        let asked = echo(&mut c, name);
        if !asked.starts_with("New user") {
            return asked;
        }
        echo(&mut c, "password-1");
        echo(&mut c, "password-1")
    }

    /// One password attempt for `name` from `ip`, on a connection of its own.
    fn attempt(&self, ip: &str, name: &str, password: &str) -> String {
        let mut c = self.client(ip);
        assert_eq!(echo(&mut c, name), "Password:");
        echo(&mut c, password)
    }

    fn query(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(self.db())
            .unwrap()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    }

    fn admin(&self, args: &[&str], input: &str) -> std::process::Output {
        let mut cmd = netlab();
        cmd.args(args).arg("--db").arg(self.db());
        run_with_input(cmd, input)
    }
}

/// Waits (boundedly) until `ip`'s penalty is over.
fn wait_out_penalty(lab: &Lab, ip: &str) {
    let started = Instant::now();
    loop {
        let until = lab.query(&format!(
            "SELECT coalesce(max(locked_until), 0) FROM source_penalties WHERE source = '{ip}'"
        ));
        let now = netlab::store::now();
        if until <= now {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "penalty of {ip} never ended");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The race from the report: after five failures, a burst of guesses the moment the
/// wait ends, each on a connection parked at `Password:`. One is checked; the rest,
/// the right password sent last among them, get the same answer unchecked.
#[test]
fn a_hundred_parallel_guesses_in_one_window_get_one_real_check() {
    let lab = Lab::start(&["--max-per-address", "200"]);
    assert!(lab.register("127.0.0.9", "nora").starts_with("Welcome"));
    for _ in 0..5 {
        assert_eq!(lab.attempt("127.0.0.2", "nora", "wrong-guess"), WRONG);
    }
    let parked: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut c = lab.client("127.0.0.2");
            assert_eq!(echo(&mut c, "nora"), "Password:");
            c
        })
        .collect();
    wait_out_penalty(&lab, "127.0.0.2");
    let start = Arc::new(Barrier::new(100));
    let guesses: Vec<_> = parked
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                if i == 99 {
                    thread::sleep(Duration::from_millis(100));
                    echo(&mut c, "password-1")
                } else {
                    echo(&mut c, "wrong-guess")
                }
            })
        })
        .collect();
    for guess in guesses {
        assert_eq!(guess.join().unwrap(), WRONG);
    }
    let log = lab.server.log();
    assert_eq!(
        log.matches("wrong password for \"nora\"").count(),
        6,
        "five before the burst, one real check in it:\n{log}"
    );
    assert_eq!(
        lab.query("SELECT failures FROM source_penalties WHERE source = '127.0.0.2'"),
        6
    );
    assert!(
        log.contains(
            "127.0.0.2: password attempts on \"nora\" refused unchecked: \
             this address must wait"
        ),
        "{log}"
    );
}

#[test]
fn a_guesser_at_one_address_does_not_lock_out_the_owner_at_another() {
    let lab = Lab::start(&[]);
    assert!(lab.register("127.0.0.3", "olive").starts_with("Welcome"));
    for _ in 0..5 {
        assert_eq!(lab.attempt("127.0.0.2", "olive", "wrong-guess"), WRONG);
    }
    // The guesser waits now, even with the right password...
    assert_eq!(lab.attempt("127.0.0.2", "olive", "password-1"), WRONG);
    // ...and the owner, elsewhere, signs in at once.
    let owner = lab.attempt("127.0.0.3", "olive", "password-1");
    assert!(owner.starts_with("Welcome, olive!"), "{owner}");
}

#[test]
fn the_per_address_cap_refuses_with_a_message_and_logs_once() {
    let lab = Lab::start(&["--max-per-address", "3"]);
    let mut held: Vec<TcpStream> = (0..3).map(|_| lab.client("127.0.0.2")).collect();
    for _ in 0..2 {
        let mut refused = connect_from(lab.server.addr, "127.0.0.2");
        assert_eq!(
            refused.recv_msg().unwrap().as_deref(),
            Some("error: too many connections from your address (3 open); closing the connection")
        );
        assert_eq!(refused.recv_msg().unwrap(), None);
    }
    // Another address is served as usual.
    let mut other = lab.client("127.0.0.3");
    assert_eq!(echo(&mut other, "/help"), "Sign in first. Username:");
    let log = lab
        .server
        .wait_for_log("connection refused: 3 already open");
    assert_eq!(
        log.matches("127.0.0.2: connection refused").count(),
        1,
        "once a minute per address:\n{log}"
    );
    // When one of the three leaves, its place is free again.
    drop(held.pop());
    let started = Instant::now();
    loop {
        let mut again = connect_from(lab.server.addr, "127.0.0.2");
        if again
            .recv_msg()
            .unwrap()
            .is_some_and(|m| m.ends_with("Username:"))
        {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "the place never came back");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Attempts refused unchecked cost no hashing, so hammering a penalised account from
/// one address leaves the hashing slot to everyone else.
#[test]
fn hammering_from_one_address_costs_no_hashing_and_leaves_others_alone() {
    let lab = Lab::start(&["--hash-slots", "1", "--max-per-address", "64"]);
    assert!(lab.register("127.0.0.9", "vic").starts_with("Welcome"));
    assert!(lab.register("127.0.0.3", "una").starts_with("Welcome"));
    for _ in 0..5 {
        assert_eq!(lab.attempt("127.0.0.2", "vic", "wrong-guess"), WRONG);
    }
    let checks_before = lab.server.log().matches("wrong password for").count();
    let until = Instant::now() + Duration::from_millis(1500);
    let hammers: Vec<_> = (0..30)
        .map(|_| {
            let addr = lab.server.addr;
            thread::spawn(move || {
                let mut answers = 0;
                while Instant::now() < until {
                    let mut c = connect_from(addr, "127.0.0.2");
                    c.recv_msg().unwrap();
                    echo(&mut c, "vic");
                    for _ in 0..3 {
                        if c.send_msg("wrong-guess").is_ok() && c.recv_msg().is_ok() {
                            answers += 1;
                        }
                    }
                }
                answers
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let signed_in = Instant::now();
    let welcome = lab.attempt("127.0.0.3", "una", "password-1");
    let took = signed_in.elapsed();
    assert!(welcome.starts_with("Welcome, una!"), "{welcome}");
    let answered: usize = hammers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(answered > 30, "the hammering was real: {answered} answers");
    let log = lab.server.log();
    // The address's one-second wait may end during the hammering: then the schedule
    // admits one attempt, and waits two seconds more. Nothing else is checked.
    let checked = log.matches("wrong password for").count() - checks_before;
    assert!(
        checked <= 1,
        "{checked} hammering attempts were checked:\n{log}"
    );
    // Not a speed test: a generous bound on one hash and a few queries, where hashing
    // every hammering attempt would queue this login behind dozens of hashes.
    assert!(took < Duration::from_secs(2), "the owner waited {took:?}");
}

#[test]
fn one_address_registers_at_most_the_limit_per_hour() {
    let lab = Lab::start(&["--registrations-per-hour", "2"]);
    assert!(lab.register("127.0.0.2", "amy").starts_with("Welcome"));
    assert!(lab.register("127.0.0.2", "ben").starts_with("Welcome"));
    assert_eq!(
        lab.register("127.0.0.2", "cat"),
        "This address has registered 2 accounts in the last hour, as many as it may; \
         sign in, or try again later. Username:"
    );
    assert!(lab.register("127.0.0.3", "cat").starts_with("Welcome"));
}

/// With closed registration a stranger learns nothing: the bytes on the wire for a name
/// that exists and one that does not, each with wrong passwords, are the same.
#[test]
fn closed_registration_answers_unknown_names_byte_for_byte_like_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("netlab.db");
    let mut add = netlab();
    add.args(["users", "add", "kim", "--scrypt-log-n", "10", "--db"])
        .arg(&db);
    let out = run_with_input(add, "password-1\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "added kim\n");
    let lab = Lab {
        server: Lab::serve(&dir, &["--registration", "closed"]),
        dir,
    };
    let wire = |ip: &str, name: &str| {
        use std::io::{Read, Write};
        let mut c = connect_from(lab.server.addr, ip);
        for message in [name, "wrong-one", "wrong-two", "wrong-three"] {
            let payload = message.as_bytes();
            c.write_all(&(payload.len() as u32).to_be_bytes()).unwrap();
            c.write_all(payload).unwrap();
        }
        let mut bytes = Vec::new();
        c.read_to_end(&mut bytes).unwrap();
        bytes
    };
    let known = wire("127.0.0.2", "kim");
    let unknown = wire("127.0.0.3", "zed");
    assert_eq!(known, unknown);
    let text = String::from_utf8_lossy(&known);
    assert!(text.contains("netlab auth server: sign in.\n"), "{text}");
    assert!(
        text.contains("Too many failed attempts; goodbye."),
        "{text}"
    );
    assert!(!text.contains("New user"), "{text}");
    assert!(
        lab.attempt("127.0.0.4", "kim", "password-1")
            .starts_with("Welcome, kim!")
    );
}

#[test]
fn users_add_refuses_bad_input_and_unlock_lifts_an_account_penalty() {
    let lab = Lab::start(&[]);
    let added = lab.admin(
        &["users", "add", "lee", "--scrypt-log-n", "10"],
        "password-1\n",
    );
    assert!(added.status.success(), "{added:?}");
    for (args, input, error) in [
        (
            &["users", "add", "lee"][..],
            "password-2\n",
            "a user called \"lee\" exists already",
        ),
        (
            &["users", "add", "max"],
            "short\n",
            "A password is 8 to 1024 bytes",
        ),
        (
            &["users", "add", "max"],
            "",
            "no password on standard input",
        ),
        (
            &["users", "add", "no body"],
            "password-1\n",
            "A username is 1 to 32",
        ),
        (
            &["users", "unlock", "nobody"],
            "",
            "no user is called \"nobody\"",
        ),
    ] {
        let out = lab.admin(args, input);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(error), "{args:?}: {stderr}");
    }
    // Four addresses, five failures each: the account itself waits now, for everyone.
    for source in 2..6 {
        let ip = format!("127.0.0.{source}");
        for _ in 0..5 {
            assert_eq!(lab.attempt(&ip, "lee", "wrong-guess"), WRONG);
        }
    }
    assert_eq!(lab.attempt("127.0.0.7", "lee", "password-1"), WRONG);
    let out = lab.admin(&["users", "unlock", "lee"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "unlocked lee: failed sign-ins no longer delay it\n"
    );
    assert!(
        lab.attempt("127.0.0.7", "lee", "password-1")
            .starts_with("Welcome, lee!")
    );
}

/// Refused connections take none of the server's places: a burst of them from one
/// address, left open and unread, does not keep another address waiting.
#[test]
fn refusals_do_not_take_the_places_of_served_clients() {
    let lab = Lab::start(&["--max-connections", "4", "--max-per-address", "2"]);
    let _served: Vec<TcpStream> = (0..2).map(|_| lab.client("127.0.0.2")).collect();
    let _refused: Vec<TcpStream> = (0..50)
        .map(|_| connect_from(lab.server.addr, "127.0.0.2"))
        .collect();
    let started = Instant::now();
    let mut other = connect_from(lab.server.addr, "127.0.0.3");
    let greeting = other.recv_msg().unwrap().unwrap();
    assert!(greeting.ends_with("Username:"), "{greeting}");
    // Each refusal holding a place for its linger would queue this client for seconds.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "greeted after {:?}",
        started.elapsed()
    );
}
