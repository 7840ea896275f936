//! # metrics — the controller's `/metrics` (Prometheus text) and `/healthz`
//!
//! [`Metrics`] is a handful of atomics and small maps the runtime updates; [`render`] turns a
//! snapshot into the Prometheus text exposition format; [`serve`] answers HTTP/1.1 `GET`s on
//! a tokio `TcpListener`, one short response per connection. Hand-written on purpose: two
//! endpoints do not justify an HTTP stack. It must not block the runtime or hold a lock
//! across an await.
//!
//! [`render`]: Metrics::render

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use barrage_crds::status::Phase;
use tokio::net::TcpListener;

use barrage_exposition::escape;
/// The small HTTP server and label escaping are the agent's (one implementation for both).
pub use barrage_exposition::{Exposition, respond, serve};

/// `(service, operation, calls, throttles, errors)` from an adapter that counts its own calls.
pub type AwsCallSource =
    Arc<dyn Fn() -> Vec<(&'static str, &'static str, u64, u64, u64)> + Send + Sync>;

/// `(calls, throttles, errors)` by `(service, operation)`.
type CallCounts = BTreeMap<(&'static str, &'static str), (u64, u64, u64)>;

/// What the controller exposes.
#[derive(Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    lease_held: AtomicBool,
    errors: Mutex<BTreeMap<String, u64>>,
    phases: Mutex<BTreeMap<String, Phase>>,
    calls: Mutex<CallCounts>,
    sources: Mutex<Vec<AwsCallSource>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("reconciles", &self.reconciles)
            .field("lease_held", &self.lease_held)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One reconcile ran.
    pub fn reconciled(&self) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
    }

    /// Reconciles so far.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    /// An error of `kind` (`conflict`, `throttled`, `transient`, `launch`, `report`, …).
    pub fn error(&self, kind: &str) {
        *lock(&self.errors).entry(kind.to_string()).or_default() += 1;
    }

    /// Errors of `kind` so far.
    pub fn errors(&self, kind: &str) -> u64 {
        lock(&self.errors).get(kind).copied().unwrap_or(0)
    }

    /// The lease is held (or not).
    pub fn set_lease_held(&self, held: bool) {
        self.lease_held.store(held, Ordering::Relaxed);
    }

    /// Whether the lease is held.
    pub fn lease_held(&self) -> bool {
        self.lease_held.load(Ordering::Relaxed)
    }

    /// `name` is in `phase` (None: the record is gone).
    pub fn set_phase(&self, name: &str, phase: Option<Phase>) {
        let mut phases = lock(&self.phases);
        match phase {
            Some(p) => {
                phases.insert(name.to_string(), p);
            }
            None => {
                phases.remove(name);
            }
        }
    }

    /// One AWS call made by the runtime itself (store and blob calls).
    pub fn aws_call(&self, service: &'static str, op: &'static str, throttled: bool, failed: bool) {
        let mut calls = lock(&self.calls);
        let e = calls.entry((service, op)).or_default();
        e.0 += 1;
        e.1 += u64::from(throttled);
        e.2 += u64::from(failed && !throttled);
    }

    /// Adds an adapter that counts its own AWS calls (the ECS launcher).
    pub fn add_aws_source(&self, source: AwsCallSource) {
        lock(&self.sources).push(source);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "# HELP barrage_reconciles_total Reconciles run.");
        let _ = writeln!(out, "# TYPE barrage_reconciles_total counter");
        let _ = writeln!(out, "barrage_reconciles_total {}", self.reconciles());

        let _ = writeln!(
            out,
            "# HELP barrage_reconcile_errors_total Reconcile errors by kind."
        );
        let _ = writeln!(out, "# TYPE barrage_reconcile_errors_total counter");
        for (kind, n) in lock(&self.errors).iter() {
            let _ = writeln!(
                out,
                "barrage_reconcile_errors_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }

        let _ = writeln!(out, "# HELP barrage_loadtests LoadTests by phase.");
        let _ = writeln!(out, "# TYPE barrage_loadtests gauge");
        let phases = lock(&self.phases);
        for phase in Phase::ALL {
            let n = phases.values().filter(|p| *p == phase).count();
            let _ = writeln!(out, "barrage_loadtests{{phase=\"{}\"}} {n}", phase.as_str());
        }
        let _ = writeln!(
            out,
            "# HELP barrage_loadtest_phase The phase each LoadTest is in (1 for its current phase)."
        );
        let _ = writeln!(out, "# TYPE barrage_loadtest_phase gauge");
        for (name, phase) in phases.iter() {
            let _ = writeln!(
                out,
                "barrage_loadtest_phase{{load_test=\"{}\",phase=\"{}\"}} 1",
                escape(name),
                phase.as_str()
            );
        }
        drop(phases);

        let mut calls = lock(&self.calls).clone();
        let sources: Vec<AwsCallSource> = lock(&self.sources).clone();
        for source in sources {
            for (service, op, c, t, e) in source() {
                let entry = calls.entry((service, op)).or_default();
                entry.0 += c;
                entry.1 += t;
                entry.2 += e;
            }
        }
        let _ = writeln!(
            out,
            "# HELP barrage_aws_calls_total AWS API calls by service and operation."
        );
        let _ = writeln!(out, "# TYPE barrage_aws_calls_total counter");
        for ((service, op), (c, _, _)) in &calls {
            let _ = writeln!(
                out,
                "barrage_aws_calls_total{{service=\"{service}\",operation=\"{op}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP barrage_aws_throttles_total AWS API calls answered with a throttle."
        );
        let _ = writeln!(out, "# TYPE barrage_aws_throttles_total counter");
        for ((service, op), (_, t, _)) in &calls {
            let _ = writeln!(
                out,
                "barrage_aws_throttles_total{{service=\"{service}\",operation=\"{op}\"}} {t}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP barrage_aws_errors_total AWS API calls that failed otherwise."
        );
        let _ = writeln!(out, "# TYPE barrage_aws_errors_total counter");
        for ((service, op), (_, _, e)) in &calls {
            let _ = writeln!(
                out,
                "barrage_aws_errors_total{{service=\"{service}\",operation=\"{op}\"}} {e}"
            );
        }

        let _ = writeln!(
            out,
            "# HELP barrage_lease_held 1 while this controller holds the leader lease."
        );
        let _ = writeln!(out, "# TYPE barrage_lease_held gauge");
        let _ = writeln!(out, "barrage_lease_held {}", u8::from(self.lease_held()));
        out
    }
}

/// Binds `addr` (port 0: any free port; the listener says which).
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

impl Exposition for Metrics {
    fn render(&self) -> String {
        Metrics::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[test]
    fn the_text_format_counts_what_happened() {
        let m = Metrics::new();
        m.reconciled();
        m.reconciled();
        m.error("conflict");
        m.set_phase("a", Some(Phase::Running));
        m.set_phase("b", Some(Phase::Running));
        m.set_phase("c", Some(Phase::Failed));
        m.set_phase("c", None);
        m.aws_call("dynamodb", "GetItem", true, true);
        m.aws_call("dynamodb", "GetItem", false, false);
        m.add_aws_source(Arc::new(|| vec![("ecs", "RunTask", 3, 1, 0)]));
        m.set_lease_held(true);
        let text = m.render();
        for line in [
            "barrage_reconciles_total 2",
            "barrage_reconcile_errors_total{kind=\"conflict\"} 1",
            "barrage_loadtests{phase=\"Running\"} 2",
            "barrage_loadtests{phase=\"Failed\"} 0",
            "barrage_loadtest_phase{load_test=\"a\",phase=\"Running\"} 1",
            "barrage_aws_calls_total{service=\"dynamodb\",operation=\"GetItem\"} 2",
            "barrage_aws_throttles_total{service=\"dynamodb\",operation=\"GetItem\"} 1",
            "barrage_aws_calls_total{service=\"ecs\",operation=\"RunTask\"} 3",
            "barrage_aws_throttles_total{service=\"ecs\",operation=\"RunTask\"} 1",
            "barrage_lease_held 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        assert!(
            !text.contains("load_test=\"c\""),
            "a removed record has no phase"
        );
    }

    #[tokio::test]
    async fn the_server_answers_metrics_healthz_and_404_then_stops() {
        let listener = bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Metrics::new());
        metrics.reconciled();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics.clone(), async {
            let _ = stopped.await;
        }));
        let m = get(addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
        assert!(m.contains("barrage_reconciles_total 1"), "{m}");
        let h = get(addr, "/healthz").await;
        assert!(
            h.starts_with("HTTP/1.1 200 OK") && h.ends_with("ok\n"),
            "{h}"
        );
        let n = get(addr, "/nope").await;
        assert!(n.starts_with("HTTP/1.1 404"), "{n}");
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops")
            .expect("no panic");
    }

    #[test]
    fn only_get_is_allowed() {
        let (status, _, _) = respond("POST /metrics HTTP/1.1", &Metrics::new());
        assert!(status.starts_with("405"));
    }
}
