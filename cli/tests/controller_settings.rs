//! `barrage controller` reads every setting from its environment variable, as an ECS task
//! definition gives them, and refuses a bad one before anything starts (exit 2), naming the
//! setting and the rule.

use std::process::{Command, Output};

/// `barrage controller` with only `vars` set among the BARRAGE_ variables.
fn controller_with(vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_barrage"));
    command.arg("controller");
    for (name, _) in std::env::vars() {
        if name.starts_with("BARRAGE_") {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().copied());
    command.output().expect("barrage runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_value_in_the_environment_is_refused_with_its_variable_and_rule() {
    for (var, value, rule) in [
        ("BARRAGE_WATCH_POLL", "10ms", "must be at least 100ms"),
        ("BARRAGE_LAUNCHER", "k8s", "k8s"),
        ("BARRAGE_WORKERS", "0", "1..=256"),
        ("BARRAGE_METRICS_ADDR", "nowhere", "must be IP:PORT"),
    ] {
        let out = controller_with(&[(var, value)]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {text}");
        assert!(
            text.contains(rule),
            "{var}={value}: the rule is missing from: {text}"
        );
        assert!(
            text.contains(var),
            "{var}={value}: the variable is not named in: {text}"
        );
    }
}

#[test]
fn missing_settings_are_named_with_their_variables() {
    let out = controller_with(&[("BARRAGE_LAUNCHER", "ecs")]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for var in [
        "BARRAGE_STORE",
        "BARRAGE_BLOBS",
        "BARRAGE_ECS_CLUSTER",
        "BARRAGE_AGENT_TASK_DEFINITION",
    ] {
        assert!(text.contains(var), "{var} missing from: {text}");
    }
}

#[test]
fn the_help_lists_every_variable_beside_its_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_barrage"))
        .args(["controller", "--help"])
        .output()
        .expect("barrage runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for (flag, var) in [
        ("--store", "BARRAGE_STORE"),
        ("--resync", "BARRAGE_RESYNC_PERIOD"),
        ("--agent-heartbeat", "BARRAGE_AGENT_HEARTBEAT"),
        ("--assign-public-ip", "BARRAGE_ASSIGN_PUBLIC_IP"),
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
        assert!(
            text.contains(&format!("[env: {var}")),
            "{var} missing from:\n{text}"
        );
    }
}
