//! `netlab check`: netlab passes every case in every mode and codec; each fixture in
//! tests/fixtures fails exactly the cases of its one mistake; deaths, restarts, budgets
//! and exit statuses behave as documented.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Server, netlab, python3, with_deadline};

/// Long enough for a class of fixtures, each a few seconds, on a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    with_deadline(RUN_LIMIT, move || cmd.output().unwrap()).expect("netlab check finished in time")
}

fn check(args: &[&str]) -> Command {
    let mut cmd = netlab();
    cmd.arg("check").args(args);
    cmd
}

/// `netlab check` starting each fixture the way a teacher starts students' servers: the
/// port typed at its prompt, one JSON line per fixture.
fn grade(args: &[&str], fixtures: &[&str]) -> Output {
    python3();
    let mut cmd = check(&["--exec", "python3 {}", "--exec-stdin", "{port}", "--json"]);
    // The fixtures print their port without a flush, as students do: the checker must
    // make Python write through a pipe at once, whatever this shell has set.
    cmd.env_remove("PYTHONUNBUFFERED");
    cmd.args(args).args(fixtures.iter().map(|f| fixture(f)));
    run(cmd)
}

/// The JSON lines of a run, by target (or server when there is none).
fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn line_of<'a>(lines: &'a [Value], target: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["target"].as_str().is_some_and(|t| t.ends_with(target)))
        .unwrap_or_else(|| panic!("no line for {target} in {lines:?}"))
}

/// The ids with `verdict` in a JSON line.
fn with_verdict(line: &Value, verdict: &str) -> BTreeSet<String> {
    line["results"]
        .as_object()
        .expect("results")
        .iter()
        .filter(|(_, r)| r["verdict"] == verdict)
        .map(|(id, _)| id.clone())
        .collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every case of netlab's own server in `mode` and `codec`, started by the checker so
/// that task 6 runs too: all OK, none FAILED, NON-STRICT or INFORMATIONAL.
fn netlab_passes(mode: &str, codec: &str, expected_ok: &[&str]) {
    let data = tempfile::tempdir().unwrap();
    let command = format!(
        "{} serve {mode} --codec {codec} --port {{port}}",
        env!("CARGO_BIN_EXE_netlab")
    );
    let mut cmd = check(&[
        "--exec", &command, "--mode", mode, "--codec", codec, "--json",
    ]);
    cmd.env("XDG_DATA_HOME", data.path());
    let out = run(cmd);
    let lines = lines(&out);
    let line = &lines[0];
    assert!(out.status.success(), "{mode} {codec}: {line:#}");
    let ok = with_verdict(line, "OK");
    let skipped = with_verdict(line, "SKIPPED");
    assert_eq!(ok, ids(expected_ok), "{mode} {codec}: {line:#}");
    assert_eq!(
        ok.len() + skipped.len(),
        line["results"].as_object().unwrap().len(),
        "{mode} {codec}: only OK and SKIPPED: {line:#}"
    );
}

const BASICS: [&str; 4] = ["0.1", "0.2", "6.1", "6.2"];
const TASK3: [&str; 6] = ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"];
const TASK10: [&str; 3] = ["10.1", "10.2", "10.3"];

#[test]
fn netlab_echo_passes_every_case_in_every_codec() {
    let all9 = ["9.1", "9.2", "9.3", "9.4", "9.5", "9.6", "9.7", "9.8"];
    let framed = [&BASICS[..], &TASK3, &all9, &TASK10].concat();
    netlab_passes("echo", "framed", &framed);
    let lines: Vec<&str> = framed.iter().copied().filter(|&id| id != "9.7").collect();
    netlab_passes("echo", "lines", &lines);
    let raw: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|&id| id != "9.4" && id != "9.8")
        .collect();
    netlab_passes("echo", "raw", &raw);
}

#[test]
fn netlab_ident_passes_every_case_in_both_message_codecs() {
    for codec in ["framed", "lines"] {
        netlab_passes(
            "ident",
            codec,
            &[&BASICS[..], &["7.1", "7.2", "7.3"]].concat(),
        );
    }
}

