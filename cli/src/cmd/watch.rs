//! `barrage watch NAME`: follow a LoadTest's progress until it ends; exit by its verdict.

use crate::Outcome;
use crate::cmd::client::{
    client_store, default_wait, die, finish, follow, parse_timeout, store_outcome,
};
use clap::Args;
use std::time::Duration;

/// `barrage watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The LoadTest.
    pub name: String,
    /// Longest wait, e.g. 10m (default: the spec's durations and timeouts).
    #[arg(long)]
    pub timeout: Option<String>,
}

/// `barrage watch NAME`.
pub async fn watch(args: WatchArgs) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rec = match store.get_load_test(&args.name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{} not found", args.name),
            );
        }
        Err(e) => return die(store_outcome(&e), e),
    };
    let limit = match (&args.timeout, &rec.doc) {
        (Some(t), _) => match parse_timeout(t) {
            Ok(d) => d,
            Err(o) => return o,
        },
        (None, Ok(lt)) => default_wait(lt),
        (None, Err(_)) => Duration::from_secs(60),
    };
    match follow(store.as_ref(), &args.name, None, limit).await {
        Ok(st) => finish(&args.name, &st),
        Err(o) => o,
    }
}
