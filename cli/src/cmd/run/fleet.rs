//! The run's agents: `agents.count` copies of the agent protocol that ECS runs, in this
//! process, over a store in memory and the run's folder as blob store. This module plays
//! the controller's part for them: it writes the fleet, writes `startAt` once every agent is
//! ready, and tells them to stop.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use barrage_agent::metrics::{AgentMetrics, Identity};
use barrage_agent::protocol::{self, AgentError, Finished};
use barrage_agent::spool::DeliveryConfig;
use barrage_crds::agent_status::AgentPhase;
use barrage_crds::env::{Assignment, BlobsUrl, LogFormat, StoreUrl};
use barrage_crds::loadtest::LoadTest;
use barrage_crds::status::{FleetAssignment, LoadTestStatus, Phase};
use barrage_store::Store as _;
use barrage_store::dir::DirBlobs;
use barrage_store::memory::MemoryStore;
use barrage_store::rebased::Rebased;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RunError;

/// How often an agent's status record is written (what the window reports wait for).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How often the agents' readiness is looked at before the start.
const READY_POLL: Duration = Duration::from_millis(100);

/// The only leader there is: the status writes of this command.
const EPOCH: u64 = 1;

/// The run's folder as the agents' blob store: the run's keys are paths below it.
pub type RunBlobs = Rebased<DirBlobs>;

/// The agents of one local run.
pub struct LocalFleet {
    name: String,
    run_id: String,
    store: Arc<MemoryStore>,
    blobs: Arc<RunBlobs>,
    metrics: Vec<Arc<AgentMetrics>>,
    agents: Vec<JoinHandle<Result<Finished, AgentError>>>,
    /// `true` stops every agent early (Ctrl-C, `maxDuration`); kept alive while they run.
    stop: watch::Sender<bool>,
}

impl LocalFleet {
    /// Stores `lt` with its fleet and starts its agents: each connects, prepares its share and
    /// reports `Ready`.
    pub async fn launch(lt: &LoadTest, run_id: &str, out: &Path) -> Result<LocalFleet, RunError> {
        let name = lt.name().to_string();
        let store = Arc::new(MemoryStore::new());
        store.apply(lt).await?;
        let count = lt.spec.agents.count.max(1);
        let (stop, _) = watch::channel(false);
        let mut fleet = LocalFleet {
            blobs: Arc::new(Rebased::new(
                DirBlobs::new(out),
                barrage_crds::keys::run_prefix(&name, run_id),
            )),
            name,
            run_id: run_id.to_string(),
            store,
            metrics: Vec::new(),
            agents: Vec::new(),
            stop,
        };
        fleet
            .update_status(|s| {
                s.phase = Phase::Provisioning;
                s.run_id = Some(run_id.to_string());
                s.fleet = Some(FleetAssignment {
                    epoch: 1,
                    members: (0..count).collect(),
                    effective_at: None,
                    spec_generation: 1,
                    paused: false,
                    paused_spans: Vec::new(),
                });
            })
            .await?;
        for slot in 0..count {
            fleet.spawn_agent(slot)?;
        }
        Ok(fleet)
    }

