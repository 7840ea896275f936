//! The consumer side of the engine, and [`Workload`]: what one agent runs, whatever the kind.
//!
//! - **Consume**: a consumer group reads the spec's topic for the load's duration (the group
//!   splits the partitions between agents; the rate profile does not pace consumption). The
//!   group is joined while the agent prepares: an agent is ready once the group gave it its
//!   partitions (possibly none), and it holds them — paused, while still taking part in
//!   rebalances as more agents join — until the shared start. So joining is not measured, and
//!   the first agent to join cannot read the whole topic before the others arrive. It counts
//!   records and bytes consumed, errors by kind, and records end-to-end latency from each
//!   record's timestamp (CreateTime, or LogAppendTime when the topic says so) to its receipt in
//!   the `e2e` histogram, rolled every interval like the producer's histograms. The record's
//!   timestamp comes from the producer's wall clock: the figure is only as good as the clocks'
//!   agreement (RoundTrip measures on one clock).
//! - **RoundTrip**: the producer engine plus a [`RoundTripReader`] that reads every partition
//!   from its end and keeps this agent's own records (sequence numbers in headers), so
//!   end-to-end latency, loss, duplicates and reordering are measured on one clock.
//!
//! `barrage run` and the `barrage-agent` binary both go through [`prepare`] and
//! [`Workload::run`]; nothing here reads the environment or the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self as std_mpsc, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use barrage_crds::spec::{LoadTestSpec, WorkloadKind};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::engine::{self, Control, EngineError, IntervalRecord, Outcome};
use crate::job;
use crate::kafka::consumer::{
    LagContext, SeqTracker, read_own_records, round_trip_consumer, sample_lag,
};
use crate::kafka::producer::{Clock, error_kind};
use crate::recorder::{Histograms, Recorder};
use barrage_crds::schedule::{Profile, Share};
use barrage_kafka::admin::{Admin, GroupDeletion};
use barrage_kafka::config::{SaslCredentials, base_config, consumer_config};
use rdkafka::statistics::Statistics;

/// How often a consumer holding its partitions polls the group (rebalances are served in
/// polls) and looks for the start.
const HOLD_POLL: Duration = Duration::from_millis(20);

/// What one agent needs to consume.
pub struct ConsumeJob {
    /// librdkafka consumer settings (bootstrap, group.id, auto.offset.reset …).
    pub client: ClientConfig,
    pub topic: String,
    /// How long to consume, from the run's start (the load's duration).
    pub duration: Duration,
    /// Interval histogram length.
    pub interval: Duration,
    /// The group the run named after itself (`spec.kafka.consumer.groupId` unset), deleted at
    /// the end, with the admin client's settings; `None` for a group the spec names.
    pub run_group: Option<RunGroup>,
}

/// A consumer group named after the run: every agent deletes it once it has left, and the
/// last to leave succeeds (Kafka refuses while members remain), so no group outlives its run.
pub struct RunGroup {
    pub admin: ClientConfig,
    pub group: String,
}

/// How long deleting the run's group may take.
const GROUP_DELETE_TIMEOUT: Duration = Duration::from_secs(10);

impl RunGroup {
    /// Deletes the group, if no member is left; never fails the run (a group left behind
    /// only holds offsets), but says so.
    async fn delete(&self) {
        let outcome = match Admin::new(&self.admin) {
            Ok(admin) => admin.delete_group(&self.group, GROUP_DELETE_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(GroupDeletion::Deleted) => {
                info!(group = %self.group, "Deleted the run's consumer group.")
            }
            Ok(GroupDeletion::Gone) => {
                debug!(group = %self.group, "The run's consumer group is gone already.")
            }
            Ok(GroupDeletion::InUse) => {
                debug!(group = %self.group, "Other members are still in the run's consumer group; the last one deletes it.")
            }
            Err(e) => {
                warn!(group = %self.group, error = %e, "Could not delete the run's consumer group; it keeps the run's offsets until deleted.")
            }
        }
    }
}

/// This agent's place in the group, shared by the consumer context and the agent.
#[derive(Debug)]
struct Membership {
    /// Assigned partitions are paused at once while this is set (until the start).
    hold: AtomicBool,
    /// Assignments received (a rebalance can assign no partition at all).
    assignments: AtomicU64,
    /// Partitions in the latest assignment.
    partitions: AtomicU64,
}

/// The Consume group's client context: MSK IAM tokens and the lag like [`LagContext`], and
/// the partitions of every assignment paused while the agent waits for the start.
struct GroupContext {
    membership: Arc<Membership>,
    lag: LagContext,
}

impl ClientContext for GroupContext {
    barrage_kafka::msk_iam_tokens!();

