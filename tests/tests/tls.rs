//! Kafka over TLS against the real broker's TLS listeners (issue 18.1): `scripts/services.sh`
//! gives the broker SSL and SASL_SSL listeners with a certificate of a test CA it makes
//! (scripts/tls-material.sh), plus two that must be refused: a certificate for another host
//! and an expired one. `barrage run` and the operator send over SSL with the CA given by
//! `spec.kafka.security.ssl.caLocation`, and over SASL_SSL with SCRAM credentials from Secrets
//! Manager; the records are read back through the plaintext listener by a client of the test.
//! An unknown CA, a host-name mismatch and an expired certificate each end the run with exit 3
//! and an error naming the cause, at once, never the "no broker answered" timeout.
//!
//! Needs `BARRAGE_KAFKA_SSL_BOOTSTRAP` and the others `scripts/services.sh env` prints when
//! the broker has its TLS listeners. (The spec has no client certificate, so no mTLS case.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use barrage_system_tests::operator::{Operator, lag_only, text};
use barrage_system_tests::spec::{SaslMechanism, Secret, Spec};
use barrage_system_tests::{
    aws_endpoint, barrage_run, invalid_reasons, kafka, summary_count, temp_file, unique,
};

/// The TLS listeners and the CAs, as `scripts/services.sh env` exports them.
struct Tls {
    ssl: String,
    sasl_ssl: String,
    wrong_host: String,
    expired: String,
    ca: String,
    other_ca: String,
}

fn tls() -> Option<Tls> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(Tls {
            ssl: var("BARRAGE_KAFKA_SSL_BOOTSTRAP")?,
            sasl_ssl: var("BARRAGE_KAFKA_SASL_SSL_BOOTSTRAP")?,
            wrong_host: var("BARRAGE_KAFKA_SSL_WRONG_HOST_BOOTSTRAP")?,
            expired: var("BARRAGE_KAFKA_SSL_EXPIRED_BOOTSTRAP")?,
            ca: var("BARRAGE_KAFKA_TLS_CA")?,
            other_ca: var("BARRAGE_KAFKA_TLS_OTHER_CA")?,
        })
    })();
    if found.is_none() {
        let msg = "no TLS listeners: BARRAGE_KAFKA_SSL_BOOTSTRAP and the others are not set (run \
                   `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`; a broker started \
                   by an older services.sh needs `scripts/services.sh down kafka && scripts/services.sh up`)";
        assert!(
            std::env::var("BARRAGE_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "{msg}"
        );
        eprintln!("skipped: {msg}");
    }
    found
}

/// A LoadTest of 200 records/s for 2 s to `bootstrap`, its security still to add.
fn spec(name: &str, bootstrap: &str, topic: &str) -> Spec {
    Spec::new(name, topic, bootstrap)
        .partitions(2)
        .rate(200)
        .secs(2)
}

/// `barrage run` of `spec_text`: exit code, stdout, stderr and how long it took.
fn run(spec_text: &str) -> (Option<i32>, String, String, Duration) {
    let spec = temp_file("tls.yaml", spec_text);
    let started = Instant::now();
    let (out, _) = barrage_run(
        &spec,
        &["--connect-timeout", "10s"],
        Duration::from_secs(120),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        started.elapsed(),
    )
}

/// Records of `topic` read back through the plaintext listener, until `expected` or 30 s.
fn read_back(topic: &str, expected: u64) -> u64 {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            kafka().expect("the plaintext listener"),
        )
        .set("group.id", unique("barrage-test-tls"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while Instant::now() < deadline && n < expected {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            n += 1;
        }
    }
    // A duplicate would come after the expected count: look a moment longer.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            n += 1;
        }
    }
    n
}

/// The run ended well (exit 0, or 3 for schedule lag alone) and every record is in the topic.
fn assert_all_acked_and_read_back(topic: &str, code: Option<i32>, out: &str, err: &str) -> u64 {
    let lagged = code == Some(3) && lag_only(&invalid_reasons(out));
    assert!(
        code == Some(0) || lagged,
        "barrage run failed:\n{out}\n{err}"
    );
    let acked = summary_count(out, "records acked");
    assert_eq!(acked, 400, "200/s for 2 s:\n{out}");
    assert_eq!(summary_count(out, "records failed"), 0, "{out}");
    let read = read_back(topic, acked);
    assert_eq!(read, acked, "records read back");
    read
}