    fn spawn_agent(&mut self, slot: u32) -> Result<(), RunError> {
        let assignment = Assignment {
            load_test: self.name.clone(),
            run_id: self.run_id.clone(),
            slot,
            incarnation: 0,
            store: StoreUrl::Memory,
            blobs: BlobsUrl::Memory,
            metrics_addr: None,
            log_format: LogFormat::Compact,
            heartbeat: HEARTBEAT,
        };
        let delivery = DeliveryConfig::from_lookup(&protocol::agent_name(&assignment), |var| {
            std::env::var(var).ok()
        })
        .map_err(AgentError::from)?;
        let metrics = Arc::new(AgentMetrics::new(Identity {
            load_test: self.name.clone(),
            run_id: self.run_id.clone(),
            slot,
            incarnation: 0,
        }));
        let mut stop = self.stop.subscribe();
        let stopped = async move {
            // Resolves when told to stop (never when the sender is dropped: it outlives us).
            while stop.changed().await.is_ok() {
                if *stop.borrow() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        self.metrics.push(metrics.clone());
        self.agents.push(tokio::spawn(protocol::run_measured(
            assignment,
            self.store.clone(),
            self.blobs.clone(),
            stopped,
            metrics,
            delivery,
        )));
        Ok(())
    }

    /// Waits until every agent is ready (at most `limit`), then writes `startAt`, `lead`
    /// from now, and returns it with its instant on this machine's clock. An agent that
    /// ends before the start (it could not connect or prepare) fails the run with its error.
    pub async fn start(
        &mut self,
        lead: Duration,
        limit: Duration,
    ) -> Result<(DateTime<Utc>, Instant), RunError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.agents.iter().position(JoinHandle::is_finished) {
                let agent = self.agents.swap_remove(i);
                return Err(match agent.await {
                    Ok(Err(e)) => RunError::Agent(e),
                    Ok(Ok(_)) => RunError::NotStarted("an agent ended before the start".into()),
                    Err(e) => RunError::AgentTask(e),
                });
            }
            let statuses = self
                .store
                .list_agent_status(&self.name, &self.run_id)
                .await?;
            let ready = statuses
                .iter()
                .filter(|a| a.phase == AgentPhase::Ready)
                .count();
            if ready == self.agents.len() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(RunError::NotStarted(format!(
                    "{ready} of {} agents ready within {limit:?} (spec.timeouts.ready + spec.timeouts.provisioning)",
                    self.agents.len()
                )));
            }
            tokio::time::sleep(READY_POLL).await;
        }
        let origin = Instant::now() + lead;
        let start_at = Utc::now() + chrono::Duration::from_std(lead).unwrap_or_default();
        self.update_status(|s| {
            s.phase = Phase::Running;
            s.start_at = Some(start_at);
            if let Some(f) = s.fleet.as_mut() {
                f.effective_at = Some(start_at);
            }
        })
        .await?;
        Ok((start_at, origin))
    }

    /// Tells every agent to stop: each stops its load, flushes and uploads what it measured.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// The agents' metrics (their counters, for the progress line).
    pub fn metrics(&self) -> Vec<Arc<AgentMetrics>> {
        self.metrics.clone()
    }

    /// The run's folder as blob store, with the store the agents write their status to.
    pub fn stores(&self) -> (Arc<RunBlobs>, Arc<MemoryStore>) {
        (self.blobs.clone(), self.store.clone())
    }

    /// Waits for every agent to end; in slot order, or the first error.
    pub async fn join(&mut self) -> Result<Vec<Finished>, RunError> {
        let mut finished = Vec::new();
        let mut first_error = None;
        for agent in std::mem::take(&mut self.agents) {
            match agent.await {
                Ok(Ok(f)) => finished.push(f),
                Ok(Err(e)) => {
                    first_error.get_or_insert(RunError::Agent(e));
                }
                Err(e) => {
                    first_error.get_or_insert(RunError::AgentTask(e));
                }
            }
        }
        first_error.map_or(Ok(finished), Err)
    }

    /// Changes the LoadTest's status as the controller would (one conditional write).
    async fn update_status(
        &self,
        change: impl FnOnce(&mut LoadTestStatus),
    ) -> Result<(), RunError> {
        let stored = self.store.get_load_test(&self.name).await?.ok_or_else(|| {
            RunError::NotStarted(format!("{} vanished from the store", self.name))
        })?;
        let mut status = stored.status.unwrap_or_default();
        change(&mut status);
        self.store
            .write_status(&self.name, &status, stored.version, EPOCH)
            .await?;
        Ok(())
    }
}

impl Drop for LocalFleet {
    /// Agents still running when the run gives up (an error before the start) end with it.
    fn drop(&mut self) {
        for agent in &self.agents {
            agent.abort();
        }
    }
}