    fn stats(&self, statistics: Statistics) {
        self.lag.stats(statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(partitions) = rebalance else {
            return;
        };
        let count = u64::try_from(partitions.count()).unwrap_or(u64::MAX);
        if count > 0
            && self.membership.hold.load(Ordering::Acquire)
            && let Err(e) = consumer.pause(partitions)
        {
            // A record fetched anyway is handed back by `hold_poll`.
            warn!(error = %e, "Could not pause the assigned partitions until the start.");
        }
        self.membership.partitions.store(count, Ordering::Release);
        self.membership.assignments.fetch_add(1, Ordering::AcqRel);
    }
}

/// What the consumer thread gets at the start.
struct Start {
    clock: Clock,
    control: Arc<Control>,
}

/// A member of the group holding its partitions, ready for the start. Dropping it without
/// [`PreparedConsume::run`] leaves the group.
pub struct PreparedConsume {
    /// Consume is not paced: an empty profile (a target of 0 records/s).
    profile: Profile,
    interval: Duration,
    recorder: Arc<Recorder>,
    start: std_mpsc::Sender<Start>,
    done: tokio::sync::oneshot::Receiver<()>,
    thread: std::thread::JoinHandle<(Vec<u64>, bool)>,
    run_group: Option<RunGroup>,
}

/// The consumer thread at work.
pub struct Consuming {
    done: tokio::sync::oneshot::Receiver<()>,
    thread: std::thread::JoinHandle<(Vec<u64>, bool)>,
    run_group: Option<RunGroup>,
}

impl Consuming {
    /// Waits for the thread, which leaves the group before it ends, then deletes the run's
    /// group; returns the records consumed per partition and whether it stopped early.
    pub async fn finish(self) -> Result<(Vec<u64>, bool), EngineError> {
        let thread = self.thread;
        let result = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| EngineError::Sender(e.to_string()))?
            .map_err(|_| EngineError::Sender("the consumer thread panicked".into()))?;
        if let Some(group) = &self.run_group {
            group.delete().await;
        }
        Ok(result)
    }
}

/// Creates the consumer, checks the topic exists, subscribes, and waits (up to `timeout`)
/// until the group assigned this agent its partitions, which it then holds until the start.
pub async fn prepare_consume(
    job: ConsumeJob,
    recorder: Arc<Recorder>,
    timeout: Duration,
) -> Result<PreparedConsume, EngineError> {
    let membership = Arc::new(Membership {
        hold: AtomicBool::new(true),
        assignments: AtomicU64::new(0),
        partitions: AtomicU64::new(0),
    });
    let context = GroupContext {
        membership: membership.clone(),
        lag: LagContext::new(recorder.clone(), &job.topic),
    };
    let mut config = job.client.clone();
    sample_lag(&mut config);
    let topic = job.topic.clone();
    let consumer =
        tokio::task::spawn_blocking(move || -> Result<BaseConsumer<GroupContext>, EngineError> {
            let consumer: BaseConsumer<GroupContext> = config
                .create_with_context(context)
                .map_err(EngineError::Consumer)?;
            let md = consumer
                .fetch_metadata(Some(&topic), timeout)
                .map_err(EngineError::Consumer)?;
            let partitions = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if partitions == 0 {
                return Err(EngineError::Group(format!(
                    "topic {topic} has no partitions to consume"
                )));
            }
            consumer
                .subscribe(&[topic.as_str()])
                .map_err(EngineError::Consumer)?;
            Ok(consumer)
        })
        .await
        .map_err(|e| EngineError::Sender(e.to_string()))??;

    let (start_tx, start_rx) = std_mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let end_ns = ns(job.duration);
    let thread = {
        let recorder = recorder.clone();
        let membership = membership.clone();
        std::thread::Builder::new()
            .name("barrage-consumer".into())
            .spawn(move || {
                let result = consumer_thread(&consumer, &membership, &recorder, end_ns, &start_rx);
                let _ = done_tx.send(());
                // Leave the group now (offsets are committed on close).
                drop(consumer);
                result
            })
            .map_err(EngineError::Thread)?
    };

    // Ready means: a member of the group, holding what it was assigned.
    let deadline = Instant::now() + timeout;
    while membership.assignments.load(Ordering::Acquire) == 0 {
        if thread.is_finished() {
            return Err(EngineError::Group(
                "the consumer thread ended before the group assigned partitions".into(),
            ));
        }
        if Instant::now() >= deadline {
            // Dropping `start_tx` ends the thread, which leaves the group.
            return Err(EngineError::Group(format!(
                "group {} gave this agent no partition assignment for topic {} within {:.1}s \
                 (is the group coordinator reachable? a larger --connect-timeout waits longer)",
                job.client.get("group.id").unwrap_or("?"),
                job.topic,
                timeout.as_secs_f64()
            )));
        }
        tokio::time::sleep(HOLD_POLL).await;
    }
    info!(
        topic = %job.topic,
        partitions = membership.partitions.load(Ordering::Acquire),
        "Joined the consumer group; holding the assigned partitions until the start."
    );
    Ok(PreparedConsume {
        profile: Profile::new(Vec::new()),
        interval: job.interval,
        recorder,
        start: start_tx,
        done: done_rx,
        thread,
        run_group: job.run_group,
    })
}

impl PreparedConsume {
    /// Starts the consumer thread on `clock`: it consumes until the duration is over or
    /// `control.stop()`. Under load the producer engine rolls the intervals meanwhile.
    pub fn start(self, clock: Clock, control: Arc<Control>) -> Result<Consuming, EngineError> {
        self.start
            .send(Start { clock, control })
            .map_err(|_| EngineError::Group("the consumer thread ended before the start".into()))?;
        Ok(Consuming {
            done: self.done,
            thread: self.thread,
            run_group: self.run_group,
        })
    }

