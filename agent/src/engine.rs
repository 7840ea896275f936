//! One agent's run: the sender thread that follows the schedule, the delivery callback that
//! records latencies, and the interval clock that rolls histograms.
//!
//! The sender runs on a dedicated OS thread (sleeping with nanosecond resolution, never
//! blocking tokio's workers); librdkafka's own thread serves delivery reports; the async side
//! only ticks intervals and waits. Sends are never skipped silently: when the run is stopped
//! early, what was due and not sent is counted as dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::kafka::producer::{Clock, DeliveryRecorder, SendMeta, error_kind, is_permanent};
use crate::keys::KeyGen;
use crate::payload::{RecordAt, Values};
use crate::recorder::{CounterSnapshot, Counters, Histograms, Recorder};
use barrage_crds::interval::ConsumerLag;
use barrage_crds::schedule::{Due, Profile, Schedule, Share};

/// Header names carried by RoundTrip records. Times are nanoseconds since the run's origin on
/// the sending agent's clock, 8 bytes big-endian.
pub mod headers {
    pub const AGENT: &str = "barrage-agent";
    pub const SEQ: &str = "barrage-seq";
    /// The intended send time: `e2e` is measured from it (coordinated-omission free).
    pub const INTENDED_NS: &str = "barrage-intended-ns";
    /// The actual send time: `e2eService` is measured from it.
    pub const SENT_NS: &str = "barrage-sent-ns";
}

/// Everything one agent needs to produce.
pub struct ProduceJob {
    /// librdkafka settings (bootstrap, acks, linger …).
    pub client: ClientConfig,
    pub topic: String,
    /// Fleet-wide target in records per second.
    pub profile: Profile,
    pub share: Share,
    pub values: Values,
    pub keys: KeyGen,
    /// Static headers added to every record.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Records sent back to back for one intended send time (Gatling's records per
    /// transaction); with `transactional` they form one Kafka transaction.
    pub records_per_transaction: u32,
    pub transactional: bool,
    /// Most records handed to the client and not yet acknowledged.
    pub max_in_flight: usize,
    /// Longest wait for outstanding acknowledgements at the end.
    pub flush_timeout: Duration,
    /// Interval histogram length.
    pub interval: Duration,
    /// RoundTrip: tag records with this agent's id and a sequence number.
    pub round_trip_agent: Option<String>,
}

/// Commands from outside while the engine runs.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    reassign: Mutex<Option<Reassign>>,
    /// Fault injection: the sender sleeps this long once (nanoseconds; 0 = none).
    stall_ns: AtomicU64,
    /// A new fleet-wide rate profile (records per second) and the offset it applies from.
    profile: Mutex<Option<(Profile, u64)>>,
    /// Set when `reassign` or `profile` holds something, so the sender looks at the locks only
    /// then and not once per record.
    changed: AtomicBool,
}

/// A re-split of the fleet announced for offset `at_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reassign {
    pub at_ns: u64,
    pub slot: u32,
    pub of: u32,
}

impl Control {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Asks the sender to stop; what was due and unsent is counted as dropped.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Announces a new share of the fleet from `at_ns` on.
    pub fn reassign(&self, r: Reassign) {
        *self
            .reassign
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(r);
        self.changed.store(true, Ordering::Release);
    }

