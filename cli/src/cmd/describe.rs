//! `barrage describe NAME`: one LoadTest in detail.

use crate::Outcome;
use crate::cmd::client::{client_store, die, store_outcome};
use crate::format::describe_text;
use chrono::Utc;

/// `barrage describe NAME`.
pub async fn describe(name: &str) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let rec = match store.get_load_test(name).await {
        Ok(Some(r)) => r,
        Ok(None) => return die(Outcome::InvalidInput, format!("loadtest/{name} not found")),
        Err(e) => return die(store_outcome(&e), e),
    };
    let agents = match rec.status.as_ref().and_then(|s| s.run_id.clone()) {
        Some(run) => store
            .list_agent_status(name, &run)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    print!("{}", describe_text(&rec, &agents, Utc::now()));
    Outcome::Passed
}
