//! # metrics — the agent's own `/metrics` (Prometheus text) and `/healthz`
//!
//! A scraper pointed at a running agent sees, live: its share of the target rate now, the
//! records sent / acknowledged / failed (by kind) / dropped / late, what is in flight, the
//! schedule lag and produce latency of the last closed interval, and the agent's phase.
//! [`AgentMetrics`] reads the [`Recorder`] the engine already fills (atomics and the last
//! interval's summary), so scraping adds nothing to the send path.
//!
//! The HTTP side is `barrage-exposition`'s small server, which the controller's metrics use too.
//!
//! Where it listens is `BARRAGE_METRICS_ADDR` (see `barrage_crds::env`): port 0 takes any free
//! port (several agents on one machine), and the bound address goes to the log and to the
//! agent's status record (`metricsAddr`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use barrage_crds::agent_status::AgentPhase;
pub use barrage_exposition::{Exposition, escape, serve};

use crate::recorder::{CounterSnapshot, LastInterval, Recorder};
use barrage_crds::schedule::Profile;

/// Who the agent is, for the `barrage_agent_info` labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub load_test: String,
    pub run_id: String,
    pub slot: u32,
    pub incarnation: u32,
}

/// The schedule the agent follows: its share of the fleet's profile from `origin`.
#[derive(Debug, Clone)]
struct Target {
    profile: Profile,
    of: u32,
    origin: Instant,
}

#[derive(Debug, Default)]
struct State {
    phase: AgentPhase,
    recorder: Option<Arc<Recorder>>,
    target: Option<Target>,
    addr: Option<String>,
    delivery: crate::spool::Progress,
}

/// What the agent exposes. Cheap to update; [`AgentMetrics::render`] does the work at scrape
/// time.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    identity: Identity,
    state: Mutex<State>,
}