    /// Consumes from the start of `clock` until the duration is over or `control.stop()`,
    /// sending every closed interval to `intervals`.
    pub async fn run(
        self,
        clock: Clock,
        control: Arc<Control>,
        intervals: mpsc::Sender<IntervalRecord>,
    ) -> Result<Outcome, EngineError> {
        let (interval, recorder) = (self.interval, self.recorder.clone());
        let mut consuming = self.start(clock, control)?;
        let len = ns(interval.max(Duration::from_millis(10)));
        let mut index: u32 = 0;
        let mut spare = Histograms::default();
        loop {
            let boundary = clock.at(len * u64::from(index + 1));
            tokio::select! {
                _ = tokio::time::sleep_until(boundary.into()) => {
                    spare = roll(&recorder, spare, index, len, len * u64::from(index + 1), &intervals).await;
                    index += 1;
                }
                _ = &mut consuming.done => break,
            }
        }
        let end = clock.now_ns();
        let (per_partition, stopped_early) = consuming.finish().await?;
        let start_ns = len * u64::from(index);
        let histograms = recorder.swap(spare);
        let last = IntervalRecord {
            index,
            start_ns,
            end_ns: end.max(start_ns),
            histograms,
            counters: recorder.counters().snapshot(),
            scheduled: 0,
            consumer_lag: recorder.consumer_lag(),
        };
        let _ = intervals.send(last).await;
        let counters = recorder.counters().snapshot();
        info!(
            consumed = counters.consumed,
            bytes = counters.bytes,
            errors = counters.errors,
            "Consumed."
        );
        Ok(Outcome {
            counters,
            per_partition,
            planned: 0,
            elapsed: Duration::from_nanos(end),
            stopped_early,
            unflushed: 0,
        })
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Closes interval `index` (ending at `end_ns`) and returns the histograms to fill next.
async fn roll(
    recorder: &Recorder,
    spare: Histograms,
    index: u32,
    len: u64,
    end_ns: u64,
    out: &mpsc::Sender<IntervalRecord>,
) -> Histograms {
    let histograms = recorder.swap(spare);
    let record = IntervalRecord {
        index,
        start_ns: end_ns.saturating_sub(len),
        end_ns,
        histograms,
        counters: recorder.counters().snapshot(),
        scheduled: 0,
        consumer_lag: recorder.consumer_lag(),
    };
    // A full queue waits for the uploader (bounded memory, nothing dropped).
    match out.send(record).await {
        // The receiver keeps the histograms; start the next interval with fresh ones.
        Ok(()) => Histograms::default(),
        Err(mpsc::error::SendError(record)) => record.histograms,
    }
}

/// Nanoseconds since the Unix epoch on this machine's wall clock.
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The consumer's thread: holds the partitions (serving the group) until the start arrives
/// and its time comes, then consumes. Returns the records consumed per partition and whether
/// it stopped early.
fn consumer_thread(
    consumer: &BaseConsumer<GroupContext>,
    membership: &Membership,
    recorder: &Recorder,
    end_ns: u64,
    start: &std_mpsc::Receiver<Start>,
) -> (Vec<u64>, bool) {
    let Start { clock, control } = loop {
        match start.try_recv() {
            Ok(s) => break s,
            Err(TryRecvError::Empty) => hold_poll(consumer, HOLD_POLL),
            Err(TryRecvError::Disconnected) => return (Vec::new(), true),
        }
    };
    // Nothing is read before the shared start.
    loop {
        let left = clock.origin().saturating_duration_since(Instant::now());
        if left.is_zero() || control.is_stopped() {
            break;
        }
        hold_poll(consumer, left.min(HOLD_POLL));
    }
    // Rebalance callbacks run inside `poll` on this thread: nothing pauses after this.
    membership.hold.store(false, Ordering::Release);
    match consumer.assignment() {
        Ok(assigned) if assigned.count() > 0 => {
            if let Err(e) = consumer.resume(&assigned) {
                recorder.counters().error(&error_kind(&e));
                warn!(error = %e, "Could not resume the assigned partitions at the start.");
            }
        }
        Ok(_) => debug!("No partition assigned at the start."),
        Err(e) => warn!(error = %e, "Could not read the assignment at the start."),
    }
    consume_loop(consumer, recorder, clock, end_ns, &control)
}

/// One poll while holding the partitions: serves the group. A record that got through anyway
/// (fetched before its partition was paused) is handed back: its partition is paused and
/// rewound to it, so it is read after the start.
fn hold_poll(consumer: &BaseConsumer<GroupContext>, wait: Duration) {
    match consumer.poll(wait) {
        None => {}
        Some(Err(e)) => debug!(error = %e, "Consumer error while waiting for the start."),
        Some(Ok(m)) => {
            let (topic, partition, offset) = (m.topic().to_string(), m.partition(), m.offset());
            drop(m);
            let mut one = TopicPartitionList::new();
            one.add_partition(&topic, partition);
            if let Err(e) = consumer.pause(&one) {
                warn!(error = %e, partition, "Could not pause a partition before the start.");
            }
            if let Err(e) = consumer.seek(&topic, partition, Offset::Offset(offset), HOLD_POLL * 50)
            {
                warn!(error = %e, partition, offset, "Could not rewind a record read before the start.");
            }
        }
    }
}

/// Polls until `end_ns` on `clock` or a stop. Returns the records consumed per partition and
/// whether it stopped early.
fn consume_loop(
    consumer: &BaseConsumer<GroupContext>,
    recorder: &Recorder,
    clock: Clock,
    end_ns: u64,
    control: &Control,
) -> (Vec<u64>, bool) {
    let counters = recorder.counters();
    let mut per_partition: Vec<u64> = Vec::new();
    loop {
        let stopped = control.is_stopped();
        let left = end_ns.saturating_sub(clock.now_ns());
        if stopped || left == 0 {
            consumer.context().lag.finish(consumer);
            return (per_partition, stopped);
        }
        let wait = Duration::from_nanos(left).min(Duration::from_millis(50));
        match consumer.poll(wait) {
            None => {}
            Some(Err(e)) => counters.error(&error_kind(&e)),
            Some(Ok(m)) => {
                let received = wall_ns();
                if let Some(ms) = m
                    .timestamp()
                    .to_millis()
                    .and_then(|t| u64::try_from(t).ok())
                {
                    recorder.record_e2e(ms.saturating_mul(1_000_000), received);
                }
                let bytes = m.payload_len() + m.key().map_or(0, <[u8]>::len);
                counters.consumed.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(u64::try_from(bytes).unwrap_or(0), Ordering::Relaxed);
                if let Ok(p) = usize::try_from(m.partition()) {
                    if per_partition.len() <= p {
                        per_partition.resize(p + 1, 0);
                    }
                    per_partition[p] += 1;
                }
            }
        }
    }
}

/// RoundTrip's reader: a consumer positioned at the end of every partition before the first
/// send, so every record this agent sends can come back.
pub struct RoundTripReader {
    consumer: BaseConsumer<LagContext>,
    agent: String,
    recorder: Arc<Recorder>,
}

impl RoundTripReader {
    /// Connects and positions the consumer (blocking work off the async workers).
    pub async fn connect(
        config: ClientConfig,
        topic: &str,
        agent: String,
        recorder: Arc<Recorder>,
        timeout: Duration,
    ) -> Result<Self, EngineError> {
        let topic = topic.to_string();
        let lag = recorder.clone();
        let consumer =
            tokio::task::spawn_blocking(move || round_trip_consumer(&config, &topic, lag, timeout))
                .await
                .map_err(|e| EngineError::Sender(e.to_string()))?
                .map_err(EngineError::Consumer)?;
        Ok(RoundTripReader {
            consumer,
            agent,
            recorder,
        })
    }

    /// Starts reading on its own thread, on `clock`.
    fn start(self, clock: Clock) -> Result<Reading, EngineError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("barrage-round-trip".into())
            .spawn(move || {
                let mut tracker = SeqTracker::default();
                read_own_records(
                    &self.consumer,
                    &self.agent,
                    &self.recorder,
                    clock,
                    &flag,
                    &mut tracker,
                );
                tracker
            })
            .map_err(EngineError::Thread)?;
        Ok(Reading { stop, thread })
    }
}

/// A reader running on its thread.
struct Reading {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<SeqTracker>,
}

impl Reading {
    /// Stops reading and returns what came back.
    async fn finish(self) -> Option<SeqTracker> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join().ok())
            .await
            .ok()
            .flatten()
    }
}