/// Separate from ident's, so that the two run at once.
#[test]
fn netlab_auth_passes_every_case_in_both_message_codecs() {
    for codec in ["framed", "lines"] {
        netlab_passes(
            "auth",
            codec,
            &[&BASICS[..], &["8.1", "8.2", "8.3"]].concat(),
        );
    }
}

/// Each raw fixture, started with its port typed at its prompt: exactly the cases of
/// its mistake fail; one that dies is restarted and the cases after still run; one that
/// never starts is named, and the others are checked all the same.
#[test]
fn each_raw_fixture_fails_exactly_the_cases_of_its_mistake() {
    let targets = [
        "good_raw.py",
        "recv_1024_decode.py",
        "one_at_a_time.py",
        "no_reuseaddr.py",
        "dies_on_reset.py",
        "never_starts.py",
    ];
    let out = grade(&["--codec", "raw", "--timeout", "2s"], &targets);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), targets.len(), "{lines:#?}");
    let failed = |target| with_verdict(line_of(&lines, target), "FAILED");
    assert_eq!(failed("good_raw.py"), ids(&[]));
    assert_eq!(failed("recv_1024_decode.py"), ids(&["9.5", "9.6"]));
    assert_eq!(failed("one_at_a_time.py"), ids(&["10.3"]));
    assert_eq!(
        with_verdict(line_of(&lines, "one_at_a_time.py"), "NON-STRICT"),
        ids(&["3.2"]),
        "task 3 allows one client at a time"
    );
    assert_eq!(failed("no_reuseaddr.py"), ids(&["6.2"]));
    assert_eq!(failed("dies_on_reset.py"), ids(&["3.5", "3.6"]));

    let reset = line_of(&lines, "dies_on_reset.py");
    assert_eq!(reset["died_at"], "3.5");
    let death = reset["results"]["3.5"]["actual"].as_str().unwrap();
    assert!(
        death.contains("server died") && death.contains("ConnectionResetError"),
        "{death}"
    );
    assert_eq!(
        reset["results"]["9.1"]["verdict"], "OK",
        "restarted after 3.5"
    );

    let never = line_of(&lines, "never_starts.py");
    assert_eq!(never["started"], false);
    assert!(
        never["error"]
            .as_str()
            .unwrap()
            .contains("exited before listening"),
        "{never}"
    );
}

/// The framed fixtures, with JUnit XML beside the JSON.
#[test]
fn each_framed_fixture_fails_exactly_the_cases_of_its_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("check.xml");
    let targets = ["good_framed.py", "framed_single_recv.py", "chars_header.py"];
    let junit_arg = junit.to_str().unwrap();
    let out = grade(&["--timeout", "2s", "--junit", junit_arg], &targets);
    assert_eq!(out.status.code(), Some(1));
    let lines = lines(&out);
    let failed = |target| with_verdict(line_of(&lines, target), "FAILED");
    assert_eq!(failed("good_framed.py"), ids(&[]));
    assert_eq!(
        failed("framed_single_recv.py"),
        ids(&["9.1", "9.2", "9.3", "9.5", "9.7"])
    );
    assert_eq!(failed("chars_header.py"), ids(&["9.5"]));
    let header = line_of(&lines, "chars_header.py")["results"]["9.5"]["actual"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("counts characters"), "{header}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 6, "{xml}");
    assert!(xml.contains("name=\"9.5 Cyrillic and emoji"), "{xml}");
}

/// A port that was free a moment ago, for a fixture started by hand.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fixture started by the test, not by the checker, and killed on drop.
struct Fixture(std::process::Child, u16);