impl AgentMetrics {
    /// Metrics of one agent, before it has a recorder or a schedule (everything reads zero).
    pub fn new(identity: Identity) -> AgentMetrics {
        AgentMetrics {
            identity,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address the endpoint is bound to (written to the status record).
    pub fn set_addr(&self, addr: SocketAddr) {
        self.state().addr = Some(addr.to_string());
    }

    /// The bound address, if the endpoint is served.
    pub fn addr(&self) -> Option<String> {
        self.state().addr.clone()
    }

    /// Where the interval uploads stand (uploaded, spooled, undelivered).
    pub fn set_delivery(&self, progress: &crate::spool::Progress) {
        self.state().delivery.clone_from(progress);
    }

    /// The agent entered `phase`.
    pub fn set_phase(&self, phase: AgentPhase) {
        self.state().phase = phase;
    }

    /// The agent started on its shared clock: counters come from `recorder`, and the target
    /// rate is the share `1/of` of `profile` at the time since `origin`.
    pub fn running(&self, recorder: Arc<Recorder>, profile: Profile, of: u32, origin: Instant) {
        let mut s = self.state();
        s.recorder = Some(recorder);
        s.target = Some(Target {
            profile,
            of: of.max(1),
            origin,
        });
    }

    /// The counters so far, once the agent runs (`None` before its start).
    pub fn counters(&self) -> Option<CounterSnapshot> {
        self.state()
            .recorder
            .as_ref()
            .map(|r| r.counters().snapshot())
    }

    /// A new fleet assignment (re-split or new profile) while running.
    pub fn follow(&self, profile: Profile, of: u32) {
        if let Some(t) = self.state().target.as_mut() {
            t.profile = profile;
            t.of = of.max(1);
        }
    }

    /// This agent's target rate at `now`, records per second (0 before the start and after
    /// the end of the profile).
    pub fn target_rate(&self, now: Instant) -> f64 {
        match &self.state().target {
            Some(t) if now >= t.origin => {
                let ns = u64::try_from(now.duration_since(t.origin).as_nanos()).unwrap_or(u64::MAX);
                t.profile.rate_at(ns) / f64::from(t.of)
            }
            _ => 0.0,
        }
    }

    /// The Prometheus text exposition of everything, now.
    pub fn render(&self) -> String {
        let (phase, recorder, delivery) = {
            let s = self.state();
            (s.phase, s.recorder.clone(), s.delivery.clone())
        };
        let (undelivered, undelivered_records) = delivery.lost();
        let target = self.target_rate(Instant::now());
        let c = recorder
            .as_ref()
            .map(|r| r.counters().snapshot())
            .unwrap_or_default();
        let last = recorder
            .as_ref()
            .map(|r| r.last_interval())
            .unwrap_or_default();

        let mut out = String::with_capacity(4096);
        render_identity(&mut out, &self.identity, phase, target, delivery.spooled);
        let undelivered = (u64::from(undelivered), undelivered_records);
        render_counters(&mut out, &c, &last, undelivered);
        render_last_interval(&mut out, &c, &last);
        out
    }
}

/// Who the agent is, its phase, its share of the target and its spool.
fn render_identity(out: &mut String, id: &Identity, phase: AgentPhase, target: f64, spooled: u32) {
    metric(
        out,
        "barrage_agent_info",
        "gauge",
        "Who this agent is (always 1).",
    );
    let _ = writeln!(
        out,
        "barrage_agent_info{{load_test=\"{}\",run_id=\"{}\",slot=\"{}\",incarnation=\"{}\"}} 1",
        escape(&id.load_test),
        escape(&id.run_id),
        id.slot,
        id.incarnation
    );
    metric(
        out,
        "barrage_agent_phase",
        "gauge",
        "1 for the phase the agent is in.",
    );
    for p in AgentPhase::ALL {
        let _ = writeln!(
            out,
            "barrage_agent_phase{{phase=\"{}\"}} {}",
            p.as_str(),
            u8::from(p == phase)
        );
    }
    metric(
        out,
        "barrage_agent_target_rate",
        "gauge",
        "This agent's share of the target rate now, records per second.",
    );
    let _ = writeln!(out, "barrage_agent_target_rate {target}");
    metric(
        out,
        "barrage_agent_intervals_spooled",
        "gauge",
        "Intervals waiting in the local spool for the blob store.",
    );
    let _ = writeln!(out, "barrage_agent_intervals_spooled {spooled}");
}

/// The running totals; `undelivered` is (intervals, records) the blob store never took.
fn render_counters(
    out: &mut String,
    c: &CounterSnapshot,
    last: &LastInterval,
    undelivered: (u64, u64),
) {
    for (name, help, value) in [
        (
            "barrage_agent_records_sent_total",
            "Records handed to the Kafka client.",
            c.sent,
        ),
        (
            "barrage_agent_records_acked_total",
            "Records acknowledged by the broker.",
            c.acked,
        ),
        (
            "barrage_agent_records_failed_total",
            "Records that failed (all kinds; see barrage_agent_errors_total).",
            c.errors,
        ),
        (
            "barrage_agent_records_dropped_total",
            "Records the schedule called for that were never sent.",
            c.dropped,
        ),
        (
            "barrage_agent_records_late_total",
            "Records sent more than 1 ms after their intended time.",
            c.late,
        ),
        (
            "barrage_agent_bytes_acked_total",
            "Payload bytes acknowledged (keys and values).",
            c.bytes,
        ),
        (
            "barrage_agent_queue_full_total",
            "Times the client queue was full and the sender waited.",
            c.queue_full,
        ),
        (
            "barrage_agent_latency_overflow_total",
            "Latencies above the histograms' one-hour cap.",
            c.overflow,
        ),
        (
            "barrage_agent_intervals_total",
            "Intervals closed (each one uploaded as an interval histogram).",
            last.closed,
        ),
        (
            "barrage_agent_intervals_undelivered_total",
            "Intervals the blob store never took (the report lacks them).",
            undelivered.0,
        ),
        (
            "barrage_agent_records_undelivered_total",
            "Records counted in the undelivered intervals.",
            undelivered.1,
        ),
    ] {
        metric(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Errors by kind, what is in flight, and the last closed interval's rate and percentiles.
fn render_last_interval(out: &mut String, c: &CounterSnapshot, last: &LastInterval) {
    metric(
        out,
        "barrage_agent_errors_total",
        "counter",
        "Failed records by kind.",
    );
    for (kind, n) in &c.errors_by_kind {
        let _ = writeln!(
            out,
            "barrage_agent_errors_total{{kind=\"{}\"}} {n}",
            escape(kind)
        );
    }
    metric(
        out,
        "barrage_agent_in_flight",
        "gauge",
        "Records sent and not yet acknowledged or failed.",
    );
    let in_flight = c.sent.saturating_sub(c.acked).saturating_sub(c.errors);
    let _ = writeln!(out, "barrage_agent_in_flight {in_flight}");
    metric(
        out,
        "barrage_agent_achieved_rate",
        "gauge",
        "Records acknowledged per second over the last closed interval.",
    );
    let _ = writeln!(out, "barrage_agent_achieved_rate {}", last.acked_per_sec);
    // Percentiles of the last closed interval are gauges of their own: a `quantile` label
    // belongs to summaries, which also carry a running `_sum` and `_count`.
    for (name, help, us) in [
        (
            "barrage_agent_schedule_lag_p50_seconds",
            "Schedule lag (actual minus intended send time), median of the last closed interval.",
            last.lag_p50_us,
        ),
        (
            "barrage_agent_schedule_lag_p99_seconds",
            "Schedule lag (actual minus intended send time), p99 of the last closed interval.",
            last.lag_p99_us,
        ),
        (
            "barrage_agent_schedule_lag_max_seconds",
            "Schedule lag (actual minus intended send time), largest in the last closed interval.",
            last.lag_max_us,
        ),
        (
            "barrage_agent_produce_latency_p99_seconds",
            "Produce latency (intended send to ack, coordinated-omission free), p99 of the last closed interval.",
            last.produce_p99_us,
        ),
    ] {
        metric(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {}", seconds(us));
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1_000_000.0
}

impl Exposition for AgentMetrics {
    fn render(&self) -> String {
        AgentMetrics::render(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::recorder::Histograms;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    /// The value of the sample line that starts with `series ` in a scrape.
    fn sample(scrape: &str, series: &str) -> f64 {
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no `{series}` in:\n{scrape}"))
            .parse()
            .expect("a number")
    }

    fn identity() -> Identity {
        Identity {
            load_test: "orders".into(),
            run_id: "r1".into(),
            slot: 2,
            incarnation: 1,
        }
    }

    #[test]
    fn the_target_rate_is_this_agents_share_of_the_profile_now() {
        let m = AgentMetrics::new(identity());
        let origin = Instant::now();
        assert_eq!(m.target_rate(origin), 0.0, "no schedule yet");
        let profile = Profile::constant(1_000.0, Duration::from_secs(60));
        m.running(Arc::new(Recorder::new()), profile.clone(), 4, origin);
        assert_eq!(m.target_rate(origin + Duration::from_secs(1)), 250.0);
        m.follow(profile, 5);
        assert_eq!(m.target_rate(origin + Duration::from_secs(1)), 200.0);
        assert_eq!(
            m.target_rate(origin + Duration::from_secs(61)),
            0.0,
            "after the end"
        );
    }

    #[tokio::test]
    async fn a_scrape_over_loopback_shows_the_counters_move() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(AgentMetrics::new(identity()));
        metrics.set_addr(addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics.clone(), async {
            let _ = stopped.await;
        }));

        let before = get(addr, "/metrics").await;
        assert!(before.starts_with("HTTP/1.1 200 OK"), "{before}");
        assert_eq!(sample(&before, "barrage_agent_records_sent_total"), 0.0);
        assert_eq!(sample(&before, "barrage_agent_target_rate"), 0.0);
        assert!(before.contains(
            "barrage_agent_info{load_test=\"orders\",run_id=\"r1\",slot=\"2\",incarnation=\"1\"} 1"
        ));

        // The agent starts: 1 000 records/s across 2 agents; 10 sends, 7 acks, 1 error.
        let recorder = Arc::new(Recorder::new());
        metrics.running(
            recorder.clone(),
            Profile::constant(1_000.0, Duration::from_secs(3_600)),
            2,
            Instant::now(),
        );
        metrics.set_phase(AgentPhase::Running);
        for i in 0..10u64 {
            recorder.record_send(i * 1_000_000, i * 1_000_000 + 3_000_000);
        }
        for i in 0..7u64 {
            recorder.record_ack(
                0,
                i * 1_000_000,
                i * 1_000_000,
                i * 1_000_000 + 4_000_000,
                100,
            );
        }
        recorder.counters().error("MsgTimedOut");
        recorder
            .counters()
            .dropped
            .fetch_add(5, std::sync::atomic::Ordering::Relaxed);
        let _ = recorder.swap(Histograms::default());

        let after = get(addr, "/metrics").await;
        assert_eq!(sample(&after, "barrage_agent_records_sent_total"), 10.0);
        assert_eq!(sample(&after, "barrage_agent_records_acked_total"), 7.0);
        assert_eq!(sample(&after, "barrage_agent_records_dropped_total"), 5.0);
        assert_eq!(sample(&after, "barrage_agent_records_late_total"), 10.0);
        assert_eq!(
            sample(&after, "barrage_agent_errors_total{kind=\"MsgTimedOut\"}"),
            1.0
        );
        assert_eq!(sample(&after, "barrage_agent_in_flight"), 2.0);
        assert_eq!(sample(&after, "barrage_agent_target_rate"), 500.0);
        assert_eq!(sample(&after, "barrage_agent_intervals_total"), 1.0);
        assert_eq!(
            sample(&after, "barrage_agent_phase{phase=\"Running\"}"),
            1.0
        );
        assert_eq!(sample(&after, "barrage_agent_phase{phase=\"Ready\"}"), 0.0);
        let lag = sample(&after, "barrage_agent_schedule_lag_p99_seconds");
        assert!((0.0029..=0.0031).contains(&lag), "lag p99 {lag}");

        let h = get(addr, "/healthz").await;
        assert!(
            h.starts_with("HTTP/1.1 200 OK") && h.ends_with("ok\n"),
            "{h}"
        );
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops")
            .expect("no panic");
    }
}