/// One agent's workload, connected and warmed up: the agent reports `Ready` with it.
pub enum Workload {
    Produce(engine::Prepared),
    RoundTrip(engine::Prepared, RoundTripReader),
    Consume(PreparedConsume),
    /// Consume with `backlog.underLoad`: the group drains while the producer writes at the
    /// load's rate.
    Drain(PreparedConsume, engine::Prepared),
}

/// How a workload ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: Outcome,
    /// RoundTrip: the sequence numbers that came back.
    pub tracker: Option<SeqTracker>,
}

/// Who an agent is and how it connects.
pub struct Setup<'a> {
    pub spec: &'a LoadTestSpec,
    /// The run: seeds the record generators when the spec has no `seed`.
    pub run_id: &'a str,
    pub share: Share,
    /// Unique per agent and incarnation; RoundTrip tags records with it.
    pub agent_id: String,
    /// The Consume group's id when `spec.kafka.consumer.groupId` is not set
    /// (`barrage-{name}-{runId}`: every agent of a run in one group).
    pub group_id: String,
    pub sasl: Option<&'a SaslCredentials>,
    pub connect_timeout: Duration,
    /// Longest wait for outstanding acknowledgements at the end (the job's default if None).
    pub flush_timeout: Option<Duration>,
}

/// Builds and connects the workload `setup.spec` asks for.
pub async fn prepare(setup: Setup<'_>, recorder: Arc<Recorder>) -> Result<Workload, EngineError> {
    let spec = setup.spec;
    match spec.workload.kind {
        WorkloadKind::Consume => {
            let job = ConsumeJob {
                client: consumer_config(&spec.kafka, setup.sasl, &setup.group_id),
                topic: spec.topic.name.clone(),
                duration: spec.load.total_duration(),
                interval: spec.report.interval.as_std(),
                run_group: spec.kafka.consumer.group_id.is_none().then(|| RunGroup {
                    admin: base_config(&spec.kafka, setup.sasl),
                    group: setup.group_id.clone(),
                }),
            };
            let consume = prepare_consume(job, recorder.clone(), setup.connect_timeout).await?;
            let under_load = spec.workload.backlog.as_ref().is_some_and(|b| b.under_load);
            if under_load {
                let producer = engine::prepare(produce_job(&setup, false)?, recorder).await?;
                return Ok(Workload::Drain(consume, producer));
            }
            Ok(Workload::Consume(consume))
        }
        kind @ (WorkloadKind::Produce | WorkloadKind::RoundTrip) => {
            let round_trip = kind == WorkloadKind::RoundTrip;
            let produce = produce_job(&setup, round_trip)?;
            // The reader is positioned before the producer exists: nothing sent is missed.
            let reader = if round_trip {
                let config = consumer_config(
                    &spec.kafka,
                    setup.sasl,
                    &format!("barrage-{}", setup.agent_id),
                );
                Some(
                    RoundTripReader::connect(
                        config,
                        &spec.topic.name,
                        setup.agent_id.clone(),
                        recorder.clone(),
                        setup.connect_timeout,
                    )
                    .await?,
                )
            } else {
                None
            };
            let prepared = engine::prepare(produce, recorder).await?;
            Ok(match reader {
                Some(r) => Workload::RoundTrip(prepared, r),
                None => Workload::Produce(prepared),
            })
        }
    }
}

