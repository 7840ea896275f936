//! The `barrage-agent` process: environment contract in, exit code out.
//!
//! Exit 0 when the agent completed its share (or was stopped and flushed), 1 when it failed
//! (the reason is in its status item and the log), 2 when the environment is invalid.

use std::io::IsTerminal;
use std::process::ExitCode;

use barrage_crds::env::{Assignment, LogFormat};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::protocol;

pub fn main() -> ExitCode {
    let assignment = match Assignment::from_env() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("barrage-agent: invalid environment:\n{e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(assignment.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "Could not start the async runtime.");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let store = match barrage_store::open_store(&assignment.store).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "Could not open the store.");
                return ExitCode::from(1);
            }
        };
        let blobs = match barrage_store::open_blobs(&assignment.blobs).await {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "Could not open the blob store.");
                return ExitCode::from(1);
            }
        };
        info!(
            load_test = %assignment.load_test,
            run_id = %assignment.run_id,
            slot = assignment.slot,
            incarnation = assignment.incarnation,
            "Agent starting."
        );
        match protocol::run(assignment, store, blobs, shutdown_signal()).await {
            Ok(exit) => {
                info!(?exit, "Agent done.");
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!(error = %e, "Agent failed.");
                ExitCode::from(1)
            }
        }
    })
}

/// Resolves on SIGTERM (ECS StopTask) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,barrage_agent=info,barrage_store=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        _ => builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