#[test]
fn ssl_with_the_test_ca_acks_every_record_and_they_read_back() {
    let Some(tls) = tls() else { return };
    let topic = unique("barrage-tls-ssl");
    let (code, out, err, took) = run(&spec("tls-ssl", &tls.ssl, &topic).ssl(&tls.ca, true).yaml());
    let read = assert_all_acked_and_read_back(&topic, code, &out, &err);
    println!(
        "tls: SSL to {} with caLocation: exit {code:?} in {took:?}, 400 acked, {read} read back",
        tls.ssl
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_with_scram_credentials_from_secrets_manager_acks_every_record() {
    let Some(tls) = tls() else { return };
    if aws_endpoint().is_none() {
        return;
    }
    let user = std::env::var("BARRAGE_KAFKA_SASL_SCRAM_USERNAME").unwrap_or("barrage-scram".into());
    let password =
        std::env::var("BARRAGE_KAFKA_SASL_SCRAM_PASSWORD").unwrap_or("barrage-scram-secret".into());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let arn = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(unique("barrage-test/sasl-ssl"))
        .secret_string(format!(
            r#"{{"username":"{user}","password":"{password}"}}"#
        ))
        .send()
        .await
        .expect("create_secret in the emulator")
        .arn()
        .expect("an ARN")
        .to_string();
    let topic = unique("barrage-tls-sasl-ssl");
    let text = spec("tls-sasl-ssl", &tls.sasl_ssl, &topic)
        .ssl(&tls.ca, true)
        .sasl(
            SaslMechanism::ScramSha256,
            None,
            Secret::SecretsManagerArn(arn),
        )
        .yaml();
    let (code, out, err, took) = tokio::task::spawn_blocking(move || run(&text))
        .await
        .expect("the run");
    assert!(
        !out.contains(&password) && !err.contains(&password),
        "no password printed"
    );
    let read = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || assert_all_acked_and_read_back(&topic, code, &out, &err)
    })
    .await
    .expect("read back");
    println!(
        "tls: SASL_SSL (SCRAM-SHA-256 from Secrets Manager) to {}: exit {code:?} in {took:?}, 400 acked, {read} read back",
        tls.sasl_ssl
    );
}

#[test]
fn an_unknown_ca_a_host_name_mismatch_and_an_expired_certificate_each_fail_at_once_naming_the_cause()
 {
    let Some(tls) = tls() else { return };
    let cases = [
        (
            "unknown CA",
            &tls.ssl,
            &tls.other_ca,
            "self-signed certificate in certificate chain",
            "caLocation",
        ),
        (
            "host-name mismatch",
            &tls.wrong_host,
            &tls.ca,
            "IP address mismatch",
            "endpointIdentification",
        ),
        (
            "expired certificate",
            &tls.expired,
            &tls.ca,
            "certificate has expired",
            "has expired",
        ),
    ];
    for (what, bootstrap, ca, cause, hint) in cases {
        let topic = unique("barrage-tls-bad");
        let (code, out, err, took) = run(&spec("tls-bad", bootstrap, &topic).ssl(ca, true).yaml());
        let line = err
            .lines()
            .rfind(|l| l.starts_with("error:"))
            .unwrap_or_default();
        println!("tls: {what} at {bootstrap}: exit {code:?} after {took:?}: {line}");
        assert_eq!(code, Some(3), "{what}: a run error\n{out}\n{err}");
        assert!(line.contains("TLS to Kafka at"), "{what}: {line}");
        assert!(
            line.contains(cause),
            "{what}: names the cause {cause:?}: {line}"
        );
        assert!(line.contains(hint), "{what}: says what to check: {line}");
        assert!(
            !line.contains("no broker answered"),
            "{what}: not a timeout: {line}"
        );
    }
    // The mismatch is the host-name check only: without it the same listener is accepted.
    let topic = unique("barrage-tls-nohostcheck");
    let (code, out, err, _) = run(&spec("tls-nocheck", &tls.wrong_host, &topic)
        .ssl(&tls.ca, false)
        .yaml());
    let read = assert_all_acked_and_read_back(&topic, code, &out, &err);
    println!(
        "tls: the wrong-host listener with endpointIdentification: false: exit {code:?}, {read} read back"
    );
}

#[test]
fn the_operator_runs_a_load_test_over_ssl() {
    let (Some(tls), Some(_)) = (tls(), aws_endpoint()) else {
        return;
    };
    let op = Operator::start("tls");
    let name = unique("e2e-tls");
    let topic = unique("barrage-e2e-tls");
    let file = op.dir.join("tls.yaml");
    std::fs::write(
        &file,
        spec(&name, &tls.ssl, &topic).ssl(&tls.ca, true).yaml(),
    )
    .unwrap();
    let out = op.apply_wait(&file, Duration::from_secs(120), 0);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let status = op.get(&name)["status"].clone();
    let acked = status["summary"]["recordsAcked"].as_u64().unwrap_or(0);
    let read = read_back(&topic, acked);
    println!(
        "tls: operator over SSL: phase {}, {acked} acked, {read} read back; {}",
        status["phase"],
        stdout.lines().next().unwrap_or_default()
    );
    assert_eq!(acked, 400, "{}\n{}", text(&out), op.controller_log());
    assert_eq!(read, acked);
}
