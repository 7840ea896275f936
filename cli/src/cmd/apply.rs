//! `barrage apply -f FILE [--wait]`: create or update a LoadTest; with `--wait`, follow it
//! and exit by its verdict.

use crate::Outcome;
use crate::cmd::client::{
    client_store, default_wait, die, finish, follow, parse_timeout, store_outcome,
};
use barrage_store::Applied;
use clap::Args;
use std::path::PathBuf;

/// `barrage apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The LoadTest file (YAML or JSON).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Follow the run until it ends; the exit code is its verdict.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. 10m (default: the spec's durations and timeouts).
    #[arg(long)]
    pub timeout: Option<String>,
}

/// `barrage apply -f FILE [--wait] [--timeout D]`.
pub async fn apply(args: ApplyArgs) -> Outcome {
    let lt = match super::validate::read_load_test(&args.file) {
        Ok(lt) => lt,
        Err(outcome) => return outcome,
    };
    let limit = match &args.timeout {
        Some(t) => match parse_timeout(t) {
            Ok(d) => d,
            Err(o) => return o,
        },
        None => default_wait(&lt),
    };
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let name = lt.name().to_string();
    let applied = match store.apply(&lt).await {
        Ok(a) => a,
        Err(e) => return die(store_outcome(&e), e),
    };
    let generation = match applied {
        Applied::Created { generation } => {
            println!("loadtest/{name} created (generation {generation})");
            generation
        }
        Applied::Updated { generation } => {
            println!("loadtest/{name} configured (generation {generation})");
            generation
        }
        Applied::Unchanged { generation } => {
            println!("loadtest/{name} unchanged (generation {generation})");
            generation
        }
    };
    if !args.wait {
        return Outcome::Passed;
    }
    if let Ok(Some(rec)) = store.get_load_test(&name).await
        && let Some(st) = &rec.status
        && st.phase.is_terminal()
        && st.observed_generation.unwrap_or(0) < generation
    {
        eprintln!(
            "note: loadtest/{name} already finished ({}); a finished run is final. \
             To run it again: barrage rerun {name} --wait (or set a new spec.rerun).",
            st.phase.as_str()
        );
    }
    match follow(store.as_ref(), &name, Some(generation), limit).await {
        Ok(st) => finish(&name, &st),
        Err(o) => o,
    }
}