/// The producer's job of `setup` (RoundTrip's records carry the agent's id).
fn produce_job(setup: &Setup<'_>, round_trip: bool) -> Result<engine::ProduceJob, EngineError> {
    let values = job::values(setup.spec, setup.run_id)?;
    let mut produce = job::produce_job(
        setup.spec,
        setup.run_id,
        setup.share,
        values,
        setup.sasl,
        round_trip.then(|| setup.agent_id.clone()),
    );
    if let Some(t) = setup.flush_timeout {
        produce.flush_timeout = t;
    }
    Ok(produce)
}

impl Workload {
    /// The fleet-wide schedule in ticks (empty for Consume, which is not paced).
    pub fn profile(&self) -> &Profile {
        match self {
            Workload::Produce(p) | Workload::RoundTrip(p, _) | Workload::Drain(_, p) => p.profile(),
            Workload::Consume(c) => &c.profile,
        }
    }

    /// Changes the producer's share before the start (Consume: the group splits partitions).
    pub fn set_share(&mut self, share: Share) {
        match self {
            Workload::Produce(p) | Workload::RoundTrip(p, _) | Workload::Drain(_, p) => {
                p.set_share(share)
            }
            Workload::Consume(_) => {}
        }
    }

    /// Leaves the paused spans (offsets from the start, ns) out of the producer's schedule
    /// before the start: an agent starting during or after a pause follows the fleet's
    /// schedule (Consume is not paced and keeps reading).
    pub fn pause(&mut self, spans: &[(u64, u64)]) {
        match self {
            Workload::Produce(p) | Workload::RoundTrip(p, _) | Workload::Drain(_, p) => {
                p.pause(spans)
            }
            Workload::Consume(_) => {}
        }
    }

