//! The binary's command line (this test also makes `cargo test` build the binary that the
//! end-to-end crate in `tests/` drives).

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrobase"))
}

#[test]
fn version_and_help_describe_the_binary() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ferrobase "));
    let out = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("serve"), "{help}");
    assert!(help.contains("superuser"), "{help}");
    let out = bin().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--http") && help.contains("--dir") && help.contains("--dev"));
}

#[test]
fn superuser_commands_report_errors_with_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let run = |args: &[&str]| {
        let out = bin().args(args).arg("--dir").arg(&dir).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert!(run(&["superuser", "create", "a@example.com", "Passw0rd-123"]).0);
    let (ok, err) = run(&["superuser", "create", "a@example.com", "Passw0rd-123"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert!(run(&["superuser", "update", "a@example.com", "Other-Passw0rd"]).0);
    let (ok, err) = run(&["superuser", "update", "b@example.com", "Other-Passw0rd"]);
    assert!(!ok && err.contains("no superuser"), "{err}");
    let (ok, _) = run(&["superuser", "create", "c@example.com", "short"]);
    assert!(!ok, "a too short password is refused");
    let (ok, _) = run(&["superuser", "create", "not-an-email", "Passw0rd-123"]);
    assert!(!ok, "an invalid email is refused");
    assert!(run(&["superuser", "delete", "a@example.com"]).0);
    assert!(!run(&["superuser", "delete", "a@example.com"]).0);
    assert!(dir.join("data.db").exists());
}
