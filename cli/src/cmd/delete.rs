//! `barrage delete NAME [--wait]`: the controller stops the agents, writes a partial report
//! and removes the record.

use crate::Outcome;
use crate::cmd::client::{client_store, die, parse_timeout, store_outcome};
use barrage_store::StoreError;
use clap::Args;
use std::time::{Duration, Instant};

/// `barrage delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The LoadTest.
    pub name: String,
    /// Wait until the controller stopped every agent and removed the record.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait (default 5m).
    #[arg(long, default_value = "5m")]
    pub timeout: String,
}

/// `barrage delete NAME [--wait]`.
pub async fn delete(args: DeleteArgs) -> Outcome {
    let limit = match parse_timeout(&args.timeout) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    match store.request_delete(&args.name).await {
        Ok(()) => println!("loadtest/{} deletion requested", args.name),
        Err(StoreError::NotFound { .. }) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{} not found", args.name),
            );
        }
        Err(e) => return die(store_outcome(&e), e),
    }
    if !args.wait {
        return Outcome::Passed;
    }
    let deadline = Instant::now() + limit;
    let mut last_phase = None;
    loop {
        match store.get_load_test(&args.name).await {
            Ok(None) => {
                println!("loadtest/{} deleted", args.name);
                return Outcome::Passed;
            }
            Ok(Some(rec)) => {
                let phase = rec.status.map(|s| s.phase);
                if phase != last_phase {
                    if let Some(p) = phase {
                        eprintln!("{}: {}", args.name, p.as_str());
                    }
                    last_phase = phase;
                }
            }
            Err(e) if !e.is_retryable() => return die(store_outcome(&e), e),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return die(
                Outcome::RunError,
                format!(
                    "timed out waiting for loadtest/{} to be removed (is a controller running?)",
                    args.name
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
