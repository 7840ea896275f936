//! Rolling window reports of a local run (`spec.report.window`): each window's report set is
//! written to `windows/NNNNN/` once every agent's heartbeat says it uploaded the window's
//! intervals, by the operator's code over the run's folder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use barrage_crds::loadtest::LoadTest;
use barrage_operator::reconcile::uploaded_through;
use barrage_operator::report::ReportContext;
use barrage_operator::report::fetch::write_due_windows;
use barrage_operator::report::window::WindowClock;
use barrage_store::Store as _;
use barrage_store::memory::MemoryStore;
use tokio::sync::oneshot;

use super::fleet::RunBlobs;
use crate::format::{clock, micros, thousands};

/// Everything needed to write the next due window, remembering only its index.
pub struct Windows {
    blobs: Arc<RunBlobs>,
    store: Arc<MemoryStore>,
    ctx: ReportContext,
    name: String,
    run_id: String,
    interval_ms: u64,
    k: u32,
    origin: Instant,
    next: u32,
}

impl Windows {
    /// `None` when the LoadTest has no `spec.report.window`.
    pub fn new(
        lt: &LoadTest,
        run_id: &str,
        (blobs, store): (Arc<RunBlobs>, Arc<MemoryStore>),
        origin: Instant,
    ) -> Option<Windows> {
        let ctx = ReportContext::for_run(lt, run_id, false);
        let k = ctx.window_intervals?;
        let interval_ms = u64::try_from(lt.spec.report.interval.as_std().as_millis()).ok()?;
        Some(Windows {
            blobs,
            store,
            ctx,
            name: lt.name().to_string(),
            run_id: run_id.to_string(),
            interval_ms,
            k,
            origin,
            next: 0,
        })
    }

    /// Writes every window whose intervals every agent has uploaded (no grace: in-process
    /// agents do not go missing), and prints one line for each.
    pub async fn write_due(&mut self) {
        let agents = match self.store.list_agent_status(&self.name, &self.run_id).await {
            Ok(agents) => agents,
            Err(e) => {
                eprintln!("warning: could not read the agents' status for the window reports: {e}");
                return;
            }
        };
        let due = WindowClock {
            elapsed_ms: u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX),
            interval_ms: self.interval_ms,
            k: self.k,
            grace_ms: u64::MAX,
            uploaded_through: uploaded_through(&agents, &self.run_id),
            last_interval: self.ctx.last_interval,
        };
        let (written, error) = write_due_windows(
            self.blobs.as_ref(),
            &self.ctx,
            &due,
            &mut self.next,
            usize::MAX,
        )
        .await;
        let secs = self.interval_ms.saturating_mul(u64::from(self.k)) / 1_000;
        for (w, set) in written {
            let from = u64::from(w).saturating_mul(secs);
            println!(
                "Window {w:05} ({}-{}): {:?}, records acked {}, produce p99 {}",
                clock(from),
                clock(from.saturating_add(secs)),
                set.verdict.result,
                thousands(set.summary.records_acked),
                micros(set.summary.produce_p99_us),
            );
        }
        if let Some(e) = error {
            eprintln!(
                "warning: could not write the report of window {:05}: {e}",
                self.next
            );
        }
    }
}

/// Looks for due windows every second until told to stop; gives the state back.
pub async fn window_loop(mut windows: Windows, mut stop: oneshot::Receiver<()>) -> Windows {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = &mut stop => return windows,
        }
        windows.write_due().await;
    }
}
