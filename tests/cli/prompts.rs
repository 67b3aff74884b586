//! Prompts with defaults (lab task 4): asked on a terminal, never without one.

use rexpect::session::PtySession;

use crate::support::{Server, in_terminal, netlab, run_with_input};

fn assert_exited_zero(session: &PtySession) {
    let status = session.process().wait().unwrap();
    assert_eq!(
        format!("{status:?}").rsplit(", ").next(),
        Some("0)"),
        "{status:?}"
    );
}

#[test]
fn terminal_prompts_take_defaults_and_ask_again_after_bad_ports() {
    let server = Server::start(&["echo"]);
    let mut cmd = netlab();
    cmd.arg("connect");
    let mut term = in_terminal(cmd);

    term.exp_string("Host [127.0.0.1]").unwrap();
    term.send_line("").unwrap(); // the default
    term.exp_string("Port [9090]").unwrap();
    term.send_line("abc").unwrap();
    term.exp_string("\"abc\" is not a port").unwrap();
    term.exp_string("Port [9090]").unwrap();
    term.send_line("70000").unwrap();
    term.exp_string("70000 is out of range").unwrap();
    term.exp_string("Port [9090]").unwrap();
    term.send_line(&server.port()).unwrap();

    term.exp_string(&format!("connected to 127.0.0.1:{}", server.port()))
        .unwrap();
    term.exp_string("netlab echo server").unwrap();
    term.send_line("/quit").unwrap();
    term.exp_eof().unwrap();
    assert_exited_zero(&term);
}

#[test]
fn backspace_and_ctrl_u_correct_an_answer() {
    let server = Server::start(&["echo"]);
    let mut cmd = netlab();
    cmd.args(["connect", "--host", "127.0.0.1"]);
    let mut term = in_terminal(cmd);
    term.exp_string("Port [9090]").unwrap();
    // "abc", erased by three Backspaces; "77", erased by Ctrl-U; then the real port.
    term.send("abc\x7f\x7f\x7f77\x15").unwrap();
    term.send_line(&server.port()).unwrap();
    term.exp_string(&format!("connected to 127.0.0.1:{}", server.port()))
        .unwrap();
    term.send_line("/quit").unwrap();
    term.exp_eof().unwrap();
    assert_exited_zero(&term);
}

#[test]
fn ctrl_d_at_a_question_ends_the_program_with_a_reason() {
    for (args, question) in [
        (&["connect", "--host", "127.0.0.1"][..], "Port [9090]"),
        (&["connect"][..], "Host [127.0.0.1]"),
        (&["serve", "echo"][..], "Port (0: any free port) [9090]"),
    ] {
        let mut cmd = netlab();
        cmd.args(args);
        let mut term = in_terminal(cmd);
        term.exp_string(question).unwrap();
        term.send("12").unwrap();
        // Ctrl-D after some text is not the end of input, as in a shell...
        term.send_control('d').unwrap();
        term.send("\x15").unwrap();
        // ... on an empty line it is.
        term.send_control('d').unwrap();
        term.exp_string("input ended (Ctrl-D)").unwrap();
        term.exp_eof().unwrap();
        let status = term.process().wait().unwrap();
        assert_eq!(
            format!("{status:?}").rsplit(", ").next(),
            Some("1)"),
            "{args:?}: {status:?}"
        );
    }
}

#[test]
fn server_asks_for_its_port_on_a_terminal_and_stops_on_ctrl_c() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = netlab();
    cmd.args(["serve", "echo"])
        .env("XDG_DATA_HOME", data.path());
    let mut term = in_terminal(cmd);
    term.exp_string("Port (0: any free port) [9090]").unwrap();
    term.send_line("0").unwrap();
    term.exp_regex(r"listening on 127\.0\.0\.1:\d+").unwrap();
    term.send_control('c').unwrap();
    term.exp_eof().unwrap();
    assert_exited_zero(&term);
}

#[test]
fn without_a_terminal_the_client_takes_defaults_and_does_not_hang() {
    // Whatever is at 127.0.0.1:9090 (usually nothing), the client must not wait for an
    // answer to a question, and must have used the default address.
    let mut cmd = netlab();
    cmd.arg("connect");
    let out = run_with_input(cmd, "");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("Port") && !stderr.contains("Host"),
        "{stderr}"
    );
    if !out.status.success() {
        assert!(
            stderr.starts_with("netlab: could not connect to 127.0.0.1:9090"),
            "{stderr}"
        );
    }
}

#[test]
fn without_a_terminal_the_server_takes_the_default_port_or_the_next_free_one() {
    let mut cmd = netlab();
    cmd.args(["serve", "echo"]);
    let server = Server::start_command(cmd);
    let port = server.addr.port();
    assert!(
        (9090..=9140).contains(&port),
        "listening on {}",
        server.addr
    );
}
