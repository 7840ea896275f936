//! `barrage controller`: the operator as a service — watch LoadTests in the store and
//! reconcile them with ECS tasks or local agent processes, until SIGTERM.

use crate::Outcome;
use crate::cmd::admin::init;
use crate::cmd::client::die;
pub use crate::cmd::settings::ControllerArgs;
use barrage_crds::env::StoreUrl;
use barrage_operator::launch::Launcher;
use barrage_operator::launch::ecs::EcsLauncher;
use barrage_operator::launch::process::{
    CREDENTIAL_PASS_THROUGH, PASS_THROUGH, ProcessLauncher, pass_through,
};
use barrage_operator::metrics::Metrics;
use barrage_operator::runtime::Controller;
use barrage_operator::runtime::config::{ControllerConfig, LauncherKind};
use barrage_store::Store;
use barrage_store::dynamo::DynamoStore;
use barrage_store::memory::MemoryStore;
use barrage_store::watch::{WatchEvent, WatchHandle, WatchOptions, Watchable as _};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub fn default_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("barrage")
}

/// The process launcher's default agent folder under `~/.cache/barrage/agents/`, one per store:
/// a controller adopts (and reaps as orphans) the agents recorded in its folder, so controllers
/// of different stores must not share one. A memory store lives and dies with its process, so
/// its agents belong to that process alone (`memory-{pid}`).
pub fn agent_folder(store: &StoreUrl, pid: u32) -> String {
    if *store == StoreUrl::Memory {
        return format!("memory-{pid}");
    }
    let mut name: String = store
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    name.trim_matches('-').to_string()
}

pub fn agent_binary(cfg: &ControllerConfig) -> PathBuf {
    if let Some(p) = &cfg.agent_binary {
        return p.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("barrage-agent")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("barrage-agent"))
}

