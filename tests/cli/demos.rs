//! The lab-task demonstrations (scripts/demo/, `make taskN`) still show what they claim.
//! Each checks its own claims and fails otherwise; here they run against this build.
//! Task 4 needs util-linux's `script` and task 9 runs cargo itself: those two are left to
//! `make tasks`.

use std::process::Command;

fn demonstrate(task: u32) {
    crate::support::required("bash").unwrap();
    crate::support::python3(); // tasks 5, 8 and 9 talk to the server from Python
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/demo/task{task}.sh"))
        .current_dir(root)
        .env("NETLAB_BIN", env!("CARGO_BIN_EXE_netlab"))
        .env_remove("NETLAB_PORT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "task {task}: {stderr}\n{stdout}");
    assert!(
        stdout.starts_with(&format!("\n=== Task {task}: ")),
        "a heading first:\n{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("=== Task {task} shown: ")),
        "a closing line last:\n{stdout}"
    );
    assert_eq!(stderr, "", "nothing on stderr");
}

#[test]
fn demonstration_of_task3_several_clients() {
    demonstrate(3);
}

#[test]
fn demonstration_of_task5_service_log() {
    demonstrate(5);
}

#[test]
fn demonstration_of_task6_busy_port() {
    demonstrate(6);
}

#[test]
fn demonstration_of_task7_identification() {
    demonstrate(7);
}

#[test]
fn demonstration_of_task8_authentication() {
    demonstrate(8);
}

#[test]
fn demonstration_of_task10_many_messages() {
    demonstrate(10);
}