    /// Fault injection for tests and drills: the sender stalls once for `d`, as a GC pause or a
    /// descheduled VM would. What was due meanwhile is sent late and measured as such.
    pub fn stall(&self, d: Duration) {
        self.stall_ns.store(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Replaces the fleet-wide rate profile (records per second) from offset `at_ns` on: a spec
    /// edit while running. Every agent applies the same change at the same offset.
    pub fn replace_profile(&self, profile: Profile, at_ns: u64) {
        *self
            .profile
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((profile, at_ns));
        self.changed.store(true, Ordering::Release);
    }

    /// Whether a reassignment or a new profile may be waiting (clears the flag).
    fn take_changed(&self) -> bool {
        self.changed.load(Ordering::Relaxed) && self.changed.swap(false, Ordering::Acquire)
    }

    fn take_profile(&self) -> Option<(Profile, u64)> {
        self.profile
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    fn take_stall(&self) -> Option<Duration> {
        match self.stall_ns.swap(0, Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    fn take_reassign(&self) -> Option<Reassign> {
        self.reassign
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

/// Closed intervals that may wait for their consumer (the uploader) on the channel a run is
/// given; when it is full, the next interval waits for room (nothing is dropped).
pub const INTERVAL_QUEUE: usize = 256;

/// One closed interval of histograms.
#[derive(Debug, Clone)]
pub struct IntervalRecord {
    /// 0-based interval number since the run's origin.
    pub index: u32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub histograms: Histograms,
    /// The run's counters at the end of the interval (cumulative).
    pub counters: CounterSnapshot,
    /// Records of this agent's share whose intended send time fell in this interval.
    pub scheduled: u64,
    /// The consumer's latest lag sample at the interval's end (RoundTrip, Consume).
    pub consumer_lag: ConsumerLag,
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub counters: CounterSnapshot,
    /// Records acknowledged per partition.
    pub per_partition: Vec<u64>,
    /// Records this agent's share planned over the whole profile.
    pub planned: u64,
    /// Time from the origin to the end of the flush.
    pub elapsed: Duration,
    pub stopped_early: bool,
    /// Records still unacknowledged when the flush bound ran out (then purged, counted as errors).
    pub unflushed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not create the Kafka producer")]
    Client(#[source] KafkaError),
    #[error("could not initialise Kafka transactions (transactional: true)")]
    Transactions(#[source] KafkaError),
    #[error("the sender thread could not be started")]
    Thread(#[source] std::io::Error),
    #[error("the sender thread failed: {0}")]
    Sender(String),
    #[error("could not create or position the Kafka consumer: {0}")]
    Consumer(#[source] KafkaError),
    #[error("Consume: {0}")]
    Group(String),
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
}

/// Why the producer was not ready for the start: what it last saw of the topic before the
/// limit. Logged, not fatal (the first records then wait for the metadata).
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    /// No metadata of the topic came back at all.
    #[error("no metadata for topic {topic} within {limit:?}")]
    NoMetadata { topic: String, limit: Duration },
    /// The last metadata request failed (shown in full: it is the whole story).
    #[error("fetching the metadata of topic {topic} failed: {error}")]
    Metadata { topic: String, error: KafkaError },
    /// The topic was known, but not every partition had a leader.
    #[error("{partitions} partition(s) of topic {topic}, some without a leader, after {limit:?}")]
    NoLeaders {
        topic: String,
        partitions: usize,
        limit: Duration,
    },
}

type Client = ThreadedProducer<DeliveryRecorder>;

/// A producer connected, warmed up and ready for the start signal (the agent's `Ready`).
pub struct Prepared {
    job: ProduceJob,
    producer: Arc<Client>,
    recorder: Arc<Recorder>,
    /// Transactions: delivery reports land here, and a transaction's records reach the
    /// recorder only once it commits (see [`Transaction`]).
    staging: Option<Arc<Recorder>>,
    origin: Arc<OnceLock<Clock>>,
}

/// Creates the producer, learns every partition's leader and initialises transactions, so
/// that start-up is not measured as latency. Measuring starts with [`Prepared::run`].
pub async fn prepare(
    mut job: ProduceJob,
    recorder: Arc<Recorder>,
) -> Result<Prepared, EngineError> {
    // The schedule ticks once per transaction: records per second / records per transaction.
    let per_tick = job.records_per_transaction.max(1);
    if per_tick > 1 {
        job.profile = scale_profile(&job.profile, 1.0 / f64::from(per_tick));
    }
    let origin = Arc::new(OnceLock::new());
    let staging = job.transactional.then(|| Arc::new(Recorder::new()));
    let producer: Arc<Client> = Arc::new(
        ThreadedProducer::from_config_and_context(
            &job.client,
            DeliveryRecorder {
                recorder: staging.clone().unwrap_or_else(|| recorder.clone()),
                clock: origin.clone(),
            },
        )
        .map_err(EngineError::Client)?,
    );
    let p = producer.clone();
    let topic = job.topic.clone();
    let ready = tokio::task::spawn_blocking(move || warm_up(&p, &topic, WARM_UP_LIMIT))
        .await
        .map_err(|e| EngineError::Sender(e.to_string()))?;
    if let Err(e) = ready {
        warn!(error = %e, "The topic's partitions did not all have a leader before the start.");
    }
    if job.transactional {
        let p = producer.clone();
        let timeout = job.flush_timeout;
        tokio::task::spawn_blocking(move || p.init_transactions(timeout))
            .await
            .map_err(|e| EngineError::Sender(e.to_string()))?
            .map_err(EngineError::Transactions)?;
    }
    Ok(Prepared {
        job,
        producer,
        recorder,
        staging,
        origin,
    })
}

impl Prepared {
    /// The fleet-wide schedule this agent follows, in ticks (one tick sends
    /// `records_per_transaction` records).
    pub fn profile(&self) -> &Profile {
        &self.job.profile
    }

    /// Changes this agent's share before the start (a replacement joining a running
    /// schedule takes its share from the current offset on).
    pub fn set_share(&mut self, share: Share) {
        self.job.share = share;
    }

    /// Leaves the paused spans (offsets from the start, ns) out of the schedule before the
    /// start ([`Profile::paused`]).
    pub fn pause(&mut self, spans: &[(u64, u64)]) {
        self.job.profile = self.job.profile.paused(spans);
    }

    /// Runs the workload on `clock` (its origin is the run's shared start) to its end, or
    /// until `control.stop()`, sending every closed interval to `intervals`.
    pub async fn run(
        self,
        clock: Clock,
        control: Arc<Control>,
        intervals: mpsc::Sender<IntervalRecord>,
    ) -> Result<Outcome, EngineError> {
        let _ = self.origin.set(clock);
        run_prepared(
            self.job,
            self.producer,
            self.recorder,
            self.staging,
            clock,
            control,
            intervals,
        )
        .await
    }
}

/// Prepares and runs in one go, on `clock`.
pub async fn run_produce(
    job: ProduceJob,
    recorder: Arc<Recorder>,
    clock: Clock,
    control: Arc<Control>,
    intervals: mpsc::Sender<IntervalRecord>,
) -> Result<Outcome, EngineError> {
    prepare(job, recorder)
        .await?
        .run(clock, control, intervals)
        .await
}

async fn run_prepared(
    job: ProduceJob,
    producer: Arc<Client>,
    recorder: Arc<Recorder>,
    staging: Option<Arc<Recorder>>,
    clock: Clock,
    control: Arc<Control>,
    intervals: mpsc::Sender<IntervalRecord>,
) -> Result<Outcome, EngineError> {
    let interval = job.interval.max(Duration::from_millis(10));
    let flush_timeout = job.flush_timeout;
    // The schedule ticks once per transaction: records per second / records per transaction.
    let per_tick = job.records_per_transaction.max(1);
    let round_trip = job.round_trip_agent.is_some();
    let planned = Schedule::new(job.profile.clone(), job.share).remaining() * u64::from(per_tick);
    let plan = Planned::new(job.profile.clone(), job.share, u64::from(per_tick));

    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let sender = {
        let producer = producer.clone();
        let recorder = recorder.clone();
        let control = control.clone();
        let plan = plan.clone();
        std::thread::Builder::new()
            .name("barrage-sender".into())
            .spawn(move || {
                let mut txn = staging.map(Transaction::new);
                let result = send_loop(
                    job,
                    &producer,
                    &recorder,
                    txn.as_mut(),
                    clock,
                    &control,
                    &plan,
                );
                let _ = done_tx.send(());
                result
            })
            .map_err(EngineError::Thread)?
    };

    // Roll histograms at every interval boundary until the sender is done.
    let mut roller = Roller {
        recorder: &recorder,
        plan: &plan,
        out: &intervals,
        clock,
        interval,
        index: 0,
        spare: Some(Histograms::default()),
    };
    let _ = roller.roll_until(&mut done_rx).await;
    let stopped_early = match sender.join() {
        Ok(Ok(stopped_early)) => stopped_early,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(EngineError::Sender("the sender thread panicked".into())),
    };

    // Wait for outstanding acknowledgements, within the bound, rolling intervals meanwhile.
    let unflushed = roller
        .roll_until(flush(producer.clone(), flush_timeout))
        .await
        .unwrap_or(0);
    if round_trip {
        drain_round_trip(&mut roller, &recorder, clock, interval_ns(ROUND_TRIP_DRAIN)).await;
    }
    if unflushed > 0 {
        warn!(
            unflushed,
            "Records were still unacknowledged when the flush bound ran out; they were purged and counted as errors."
        );
    }
    // The last, partial interval.
    let end_ns = clock.now_ns();
    let Roller { index, spare, .. } = roller;
    let histograms = recorder.swap(spare.unwrap_or_default());
    let start_ns = interval_ns(interval) * u64::from(index);
    let last = IntervalRecord {
        index,
        start_ns,
        end_ns: end_ns.max(start_ns),
        histograms,
        counters: recorder.counters().snapshot(),
        consumer_lag: recorder.consumer_lag(),
        // The last interval closes at the stop: only what was due before it was scheduled.
        scheduled: plan.scheduled(
            start_ns,
            end_ns.clamp(start_ns, start_ns + interval_ns(interval)),
        ),
    };
    let _ = intervals.send(last).await;
    Ok(Outcome {
        counters: recorder.counters().snapshot(),
        per_partition: recorder.per_partition(),
        planned,
        elapsed: Duration::from_nanos(end_ns),
        stopped_early,
        unflushed,
    })
}

/// Flushes the producer within `timeout`; what is still unacknowledged then is purged and
/// counted (returned).
fn flush(producer: Arc<Client>, timeout: Duration) -> tokio::task::JoinHandle<u64> {
    tokio::task::spawn_blocking(move || {
        if producer.flush(timeout).is_err() {
            let left = producer.in_flight_count();
            producer.purge(PurgeConfig::default().queue().inflight());
            let _ = producer.flush(Duration::from_secs(5));
            u64::try_from(left).unwrap_or(0)
        } else {
            0
        }
    })
}

/// RoundTrip: waits (at most `drain_ns`) for the last records to come back, then counts as
/// lost what was acknowledged and never consumed — before the last interval is closed, so
/// the report carries it.
async fn drain_round_trip(
    roller: &mut Roller<'_>,
    recorder: &Recorder,
    clock: Clock,
    drain_ns: u64,
) {
    let deadline = clock.now_ns() + drain_ns;
    loop {
        let c = recorder.counters().snapshot();
        if c.consumed >= c.acked || clock.now_ns() >= deadline {
            recorder
                .counters()
                .lost
                .store(c.acked.saturating_sub(c.consumed), Ordering::Relaxed);
            return;
        }
        roller
            .roll_until(tokio::time::sleep(Duration::from_millis(20)))
            .await;
    }
}

/// RoundTrip: longest wait after the last ack for records to come back.
const ROUND_TRIP_DRAIN: Duration = Duration::from_secs(15);

/// Longest wait for the producer's first metadata before the start.
const WARM_UP_LIMIT: Duration = Duration::from_secs(15);

/// Waits until the producer knows a leader for every partition of `topic`.
fn warm_up(producer: &Client, topic: &str, limit: Duration) -> Result<usize, WarmUpError> {
    let deadline = std::time::Instant::now() + limit;
    let mut last = WarmUpError::NoMetadata {
        topic: topic.to_string(),
        limit,
    };
    while std::time::Instant::now() < deadline {
        match producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(2))
        {
            Ok(md) => {
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    let parts = t.partitions();
                    if t.error().is_none()
                        && !parts.is_empty()
                        && parts.iter().all(|p| p.leader() >= 0 && p.error().is_none())
                    {
                        return Ok(parts.len());
                    }
                    last = WarmUpError::NoLeaders {
                        topic: topic.to_string(),
                        partitions: parts.len(),
                        limit,
                    };
                }
            }
            Err(error) => {
                last = WarmUpError::Metadata {
                    topic: topic.to_string(),
                    error,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

fn interval_ns(interval: Duration) -> u64 {
    u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX)
}

/// What the schedule called for, to count each interval's scheduled records.
/// Every change of profile or share is an era starting at an offset; a run has a handful.
#[derive(Clone)]
struct Planned {
    per_tick: u64,
    eras: Arc<Mutex<Vec<Era>>>,
}

struct Era {
    from_ns: u64,
    profile: Profile,
    share: Share,
}

impl Planned {
    fn new(profile: Profile, share: Share, per_tick: u64) -> Self {
        Planned {
            per_tick,
            eras: Arc::new(Mutex::new(vec![Era {
                from_ns: 0,
                profile,
                share,
            }])),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Era>> {
        self.eras
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new profile from `at_ns` on (ticks per second), same slot and fleet size.
    fn new_profile(&self, profile: Profile, at_ns: u64) {
        let mut eras = self.lock();
        let Some(last) = eras.last() else { return };
        let share = Share {
            from_index: profile.sends_before(at_ns),
            ..last.share
        };
        eras.push(Era {
            from_ns: at_ns,
            profile,
            share,
        });
    }

    /// A new share from `at_ns` on, same profile.
    fn new_share(&self, slot: u32, of: u32, at_ns: u64) {
        let mut eras = self.lock();
        let Some(last) = eras.last() else { return };
        let profile = last.profile.clone();
        let share = Share::joining(slot, of, profile.sends_before(at_ns));
        eras.push(Era {
            from_ns: at_ns,
            profile,
            share,
        });
    }

    /// Records of this agent's share intended in `[from_ns, to_ns)`.
    fn scheduled(&self, from_ns: u64, to_ns: u64) -> u64 {
        let eras = self.lock();
        let mut ticks = 0u64;
        for (i, era) in eras.iter().enumerate() {
            let end = eras.get(i + 1).map_or(u64::MAX, |next| next.from_ns);
            let (lo, hi) = (from_ns.max(era.from_ns), to_ns.min(end));
            if lo < hi {
                let owned = |t: u64| era.share.owned_below(era.profile.sends_before(t));
                ticks += owned(hi).saturating_sub(owned(lo));
            }
        }
        ticks * self.per_tick
    }
}

/// Closes an interval at every boundary of the run's clock.
struct Roller<'a> {
    recorder: &'a Recorder,
    plan: &'a Planned,
    out: &'a mpsc::Sender<IntervalRecord>,
    clock: Clock,
    interval: Duration,
    /// The interval open now.
    index: u32,
    /// The histograms the next swap puts in place (taken while a roll is under way).
    spare: Option<Histograms>,
}

impl Roller<'_> {
    /// Rolls intervals at their boundaries until `until` completes; returns its output.
    async fn roll_until<T>(&mut self, until: impl Future<Output = T>) -> T {
        tokio::pin!(until);
        loop {
            let boundary = self
                .clock
                .at(interval_ns(self.interval) * u64::from(self.index + 1));
            tokio::select! {
                _ = tokio::time::sleep_until(boundary.into()) => {
                    let spare = self.spare.take().unwrap_or_default();
                    let next =
                        roll(self.recorder, spare, self.index, self.interval, self.plan, self.out)
                            .await;
                    self.spare = Some(next);
                    self.index += 1;
                }
                out = &mut until => return out,
            }
        }
    }
}

async fn roll(
    recorder: &Recorder,
    spare: Histograms,
    index: u32,
    interval: Duration,
    plan: &Planned,
    out: &mpsc::Sender<IntervalRecord>,
) -> Histograms {
    let histograms = recorder.swap(spare);
    let len = interval_ns(interval);
    let start_ns = len * u64::from(index);
    let record = IntervalRecord {
        index,
        start_ns,
        end_ns: start_ns + len,
        histograms,
        counters: recorder.counters().snapshot(),
        scheduled: plan.scheduled(start_ns, start_ns + len),
        consumer_lag: recorder.consumer_lag(),
    };
    // A full queue waits for the uploader (bounded memory, nothing dropped).
    match out.send(record).await {
        // The receiver keeps the histograms; start the next interval with fresh ones.
        Ok(()) => Histograms::default(),
        Err(mpsc::error::SendError(record)) => record.histograms,
    }
}

/// Longest single sleep, so a stop request is noticed quickly.
const MAX_SLEEP: Duration = Duration::from_millis(20);
/// Above this gap the sender sleeps for the gap less half of it (a sleep overshoots by ~50 µs).
const SPIN_BELOW: Duration = Duration::from_micros(60);
/// Between this and [`SPIN_BELOW`] the sender still sleeps, and sends what fell due meanwhile
/// in one burst, each record with its lag measured, instead of spinning on `yield_now` (at
/// fixed rates above ~16k/s that spin held a whole core). Below it, it yields.
const YIELD_BELOW: Duration = Duration::from_micros(2);

/// Follows the schedule until it ends or a stop is requested. Returns whether it stopped early.
fn send_loop(
    mut job: ProduceJob,
    producer: &Client,
    recorder: &Recorder,
    mut txn: Option<&mut Transaction>,
    clock: Clock,
    control: &Control,
    plan: &Planned,
) -> Result<bool, EngineError> {
    let per_tick = job.records_per_transaction.max(1);
    let mut schedule = Schedule::new(job.profile.clone(), job.share);
    sleep_until_origin(clock, control);
    let stamp = Stamp {
        headers: std::mem::take(&mut job.headers),
        round_trip_agent: job.round_trip_agent.take(),
        per_tick: u64::from(per_tick),
        origin_millis: wall_millis_at(clock.origin()),
    };
    let mut seq: u64 = 0;
    let mut value_failed = false;
    let counters = recorder.counters();
    loop {
        if control.is_stopped() {
            let now = clock.now_ns();
            let dropped = schedule.remaining_before(now.saturating_add(1)) * u64::from(per_tick);
            counters.dropped.fetch_add(dropped, Ordering::Relaxed);
            info!(dropped, "Stopped before the schedule ended.");
            return Ok(true);
        }
        if let Some(d) = control.take_stall() {
            std::thread::sleep(d);
        }
        if control.take_changed() {
            follow_control(control, plan, &mut schedule, per_tick);
        }
        let Some(due) = schedule.peek() else {
            schedule.settle();
            if schedule.peek().is_some() {
                continue;
            }
            if schedule.paused_to_the_end(clock.now_ns()) {
                // A pause that lasts to the end can still be lifted: wait for that or a stop.
                std::thread::sleep(MAX_SLEEP);
                continue;
            }
            return Ok(false);
        };
        let now = clock.now_ns();
        if due.at_ns > now {
            let gap = Duration::from_nanos(due.at_ns - now);
            if gap > SPIN_BELOW {
                std::thread::sleep((gap - SPIN_BELOW / 2).min(MAX_SLEEP));
            } else if gap > YIELD_BELOW {
                std::thread::sleep(gap);
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        // Bounded in flight: wait for acknowledgements rather than queue without limit.
        if usize::try_from(producer.in_flight_count()).unwrap_or(0) >= job.max_in_flight {
            counters.queue_full.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        schedule.next_due();
        if let Some(t) = txn.as_deref_mut() {
            t.begin(producer)?;
        }
        let mut first = true;
        for nth in 0..per_tick {
            // One clock read per record: the first record of a tick reuses the reading that
            // found it due (a few hundred ns earlier, below the histograms' µs resolution).
            let sent_ns = if first { now } else { clock.now_ns() };
            first = false;
            let value = match job.values.value(stamp.record_at(due, nth)) {
                Ok(v) => v,
                Err(e) => {
                    counters.error(VALUE_FAILED);
                    if let Some(t) = txn.as_deref_mut() {
                        t.failed = true;
                    }
                    if !value_failed {
                        warn!(error = %e, "A record's value could not be made; such records are counted as errors and not sent.");
                        value_failed = true;
                    }
                    continue;
                }
            };
            let key = job.keys.next_key(due.global);
            let headers = stamp.headers(seq, due.at_ns, sent_ns);
            seq += 1;
            let meta = SendMeta {
                intended_ns: due.at_ns,
                sent_ns,
                bytes: u32::try_from(value.len()).unwrap_or(u32::MAX),
            };
            let mut record = BaseRecord::with_opaque_to(&job.topic, meta.pack()).payload(value);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(h) = headers {
                record = record.headers(h);
            }
            recorder.record_send(due.at_ns, sent_ns);
            let sent = offer(producer, record, counters);
            if let Some(t) = txn.as_deref_mut() {
                if sent {
                    t.sent(meta);
                } else {
                    // A transaction missing a record is aborted, never committed.
                    t.failed = true;
                }
            }
        }
        if let Some(t) = txn.as_deref_mut() {
            t.finish(producer, recorder, clock, job.flush_timeout)?;
        }
    }
}

/// Sleeps until the shared start (or a stop): the clock reads 0 before it, which would let the
/// first sends go out early and make the sender spin.
fn sleep_until_origin(clock: Clock, control: &Control) {
    loop {
        let left = clock
            .origin()
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || control.is_stopped() {
            return;
        }
        std::thread::sleep(left.min(MAX_SLEEP));
    }
}

/// Takes a new load profile or share from `control` into the schedule (and the plan the
/// recorder counts against). A profile is per record; with several records per tick the
/// schedule runs at `1 / per_tick` of it.
fn follow_control(control: &Control, plan: &Planned, schedule: &mut Schedule, per_tick: u32) {
    if let Some((profile, at_ns)) = control.take_profile() {
        let profile = if per_tick > 1 {
            scale_profile(&profile, 1.0 / f64::from(per_tick))
        } else {
            profile
        };
        plan.new_profile(profile.clone(), at_ns);
        schedule.replace_profile(profile, at_ns);
        info!(at_ns, "Load profile replaced.");
    }
    if let Some(r) = control.take_reassign() {
        plan.new_share(r.slot, r.of, r.at_ns);
        schedule.reassign(r.at_ns, r.slot, r.of);
        debug!(slot = r.slot, of = r.of, at_ns = r.at_ns, "Share changed.");
    }
}

/// Hands one record to librdkafka, waiting while its queue is full; true if it was taken.
/// A record that never left has its send count undone and its error counted.
#[inline]
fn offer<K, P>(producer: &Client, record: BaseRecord<'_, K, P, usize>, counters: &Counters) -> bool
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    let mut pending = record;
    loop {
        match producer.send(pending) {
            Ok(()) => return true,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                counters.queue_full.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
                pending = back;
            }
            Err((e, _)) => {
                counters.sent.fetch_sub(1, Ordering::Relaxed);
                counters.error(&error_kind(&e));
                if !is_permanent(&e) {
                    debug!(error = %e, "Send failed.");
                }
                return false;
            }
        }
    }
}

/// Error kind of records whose value could not be made (an Avro `sequence` past an int
/// field's range): counted, never sent.
pub const VALUE_FAILED: &str = "ValueGeneration";

/// What the sender stamps on every record besides its value and key.
struct Stamp {
    /// Static headers added to every record.
    headers: Vec<(String, Vec<u8>)>,
    round_trip_agent: Option<String>,
    /// Records per schedule tick.
    per_tick: u64,
    /// The wall-clock time of the run's origin, ms since the Unix epoch.
    origin_millis: i64,
}

impl Stamp {
    /// Record `nth` of the tick `due`: its fleet-wide index and intended wall-clock time.
    fn record_at(&self, due: Due, nth: u32) -> RecordAt {
        RecordAt {
            index: due.global * self.per_tick + u64::from(nth),
            intended_millis: self
                .origin_millis
                .saturating_add(i64::try_from(due.at_ns / 1_000_000).unwrap_or(i64::MAX)),
        }
    }

    /// The static headers and, in RoundTrip, this agent's id, its sequence number `seq` and
    /// the intended and actual send times (nanoseconds since the origin).
    fn headers(&self, seq: u64, intended_ns: u64, sent_ns: u64) -> Option<OwnedHeaders> {
        if self.headers.is_empty() && self.round_trip_agent.is_none() {
            return None;
        }
        let mut h = OwnedHeaders::new_with_capacity(self.headers.len() + 4);
        for (k, v) in &self.headers {
            h = h.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        if let Some(agent) = &self.round_trip_agent {
            h = h
                .insert(Header {
                    key: headers::AGENT,
                    value: Some(agent.as_bytes()),
                })
                .insert(Header {
                    key: headers::SEQ,
                    value: Some(&seq.to_be_bytes()),
                })
                .insert(Header {
                    key: headers::INTENDED_NS,
                    value: Some(&intended_ns.to_be_bytes()),
                })
                .insert(Header {
                    key: headers::SENT_NS,
                    value: Some(&sent_ns.to_be_bytes()),
                });
        }
        Some(h)
    }
}

/// The wall-clock time of `instant`, ms since the Unix epoch.
fn wall_millis_at(instant: std::time::Instant) -> i64 {
    let now = std::time::Instant::now();
    let wall = chrono::Utc::now().timestamp_millis();
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if instant <= now {
        wall.saturating_sub(ms(now - instant))
    } else {
        wall.saturating_add(ms(instant - now))
    }
}

/// One Kafka transaction at a time (`transactional: true`): its records count as acked only
/// when it commits, with their latency measured to the end of the commit (when they become
/// visible to `read_committed` readers). An aborted transaction's records all count as
/// errors — under the kind that failed them, the others as `TransactionAborted` — so that
/// `acked` is exactly what committed readers can see.
struct Transaction {
    /// Receives the producer's delivery reports (acks, per partition, and errors by kind).
    staging: Arc<Recorder>,
    /// What the staging recorder had counted before this transaction.
    seen: CounterSnapshot,
    seen_partitions: Vec<u64>,
    records: Vec<SendMeta>,
    /// A record of this transaction could not be handed to the client.
    failed: bool,
}

/// Error kind of the records of an aborted transaction that did not fail themselves.
pub const TRANSACTION_ABORTED: &str = "TransactionAborted";

impl Transaction {
    fn new(staging: Arc<Recorder>) -> Self {
        Transaction {
            staging,
            seen: CounterSnapshot::default(),
            seen_partitions: Vec::new(),
            records: Vec::new(),
            failed: false,
        }
    }

    fn begin(&mut self, producer: &Client) -> Result<(), EngineError> {
        self.records.clear();
        self.failed = false;
        producer
            .begin_transaction()
            .map_err(|e| EngineError::Sender(format!("begin_transaction: {e}")))
    }

    fn sent(&mut self, meta: SendMeta) {
        self.records.push(meta);
    }

    /// Commits (or aborts, when a record failed) and moves the outcome into `recorder`.
    fn finish(
        &mut self,
        producer: &Client,
        recorder: &Recorder,
        clock: Clock,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        // Wait for the delivery reports of what was handed to the client first (also when a
        // record could not be: an abort then discards records the broker already wrote, as
        // it would in a real failure). Once a delivery fails, librdkafka holds the rest back
        // and a commit would wait out its whole timeout.
        let expected = self.records.len() as u64;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let now = self.staging.counters().snapshot();
            if now.errors > self.seen.errors {
                self.failed = true;
                break;
            }
            if now.acked - self.seen.acked >= expected || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let mut commit = if self.failed {
            Err(None)
        } else {
            producer.commit_transaction(timeout).map_err(Some)
        };
        // A retriable commit failure (a timeout) may be retried; anything else aborts.
        for _ in 0..3 {
            match &commit {
                Err(Some(KafkaError::Transaction(e))) if e.is_retriable() => {
                    commit = producer.commit_transaction(timeout).map_err(Some);
                }
                _ => break,
            }
        }
        let committed = match commit {
            Ok(()) => true,
            Err(e) => {
                if let Some(KafkaError::Transaction(t)) = &e
                    && t.is_fatal()
                {
                    return Err(EngineError::Sender(format!("commit_transaction: {t}")));
                }
                debug!(error = ?e, "Aborting the transaction.");
                // The transaction is lost anyway: drop what is queued or in flight, or the
                // abort waits for requests that an idempotent producer holds back after a
                // failed batch (a partition's sequence is broken until the abort bumps the
                // epoch) and times out.
                producer.purge(PurgeConfig::default().queue().inflight());
                producer
                    .abort_transaction(timeout)
                    .map_err(|e| EngineError::Sender(format!("abort_transaction: {e}")))?;
                false
            }
        };
        let done_ns = clock.now_ns();
        // Every record's delivery report arrives before (or just after) the commit returns.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let now = loop {
            let now = self.staging.counters().snapshot();
            let reported = (now.acked - self.seen.acked) + (now.errors - self.seen.errors);
            if reported >= expected || std::time::Instant::now() >= deadline {
                break now;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let partitions = self.staging.per_partition();
        if committed {
            // Acked records by partition in this transaction, handed out in order.
            let mut parts = partitions.iter().enumerate().flat_map(|(p, n)| {
                let before = self.seen_partitions.get(p).copied().unwrap_or(0);
                std::iter::repeat_n(
                    i32::try_from(p).unwrap_or(-1),
                    usize::try_from(n - before.min(*n)).unwrap_or(0),
                )
            });
            for meta in &self.records {
                recorder.record_ack(
                    parts.next().unwrap_or(-1),
                    meta.intended_ns,
                    meta.sent_ns,
                    done_ns,
                    u64::from(meta.bytes),
                );
            }
        } else {
            let counters = recorder.counters();
            let mut counted = 0u64;
            for (kind, n) in &now.errors_by_kind {
                let before = self.seen.errors_by_kind.get(kind).copied().unwrap_or(0);
                // Purged by the abort itself: that is the abort, not a cause.
                if kind.starts_with("Purge") {
                    continue;
                }
                for _ in before..*n {
                    if counted < expected {
                        counters.error(kind);
                        counted += 1;
                    }
                }
            }
            for _ in counted..expected {
                counters.error(TRANSACTION_ABORTED);
            }
        }
        self.seen = now;
        self.seen_partitions = partitions;
        Ok(())
    }
}

/// The same profile with every rate multiplied by `factor`.
fn scale_profile(profile: &Profile, factor: f64) -> Profile {
    use barrage_crds::schedule::Segment;
    Profile::new(
        profile
            .segments()
            .iter()
            .map(|s| match *s {
                Segment::Constant { rate, len } => Segment::Constant {
                    rate: rate * factor,
                    len,
                },
                Segment::Ramp { from, to, len } => Segment::Ramp {
                    from: from * factor,
                    to: to * factor,
                    len,
                },
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(per_tick: u64, agent: Option<&str>) -> Stamp {
        Stamp {
            headers: vec![("source".into(), b"test".to_vec())],
            round_trip_agent: agent.map(str::to_string),
            per_tick,
            origin_millis: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_record_is_numbered_fleet_wide_and_stamped_with_its_intended_time() {
        let s = stamp(5, None);
        let due = Due {
            global: 7,
            at_ns: 2_345_678_901,
        };
        let at: Vec<RecordAt> = (0..5).map(|nth| s.record_at(due, nth)).collect();
        assert_eq!(
            at.iter().map(|a| a.index).collect::<Vec<_>>(),
            [35, 36, 37, 38, 39],
            "tick 7 of 5 records each holds records 35..40, whichever agent sends it"
        );
        assert!(at.iter().all(|a| a.intended_millis == 1_800_000_002_345));
    }

    #[test]
    fn round_trip_records_carry_the_intended_and_the_actual_send_time() {
        let h = stamp(1, Some("agent-1"))
            .headers(9, 1_000, 2_500)
            .map(|h| {
                use rdkafka::message::Headers;
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let get = |k: &str| h.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
        assert_eq!(get("source"), Some(b"test".to_vec()));
        assert_eq!(get(headers::AGENT), Some(b"agent-1".to_vec()));
        assert_eq!(get(headers::SEQ), Some(9u64.to_be_bytes().to_vec()));
        assert_eq!(
            get(headers::INTENDED_NS),
            Some(1_000u64.to_be_bytes().to_vec())
        );
        assert_eq!(get(headers::SENT_NS), Some(2_500u64.to_be_bytes().to_vec()));
        assert!(stamp(1, None).headers(0, 0, 0).is_some());
        let bare = Stamp {
            headers: Vec::new(),
            ..stamp(1, None)
        };
        assert!(bare.headers(0, 0, 0).is_none(), "no headers, none built");
    }
}
