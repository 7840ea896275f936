//! An AWS endpoint that accepts connections and never answers: commands that call it end
//! with a clear error within their operation timeout (`BARRAGE_AWS_OPERATION_TIMEOUT`)
//! instead of hanging. Every SDK client of both binaries is built by
//! `barrage_store::aws::sdk_config`, which sets the operation and attempt timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use barrage_system_tests::{binary, run_bounded};

/// Accepts every connection and holds it open, answering nothing.
fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().flatten() {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[test]
fn commands_against_an_endpoint_that_never_answers_fail_within_the_operation_timeout() {
    let endpoint = silent_endpoint();
    for args in [
        vec!["get"],
        vec!["report", "some-test", "--out", "/tmp/barrage-hung-report"],
    ] {
        let mut cmd = Command::new(binary("barrage"));
        cmd.args(&args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("BARRAGE_STORE", "dynamodb://hung")
            .env("BARRAGE_BLOBS", "s3://hung")
            .env("BARRAGE_AWS_OPERATION_TIMEOUT", "3s")
            .env("BARRAGE_AWS_ATTEMPT_TIMEOUT", "1s");
        let started = Instant::now();
        // The bound only keeps a hang from stalling the suite; the command must end by itself.
        let out = run_bounded(&mut cmd, Duration::from_secs(90));
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "hung endpoint: barrage {} exited {:?} after {:.1}s: {}",
            args.join(" "),
            out.status.code(),
            took.as_secs_f64(),
            stderr.lines().last().unwrap_or_default()
        );
        assert_eq!(out.status.code(), Some(3), "a run error: {stderr}");
        assert!(
            stderr.to_ascii_lowercase().contains("timeout")
                || stderr.to_ascii_lowercase().contains("timed out"),
            "the error says it timed out: {stderr}"
        );
    }
}
