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

#[tokio::test]
async fn log_lines_are_json_with_log_format_json_and_plain_in_a_file() {
    let s = ferrobase_tests::Server::start_with(
        env!("CARGO_BIN_EXE_ferrobase"),
        &[("FERROBASE_LOG_FORMAT", "json")],
    )
    .await;
    // a failed sign-in and a request make a few lines
    let _ = s
        .call(
            "POST",
            "/api/collections/_superusers/auth-with-password",
            None,
            Some(serde_json::json!({"identity": "x@example.com", "password": "wrong-password"})),
        )
        .await;
    let log = s.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
        assert!(v["fields"].is_object(), "{l}");
    }
    assert!(!log.contains('\u{1b}'), "no colour codes");
    drop(s);
    // the human format writes no colour codes to a file either
    let s = ferrobase_tests::Server::start(env!("CARGO_BIN_EXE_ferrobase")).await;
    let log = s.log();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log file: {log}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(log.lines().next().unwrap_or("")).is_err());
}
