//! `netlab serve exec -- PROGRAM`: a program per connection, spoken to in lines.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use netlab::wire::frame::{RecvMsg, SendMsg};

use crate::support::{PATIENCE, Server, echo, netlab, run_with_input};

/// A Python plugin written for one test, in a directory of its own (whose path also
/// names its processes, for counting them).
struct Plugin {
    dir: tempfile::TempDir,
}

impl Plugin {
    fn new(source: &str) -> Plugin {
        crate::support::python3();
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("plugin.py"), source).unwrap();
        Plugin { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("plugin.py")
    }

    fn serve(&self, extra: &[&str]) -> Server {
        let mut cmd = netlab();
        cmd.args(["serve", "exec", "--port", "0"])
            .args(extra)
            .arg("--")
            .arg("python3")
            .arg(self.path());
        Server::start_command(cmd)
    }

    /// How many of this plugin's processes are running (not counting the server, whose
    /// command line names it too).
    fn running(&self) -> usize {
        let out = Command::new("pgrep")
            .args(["-f", &format!("(^|/)python3 {}", self.path().display())])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// Waits, bounded, until `n` of its processes run.
    fn wait_running(&self, n: usize) -> usize {
        let started = Instant::now();
        loop {
            let now = self.running();
            if now == n || started.elapsed() > PATIENCE {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

const UPPER: &str = "import sys\n\
print('upper-case echo', flush=True)\n\
for line in sys.stdin:\n    print(line.rstrip('\\n').upper(), flush=True)\n";

#[test]
fn a_python_plugin_serves_framed_and_line_clients() {
    let plugin = Plugin::new(UPPER);
    for codec in ["framed", "lines"] {
        let server = plugin.serve(&["--codec", codec]);
        let mut cmd = netlab();
        cmd.args(["connect", "--codec", codec, "--port", &server.port()]);
        let out = run_with_input(cmd, "hello\nпривет\n");
        assert!(out.status.success(), "{codec}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "upper-case echo\nHELLO\nПРИВЕТ\n"
        );
        let log = server.wait_for_log("closed after");
        assert!(log.contains("; 2 messages in, 3 out"), "{log}");
    }
}

#[test]
fn newlines_and_backslashes_travel_escaped() {
    // Shows the line it was given (its backslashes escaped again), then echoes it.
    let plugin = Plugin::new(
        "import sys\nprint('hi', flush=True)\n\
         for line in sys.stdin:\n    line = line.rstrip('\\n')\n    \
         print('raw=' + line.replace('\\\\', '\\\\\\\\') + '\\\\n' + line, flush=True)\n",
    );
    let server = plugin.serve(&[]);
    let mut client = server.client();
    let message = "two\nlines and a \\ backslash";
    let reply = echo(&mut client, message);
    assert_eq!(
        reply,
        format!("raw=two\\nlines and a \\\\ backslash\n{message}")
    );
}

#[test]
fn the_program_gets_a_cleared_environment_with_the_connections_facts() {
    let plugin = Plugin::new(
        "import os\nkeys = sorted(k for k in os.environ if k != 'LC_CTYPE')\n\
         print(' '.join(f'{k}={os.environ[k]}' for k in keys if k.startswith(('NETLAB', 'PASSED', 'SECRET'))), flush=True)\n",
    );
    let mut cmd = netlab();
    cmd.args([
        "serve",
        "exec",
        "--port",
        "0",
        "--pass-env",
        "PASSED_ON",
        "--",
    ])
    .arg("python3")
    .arg(plugin.path())
    .env("PASSED_ON", "yes")
    .env("SECRET_TOKEN", "must not leak");
    let server = Server::start_command(cmd);
    let mut client = crate::support::connect_from(server.addr, "127.0.0.2");
    let greeting = client.recv_msg().unwrap().unwrap();
    let port = client.local_addr().unwrap().port();
    assert_eq!(
        greeting,
        format!(
            "NETLAB_LOCAL_PORT={} NETLAB_MODE=exec NETLAB_PEER_IP=127.0.0.2 \
             NETLAB_PEER_PORT={port} PASSED_ON=yes",
            server.port()
        )
    );
}

#[test]
fn a_program_that_never_greets_or_never_answers_is_given_up_on() {
    for (source, said) in [
        (
            "import time\ntime.sleep(60)\n",
            "did not answer within 500ms",
        ),
        (
            "import sys, time\nprint('hi', flush=True)\nsys.stdin.readline()\ntime.sleep(60)\n",
            "did not answer within 500ms",
        ),
    ] {
        let plugin = Plugin::new(source);
        let server = plugin.serve(&["--plugin-timeout", "500ms"]);
        let mut cmd = netlab();
        cmd.args(["connect", "--port", &server.port()]);
        let out = run_with_input(cmd, "hello?\n");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let shown = String::from_utf8(out.stdout).unwrap();
        assert!(
            shown.ends_with("error: the service did not answer; closing the connection\n"),
            "{shown}"
        );
        server.wait_for_log(said);
        assert_eq!(
            plugin.wait_running(0),
            0,
            "the program is ended with its conversation"
        );
    }
}

#[test]
fn a_crash_is_told_to_the_client_and_logged_with_the_status_and_stderr() {
    let plugin = Plugin::new(
        "import sys\nprint('hi', flush=True)\nsys.stdin.readline()\n\
         print('something broke', file=sys.stderr, flush=True)\nsys.exit(3)\n",
    );
    let server = plugin.serve(&[]);
    let mut client = server.client();
    assert_eq!(
        echo(&mut client, "crash now"),
        "error: the service ended unexpectedly; closing the connection"
    );
    assert_eq!(client.recv_msg().unwrap(), None);
    let log = server.wait_for_log("exit status: 3");
    assert!(log.contains("\"something broke\""), "{log}");
}

#[test]
fn a_program_that_ends_gets_its_last_line_delivered() {
    let plugin = Plugin::new(
        "import sys\nprint('one question', flush=True)\nsys.stdin.readline()\nprint('bye', flush=True)\n",
    );
    let server = plugin.serve(&[]);
    let mut client = server.client();
    client.send_msg("answer").unwrap();
    let last = client.recv_msg().unwrap().unwrap();
    assert!(last == "bye", "{last}");
    let after = client.recv_msg().unwrap();
    // The close comes with the last line, or with the next message at the latest.
    if let Some(next) = after {
        assert_eq!(next, "the service has ended; goodbye");
    }
}

#[test]
fn a_flood_on_stdout_is_bounded() {
    let plugin = Plugin::new(
        "import sys\nprint('hi', flush=True)\nsys.stdin.readline()\n\
         while True:\n    sys.stdout.write('x' * 65536)\n",
    );
    let server = plugin.serve(&["--max-frame", "4096"]);
    let mut client = server.client();
    assert_eq!(
        echo(&mut client, "go"),
        "error: the service sent a message over the maximum; closing the connection"
    );
    assert_eq!(plugin.wait_running(0), 0);
}

#[test]
fn fifty_connections_have_fifty_programs_and_none_survives_the_server() {
    // This one ignores SIGTERM: only the SIGKILL after the grace period ends it.
    let plugin = Plugin::new(
        "import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         print('hi', flush=True)\nfor line in sys.stdin:\n    print(line.strip(), flush=True)\n",
    );
    let server = plugin.serve(&[]);
    let mut clients: Vec<_> = (0..50).map(|_| server.client()).collect();
    assert_eq!(plugin.wait_running(50), 50);
    // 49 leave: their programs (deaf to SIGTERM) are killed after the grace period, and
    // reaped: no zombie child of the server.
    let mut last = clients.pop().unwrap();
    drop(clients);
    assert_eq!(plugin.wait_running(1), 1);
    let children = Command::new("ps")
        .args(["--ppid", &server.child.id().to_string(), "-o", "stat="])
        .output()
        .unwrap();
    let zombies = String::from_utf8_lossy(&children.stdout)
        .lines()
        .filter(|stat| stat.starts_with('Z'))
        .count();
    assert_eq!(zombies, 0);
    // The server stops with a program still running: it does not outlive the server.
    assert_eq!(echo(&mut last, "still there"), "still there");
    server.terminate();
    let (status, _, log) = server.wait();
    assert!(status.success(), "{log}");
    assert_eq!(plugin.running(), 0, "a program outlived the server");
}

#[test]
fn the_example_plugin_runs_as_the_readme_shows() {
    crate::support::python3();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plugins/upper.py");
    let mut cmd = netlab();
    cmd.args(["serve", "exec", "--port", "0", "--", "python3", script]);
    let server = Server::start_command(cmd);
    let mut cmd = netlab();
    cmd.args(["connect", "--port", &server.port()]);
    let out = run_with_input(cmd, "hello\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "upper-case echo; you are 127.0.0.1\nHELLO\n"
    );
}

const WHO: &str = "import os, sys\n\
who = os.environ.get('NETLAB_USER') or os.environ.get('NETLAB_NAME')\n\
print(f\"program for {who} ({os.environ['NETLAB_MODE']})\", flush=True)\n\
for line in sys.stdin:\n    print(f'{who}: ' + line.rstrip('\\n'), flush=True)\n";

#[test]
fn auth_exec_starts_the_program_for_the_signed_in_user_and_keeps_the_commands() {
    let plugin = Plugin::new(WHO);
    let dir = tempfile::tempdir().unwrap();
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
    .arg(dir.path().join("netlab.db"))
    .args(["--exec", "--", "python3"])
    .arg(plugin.path());
    let server = Server::start_command(cmd);
    let connect = |input: &str| {
        let mut cmd = netlab();
        cmd.args(["connect", "--port", &server.port()])
            .env("XDG_STATE_HOME", dir.path().join("state"));
        let out = run_with_input(cmd, input);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = connect("kim\npassword-1\npassword-1\nping\n/whoami\n");
    // The program starts only once kim is signed in, and greets right after the welcome.
    let welcome = first.find("thank you for registering, kim!").expect(&first);
    let program = first.find("program for kim (auth)").expect(&first);
    assert!(welcome < program, "{first}");
    assert!(first.contains("\nkim: ping\n"), "{first}");
    assert!(
        first.ends_with("You are kim, signed in with your password.\n"),
        "{first}"
    );
    // The session token still signs in, and the program follows.
    let second = connect("again\n");
    assert!(
        second.contains("signed in with your session token"),
        "{second}"
    );
    assert!(
        second.ends_with("program for kim (auth)\nkim: again\n"),
        "{second}"
    );
}

#[test]
fn ident_exec_starts_the_program_once_the_client_is_named() {
    let plugin = Plugin::new(WHO);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "ident", "--port", "0", "--db"])
        .arg(dir.path().join("netlab.db"))
        .args(["--exec", "--", "python3"])
        .arg(plugin.path());
    let server = Server::start_command(cmd);
    let mut cmd = netlab();
    cmd.args(["connect", "--bind", "127.0.0.2", "--port", &server.port()]);
    let out = run_with_input(cmd, "Zed\nping\n");
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("What is your name?"), "{shown}");
    assert!(
        shown.ends_with("program for Zed (ident)\nZed: ping\n"),
        "{shown}"
    );
}

fn example(name: &str) -> String {
    crate::support::python3();
    format!("{}/examples/plugins/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_calculator_answers_without_eval_and_refuses_what_is_not_arithmetic() {
    let mut cmd = netlab();
    cmd.args([
        "serve",
        "exec",
        "--port",
        "0",
        "--",
        "python3",
        &example("calc.py"),
    ]);
    let server = Server::start_command(cmd);
    let mut client = server.client();
    assert_eq!(echo(&mut client, "(2 + 3) * 4"), "= 20");
    assert_eq!(echo(&mut client, "7 / 2"), "= 3.5");
    assert_eq!(echo(&mut client, "1 / 0"), "error: division by zero");
    assert_eq!(
        echo(&mut client, "9 ** 99999"),
        "error: exponents are limited to 1000"
    );
    assert!(echo(&mut client, "__import__('os').getcwd()").starts_with("error: only numbers"));
    assert!(echo(&mut client, "2 +").starts_with("error: "));
    assert_eq!(echo(&mut client, "-(1 - 3)"), "= 2");
}

#[test]
fn the_guessing_game_keeps_each_players_best_score() {
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("scores.json");
    let mut cmd = netlab();
    cmd.args([
        "serve",
        "ident",
        "--port",
        "0",
        "--pass-env",
        "GUESS_SCORES",
        "--db",
    ])
    .arg(dir.path().join("netlab.db"))
    .args(["--exec", "--", "python3", &example("guess.py")])
    .env("GUESS_SCORES", &scores);
    let server = Server::start_command(cmd);
    let play = |greeting_has: &str| -> u32 {
        let mut client = crate::support::connect_from(server.addr, "127.0.0.2");
        let mut greeting = client.recv_msg().unwrap().unwrap();
        if greeting.contains("What is your name?") {
            greeting = echo(&mut client, "Ada");
        }
        assert!(greeting.contains(greeting_has), "{greeting}");
        // Binary search: at most 7 guesses for 1..=100.
        let (mut low, mut high) = (1, 100);
        for tries in 1..=7 {
            let guess = (low + high) / 2;
            let answer = echo(&mut client, &guess.to_string());
            match answer.as_str() {
                "higher" => low = guess + 1,
                "lower" => high = guess - 1,
                right => {
                    assert!(
                        right.starts_with(&format!("Right, in {tries} tries.")),
                        "{right}"
                    );
                    return tries;
                }
            }
        }
        panic!("binary search took more than 7 guesses");
    };
    let first = play("Guess my number from 1 to 100, Ada.");
    let second = play(&format!("Your best: {first} tries."));
    let kept: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&scores).unwrap()).unwrap();
    assert_eq!(kept["Ada"], first.min(second));
}

#[test]
fn a_program_that_cannot_be_run_stops_the_server_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("plugin.py");
    fs::write(&not_executable, "print('hi')\n").unwrap();
    let not_executable = not_executable.display().to_string();
    for (program, reason) in [
        (
            "no-such-netlab-plugin",
            "no-such-netlab-plugin was not found in PATH".to_owned(),
        ),
        (
            not_executable.as_str(),
            format!("{not_executable} is not an executable file"),
        ),
    ] {
        let mut cmd = netlab();
        cmd.args(["serve", "exec", "--port", "0", "--", program])
            .env("XDG_DATA_HOME", dir.path());
        let out = run_with_input(cmd, "");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.ends_with(&format!("netlab: {reason}\n")), "{stderr}");
        assert!(out.stdout.is_empty(), "never listening");
    }
}

#[test]
fn stderr_is_logged_escaped_and_bounded() {
    let plugin = Plugin::new(
        "import sys\nsys.stderr.write('INFO forged\\x1b[31m line\\n')\n\
         for i in range(4000):\n    sys.stderr.write('noise ' * 10 + '\\n')\n\
         sys.stderr.flush()\nprint('hi', flush=True)\nsys.stdin.readline()\n",
    );
    let server = plugin.serve(&[]);
    let client = server.client(); // reads the greeting, written after the noise
    let log = server.wait_for_log("not logged");
    assert!(
        log.contains(&format!(
            "{}: program: \"INFO forged\\u{{1b}}[31m line\"",
            client.local_addr().unwrap()
        )),
        "{}",
        &log[..log.len().min(2000)]
    );
    let logged = log.matches("program: \"noise").count();
    assert!(
        logged < 4000 && logged > 500,
        "{logged} lines of noise logged"
    );
    assert!(
        log.len() < 2 * 64 * 1024 + 64 * 1024,
        "{} bytes of log",
        log.len()
    );
}
