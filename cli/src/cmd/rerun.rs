//! `barrage rerun NAME`: run a LoadTest's spec again.

use crate::Outcome;
use crate::cmd::client::{
    client_store, default_wait, die, finish, follow, parse_timeout, store_outcome,
};
use barrage_store::Applied;
use clap::Args;

/// `barrage rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The LoadTest.
    pub name: String,
    /// Follow the new run until it ends; the exit code is its verdict.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait, e.g. 10m (default: the spec's durations and timeouts).
    #[arg(long)]
    pub timeout: Option<String>,
}

/// `barrage rerun NAME`: writes the next `spec.rerun`, so the controller runs the same spec
/// again (superseding a live run). The one way to start a run over on purpose.
pub async fn rerun(args: RerunArgs) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let name = args.name;
    let rec = match store.get_load_test(&name).await {
        Ok(Some(rec)) => rec,
        Ok(None) => return die(Outcome::InvalidInput, format!("loadtest/{name} not found")),
        Err(e) => return die(store_outcome(&e), e),
    };
    let mut lt = match rec.doc {
        Ok(lt) => lt,
        Err(e) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{name} cannot be read, so it cannot run again: {e}"),
            );
        }
    };
    let ran = rec.status.as_ref().map_or(0, |st| st.rerun);
    lt.spec.rerun = lt.spec.rerun.max(ran).saturating_add(1);
    let limit = match &args.timeout {
        Some(t) => match parse_timeout(t) {
            Ok(d) => d,
            Err(o) => return o,
        },
        None => default_wait(&lt),
    };
    let generation = match store.apply(&lt).await {
        Ok(Applied::Created { generation } | Applied::Updated { generation })
        | Ok(Applied::Unchanged { generation }) => generation,
        Err(e) => return die(store_outcome(&e), e),
    };
    println!(
        "loadtest/{name} rerun {} requested (generation {generation})",
        lt.spec.rerun
    );
    if !args.wait {
        return Outcome::Passed;
    }
    match follow(store.as_ref(), &name, Some(generation), limit).await {
        Ok(st) => finish(&name, &st),
        Err(o) => o,
    }
}