/// Runs `controller` until SIGTERM or Ctrl-C, then gives it `grace` to finish reconciles in
/// progress and release the lease; past that it is dropped (its lease then expires by itself)
/// so that hung AWS calls never keep the process beyond its task's stop timeout.
pub async fn run_until_stopped(controller: Controller, grace: Duration) {
    // The signal is watched by a task of its own: the controller's loop may be waiting on a
    // hung call when it comes, and the grace counts from the signal, not from when it is seen.
    let (requested, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        barrage_agent::cli::shutdown_signal().await;
        let _ = requested.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        if rx.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let deadline = {
        let rx = stopping.clone();
        async move {
            stopped(rx).await;
            tokio::time::sleep(grace).await;
        }
    };
    tokio::select! {
        () = controller.run(stopped(stopping)) => {}
        () = deadline => tracing::warn!(
            ?grace,
            "Shutdown did not finish within its grace (BARRAGE_SHUTDOWN_GRACE): exiting now; the lease expires by itself."
        ),
    }
}

/// The store's change feed, for [`Controller::with_watch`].
type Watch = (mpsc::Receiver<WatchEvent>, WatchHandle);

/// `barrage controller`: the configuration, then the store, the blobs, the launcher and the
/// metrics server, each checked before the controller starts; then the controller itself.
pub async fn controller(args: ControllerArgs) -> Outcome {
    match serve(args).await {
        Ok(()) => Outcome::Passed,
        Err(outcome) => outcome,
    }
}

/// Every `Err` has been reported already (by [`die`]).
async fn serve(args: ControllerArgs) -> Result<(), Outcome> {
    let hostname = std::env::var("HOSTNAME").ok();
    let cfg = args
        .config(hostname.as_deref(), std::process::id())
        .map_err(|e| die(Outcome::InvalidInput, e))?;
    if args.init {
        init(&cfg.store, &cfg.blobs)
            .await
            .map_err(|e| die(Outcome::RunError, e))?;
    }
    let metrics = Arc::new(Metrics::new());
    let (store, watch) = open_store(&cfg).await?;
    let blobs = barrage_store::open_blobs(&cfg.blobs)
        .await
        .map_err(|e| die(Outcome::InvalidInput, e))?;
    blobs
        .list("runs/")
        .await
        .map_err(|e| die(Outcome::RunError, e))?;
    let launcher = open_launcher(&cfg, &metrics).await?;
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = serve_metrics(&cfg, &metrics, async {
        let _ = metrics_stopped.await;
    })
    .await?;

    let grace = cfg.shutdown_grace;
    let mut controller = Controller::new(cfg, store, blobs, launcher).with_metrics(metrics);
    if let Some(w) = watch {
        controller = controller.with_watch(w);
    }
    run_until_stopped(controller, grace).await;
    let _ = stop_metrics.send(());
    if let Some(s) = server {
        let _ = s.await;
    }
    Ok(())
}

/// The store (a DynamoDB table is read once, so a missing table or a denied call stops the
/// start-up), and its watch where the store has one.
async fn open_store(cfg: &ControllerConfig) -> Result<(Arc<dyn Store>, Option<Watch>), Outcome> {
    let options = WatchOptions {
        poll_interval: cfg.watch_poll,
        ..WatchOptions::default()
    };
    match &cfg.store {
        StoreUrl::DynamoDb { table } => {
            let d = Arc::new(DynamoStore::from_env(table.clone()).await);
            d.list_load_tests()
                .await
                .map_err(|e| die(Outcome::RunError, e))?;
            let w = d.watch(options);
            Ok((d, Some(w)))
        }
        StoreUrl::Memory => {
            let m = Arc::new(MemoryStore::new());
            let w = m.watch(options);
            Ok((m, Some(w)))
        }
        other => match barrage_store::open_store(other).await {
            Ok(s) => Ok((s, None)),
            Err(e) => Err(die(Outcome::InvalidInput, e)),
        },
    }
}

/// Local agent processes, or ECS tasks (whose calls the metrics count).
async fn open_launcher(
    cfg: &ControllerConfig,
    metrics: &Metrics,
) -> Result<Arc<dyn Launcher>, Outcome> {
    match cfg.launcher {
        LauncherKind::Process => {
            let mut env = pass_through(PASS_THROUGH);
            env.extend(pass_through(CREDENTIAL_PASS_THROUGH));
            let dir = cfg.agent_log_dir.clone().unwrap_or_else(|| {
                default_cache()
                    .join("agents")
                    .join(agent_folder(&cfg.store, std::process::id()))
            });
            let program = agent_binary(cfg);
            let l =
                ProcessLauncher::new(&program, env, &dir).map_err(|e| die(Outcome::RunError, e))?;
            tracing::info!(agent = %program.display(), logs = %dir.display(), "Agents run as local processes.");
            Ok(Arc::new(l))
        }
        LauncherKind::Ecs => {
            let Some(ecs) = cfg.ecs.clone() else {
                return Err(die(
                    Outcome::InvalidInput,
                    "the ecs launcher needs BARRAGE_ECS_CLUSTER and BARRAGE_AGENT_TASK_DEFINITION",
                ));
            };
            let sdk = barrage_store::aws::sdk_config().await;
            let l = Arc::new(EcsLauncher::new(aws_sdk_ecs::Client::new(&sdk), ecs));
            let stats = l.clone();
            metrics.add_aws_source(Arc::new(move || {
                stats
                    .stats()
                    .snapshot()
                    .into_iter()
                    .map(|(op, c, t, e)| ("ecs", op, c, t, e))
                    .collect()
            }));
            Ok(l)
        }
    }
}

/// `/metrics` and `/healthz` on the configured address, served until `stopped`; None when
/// metrics are off.
async fn serve_metrics(
    cfg: &ControllerConfig,
    metrics: &Arc<Metrics>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<JoinHandle<()>>, Outcome> {
    let Some(addr) = cfg.metrics_addr else {
        return Ok(None);
    };
    let listener = barrage_operator::metrics::bind(addr).await.map_err(|e| {
        die(
            Outcome::RunError,
            format!(
                "cannot listen on {addr} for metrics: {e} (set BARRAGE_METRICS_ADDR or --metrics-addr, or off)"
            ),
        )
    })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %bound, "Serving /metrics and /healthz.");
    Ok(Some(tokio::spawn(barrage_operator::metrics::serve(
        listener,
        metrics.clone(),
        stopped,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_store_has_its_own_agent_folder() {
        let table = |t: &str| StoreUrl::DynamoDb { table: t.into() };
        assert_eq!(agent_folder(&table("barrage"), 7), "dynamodb-barrage");
        assert_eq!(agent_folder(&table("barrage_2"), 7), "dynamodb-barrage-2");
        assert_ne!(
            agent_folder(&table("a"), 7),
            agent_folder(&table("b"), 7),
            "controllers of two tables never adopt each other's agents"
        );
        let dir = StoreUrl::Dir {
            path: "/tmp/x y".into(),
        };
        assert_eq!(agent_folder(&dir, 7), "dir-tmp-x-y");
        assert_eq!(agent_folder(&StoreUrl::Memory, 7), "memory-7");
        assert_ne!(
            agent_folder(&StoreUrl::Memory, 7),
            agent_folder(&StoreUrl::Memory, 8)
        );
    }
}
