//! Bad flags and environment values are usage errors (exit 2) that name the culprit.

use crate::support::{netlab, run_with_input};

fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = netlab();
    cmd.args(args).envs(env.iter().copied());
    let out = run_with_input(cmd, "");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_values_name_the_flag() {
    let err = usage_error(&["connect", "--port", "70000"], &[]);
    assert!(err.contains("--port"), "{err}");
    let err = usage_error(&["connect", "--port", "0"], &[]);
    assert!(err.contains("--port"), "{err}");
    let err = usage_error(&["serve", "echo", "--idle-timeout", "0s"], &[]);
    assert!(
        err.contains("--idle-timeout") && err.contains("longer than zero"),
        "{err}"
    );
    let err = usage_error(&["serve", "echo", "--max-frame", "10"], &[]);
    assert!(err.contains("--max-frame"), "{err}");
    let err = usage_error(&["serve", "echo", "--codec", "json"], &[]);
    assert!(err.contains("--codec"), "{err}");
}

#[test]
fn bad_environment_values_are_usage_errors_too() {
    let err = usage_error(&["connect"], &[("NETLAB_PORT", "abc")]);
    assert!(
        err.contains(
            "invalid value 'abc' for 'NETLAB_PORT (the environment variable for --port <PORT>)'"
        ),
        "{err}"
    );
    let err = usage_error(
        &["bench", "--duration", "1s"],
        &[("NETLAB_BENCH_CONNS", "0")],
    );
    assert!(err.contains("NETLAB_BENCH_CONNS"), "{err}");
    // A flag typed on the command line is named as typed, whatever the environment.
    let err = usage_error(&["connect", "--port", "abc"], &[("NETLAB_PORT", "1")]);
    assert!(err.contains("for '--port <PORT>'"), "{err}");
}

#[test]
fn help_lists_defaults_and_environment_variables() {
    let out = netlab().args(["serve", "echo", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "[default: 9090]",
        "[env: NETLAB_PORT=]",
        "[default: 65536]",
        "[default: 5m]",
        "[default: 10s]",
        "[default: 1024]",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}

#[test]
fn version_and_completions() {
    let out = netlab().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("netlab {}\n", env!("CARGO_PKG_VERSION"))
    );

    let out = netlab().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for word in ["_netlab", "serve", "connect", "--port-retries"] {
        assert!(script.contains(word), "completion script lacks {word}");
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let err = usage_error(&["serve", "chat"], &[]);
    assert!(err.contains("chat"), "{err}");
}

#[test]
fn help_says_which_modes_cap_connections_per_address() {
    let out = netlab().args(["serve", "echo", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "--max-per-address <N>",
        "[env: NETLAB_MAX_PER_ADDRESS=]",
        "32 for ident",
        "no cap for echo",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
    let out = netlab().args(["serve", "auth", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "--registration <REGISTRATION>",
        "- open:",
        "- closed:",
        "reveals nothing",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}

#[test]
fn help_names_the_log_and_port_settings() {
    let out = netlab().args(["serve", "echo", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "[env: NETLAB_LOG_CONFIG=]",
        "[env: NETLAB_PORT_RETRIES=]",
        "[default: 50]",
    ] {
        assert!(help.contains(expected), "missing {expected:?} in:\n{help}");
    }
}