impl Fixture {
    fn start(name: &str) -> Fixture {
        let port = free_port();
        let child = python3()
            .arg(fixture(name))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Dropped, it is killed and waited for, even if it never listens.
        let started = Fixture(child, port);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return started;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{name} did not listen on {port}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Without --exec nothing restarts a dead server: its death is the case's FAILED, the
/// rest are SKIPPED, and the table and its closing line say where it died.
#[test]
fn a_server_that_dies_is_named_and_the_cases_after_it_are_skipped() {
    let server = Fixture::start("dies_on_reset.py");
    let port = server.1.to_string();
    let out = run(check(&[
        "--port",
        &port,
        "--codec",
        "raw",
        "--cases",
        "3.4,3.5,3.6,9.1",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row {id}: {table}"))
            .to_owned()
    };
    assert!(row("3.4").ends_with(" OK"), "{table}");
    assert!(row("3.5").ends_with(" FAILED"), "{table}");
    assert!(table.contains("actual:   server died"), "{table}");
    for id in ["3.6", "9.1"] {
        assert!(
            row(id).contains("SKIPPED (the server died at 3.5)"),
            "{table}"
        );
    }
    assert!(
        table.contains("4 tests, 1 passed, 2 skipped, 1 failed; the server died at 3.5"),
        "{table}"
    );
}

/// NON-STRICT passes unless --strict; --cases runs only what it matches.
#[test]
fn strict_counts_a_non_strict_verdict_as_a_failure() {
    let server = Fixture::start("one_at_a_time.py");
    let port = server.1.to_string();
    let args = [
        "--port",
        &port,
        "--codec",
        "raw",
        "--cases",
        "3.2",
        "--timeout",
        "1s",
        "--json",
    ];
    let lenient = run(check(&args));
    assert!(lenient.status.success());
    let line = &lines(&lenient)[0];
    assert_eq!(line["results"].as_object().unwrap().len(), 1, "{line}");
    assert_eq!(line["results"]["3.2"]["verdict"], "NON-STRICT");
    let strict = run(check(&[&args[..], &["--strict"]].concat()));
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(lines(&strict)[0]["failed"], 1);
}

#[test]
fn an_unreachable_server_exits_2_and_bad_arguments_are_usage_errors() {
    let port = free_port().to_string();
    let out = run(check(&["--port", &port, "--json"]));
    assert_eq!(out.status.code(), Some(2));
    let line = &lines(&out)[0];
    assert_eq!(line["results"]["0.1"]["verdict"], "FAILED");
    assert_eq!(line["results"]["0.2"]["verdict"], "SKIPPED");

    let out = run(check(&["--mode", "ident", "--codec", "raw"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mode ident needs messages"));
    let out = run(check(&["--exec-stdin", "9090"]));
    assert_eq!(out.status.code(), Some(2), "--exec-stdin needs --exec");

    let out = run(check(&[
        "--exec",
        "python3 {}",
        "--start-timeout",
        "1s",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(2), "the server alone did not start");
}

/// Past the budget, the remaining cases are SKIPPED rather than run.
#[test]
fn a_budget_bounds_the_time_spent_on_one_server() {
    let server = Server::start(&["echo"]);
    let out = run(check(&[
        "--port",
        &server.port(),
        "--budget",
        "1ms",
        "--json",
    ]));
    assert!(out.status.success());
    let line = &lines(&out)[0];
    assert_eq!(line["results"]["0.1"]["verdict"], "OK");
    assert!(
        line["results"]["3.1"]["actual"]
            .as_str()
            .unwrap()
            .contains("budget"),
        "{line}"
    );
}

#[test]
fn list_names_every_case_by_id() {
    let out = run(check(&["--list"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ["0.1", "3.6", "6.2", "7.3", "8.3", "9.8", "10.3"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id}: {text}"
        );
    }
}

/// A server the checker started does not outlive it, even when the checker is killed
/// with SIGKILL in the middle of a run.
#[test]
fn a_started_server_dies_with_the_checker() {
    python3();
    let port = free_port();
    let port_arg = port.to_string();
    let mut checker = check(&[
        "--exec",
        "python3 {} {port}",
        "--port",
        &port_arg,
        "--codec",
        "raw",
    ])
    .arg(fixture("good_raw.py"))
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let listening = (0..400).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    checker.kill().unwrap();
    checker.wait().unwrap();
    assert!(listening, "the fixture never listened on {port}");
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(
        gone,
        "the fixture still listens on {port} after the checker died"
    );
}

/// A server that floods every connection with bytes that are no message: the checker
/// stays bounded (its reads have a maximum), calls it lost rather than dead, and ends.
#[test]
fn a_flooding_server_is_reported_not_followed() {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(50) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let flood = vec![0xFFu8; 64 * 1024];
                // Bounded: 64 MiB per connection at most.
                for _ in 0..1024 {
                    if conn.write_all(&flood).is_err() {
                        break;
                    }
                }
            });
        }
    });
    for codec in ["framed", "lines"] {
        let out = run(check(&[
            "--port",
            &port,
            "--codec",
            codec,
            "--timeout",
            "1s",
            "--json",
        ]));
        assert_eq!(out.status.code(), Some(1), "{codec}");
        let line = &lines(&out)[0];
        assert_eq!(
            line["results"]["0.2"]["verdict"], "FAILED",
            "{codec}: {line}"
        );
        let lost = line["results"]["3.1"]["actual"].as_str().unwrap();
        assert!(
            lost.starts_with("server stopped answering"),
            "{codec}: {lost}"
        );
        assert!(
            lost.contains("maximum") || lost.contains("without an end"),
            "{codec}: {lost}"
        );
    }
}

/// Tasks 7 and 8 judge what they recognise: an echo server taken for an identification
/// server forgets its client (7.2 FAILED), its dialogue is no sign-in (8.1
/// INFORMATIONAL), and a server that never checks a password fails 8.3.
#[test]
fn ident_and_auth_cases_fail_servers_that_forget_or_let_anyone_in() {
    let echo = Server::start(&["echo"]);
    let out = run(check(&[
        "--port",
        &echo.port(),
        "--mode",
        "ident",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let line = &lines(&out)[0];
    assert_eq!(with_verdict(line, "FAILED"), ids(&["7.2"]), "{line:#}");
    assert_eq!(
        with_verdict(line, "OK"),
        ids(&["0.1", "0.2", "7.1", "7.3"]),
        "{line:#}"
    );

    let out = run(check(&["--port", &echo.port(), "--mode", "auth", "--json"]));
    assert!(out.status.success(), "INFORMATIONAL is no failure");
    let line = &lines(&out)[0];
    assert_eq!(
        line["results"]["8.1"]["verdict"], "INFORMATIONAL",
        "{line:#}"
    );
    assert!(
        line["results"]["8.2"]["actual"]
            .as_str()
            .unwrap()
            .contains("no account")
    );

    let out = grade(&["--mode", "auth"], &["auth_any_password.py"]);
    assert_eq!(out.status.code(), Some(1));
    let line = &lines(&out)[0];
    assert_eq!(with_verdict(line, "FAILED"), ids(&["8.3"]), "{line:#}");
    let why = line["results"]["8.3"]["actual"].as_str().unwrap();
    assert!(why.contains("signed in with a wrong password"), "{why}");
    assert!(!why.contains("pw-"), "no password in a report: {why}");
}

/// A correct line server of the telnet kind, every line ending in CRLF (which netlab's
/// own rule would read as "more follows"), passes every case: even an echo right
/// behind its greeting (3.3) is not taken for part of it.
#[test]
fn a_line_server_that_ends_lines_in_crlf_passes_every_case() {
    let out = grade(&["--codec", "lines"], &["good_lines.py"]);
    let line = &lines(&out)[0];
    assert!(out.status.success(), "{line:#}");
    assert_eq!(with_verdict(line, "FAILED"), ids(&[]));
    assert_eq!(line["results"]["3.3"]["verdict"], "OK", "{line:#}");
}

/// When its cases are done, a server the checker started is stopped, even one that
/// shrugs off SIGTERM (SIGKILL follows).
#[test]
fn a_started_server_is_stopped_after_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let stubborn = dir.path().join("stubborn.py");
    std::fs::write(
        &stubborn,
        "import signal\nimport labserver\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\nlabserver.main(labserver.RawEcho)\n",
    )
    .unwrap();
    let port = free_port().to_string();
    let mut cmd = check(&[
        "--exec",
        "python3 {} {port}",
        "--port",
        &port,
        "--codec",
        "raw",
    ]);
    cmd.args(["--cases", "0.1", "--json"]).arg(&stubborn);
    cmd.env("PYTHONPATH", fixture(""));
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err(),
        "the server still listens on {port}"
    );
}