    /// Runs to the end on `clock`, or until `control.stop()`.
    pub async fn run(
        self,
        clock: Clock,
        control: Arc<Control>,
        intervals: mpsc::Sender<IntervalRecord>,
    ) -> Result<Finished, EngineError> {
        match self {
            Workload::Produce(p) => Ok(Finished {
                outcome: p.run(clock, control, intervals).await?,
                tracker: None,
            }),
            Workload::Consume(c) => Ok(Finished {
                outcome: c.run(clock, control, intervals).await?,
                tracker: None,
            }),
            Workload::Drain(c, p) => {
                // The producer rolls the intervals; the group reads beside it, into the same
                // recorder.
                let consuming = c.start(clock, control.clone())?;
                let result = p.run(clock, control, intervals).await;
                let (consumed, _) = consuming.finish().await?;
                let mut outcome = result?;
                if outcome.per_partition.is_empty() {
                    outcome.per_partition = consumed;
                }
                Ok(Finished {
                    outcome,
                    tracker: None,
                })
            }
            Workload::RoundTrip(p, reader) => {
                let reading = reader.start(clock)?;
                // The engine waits (bounded) for its records to come back and counts the
                // missing ones as lost before it closes the last interval.
                let result = p.run(clock, control, intervals).await;
                let tracker = reading.finish().await;
                if tracker.is_none() {
                    warn!("The RoundTrip reader thread failed.");
                }
                Ok(Finished {
                    outcome: result?,
                    tracker,
                })
            }
        }
    }
}
