//! `barrage get [NAME] [-o FORMAT]`: list LoadTests, or show one.

use crate::Outcome;
use crate::cmd::client::{client_store, die, store_outcome};
use crate::format::table;
use barrage_store::StoredLoadTest;
use chrono::Utc;
use clap::{Args, ValueEnum};

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetFormat {
    /// Columns.
    Table,
    /// More columns.
    Wide,
    /// The records as JSON.
    Json,
    /// The records as YAML.
    Yaml,
}

/// `barrage get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// One LoadTest (default: all).
    pub name: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: GetFormat,
}

/// A record as data: the document with its status, or (unreadable) its name, error and status.
pub fn record_value(r: &StoredLoadTest) -> serde_json::Value {
    match &r.doc {
        Ok(lt) => {
            let mut lt = lt.clone();
            lt.status = r.status.clone();
            lt.to_value()
        }
        Err(e) => serde_json::json!({
            "metadata": {"name": r.name, "generation": r.generation},
            "error": e.to_string(),
            "status": r.status,
        }),
    }
}

/// `barrage get [NAME] [-o FORMAT]`.
pub async fn get(args: GetArgs) -> Outcome {
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let records = match &args.name {
        Some(name) => match store.get_load_test(name).await {
            Ok(Some(r)) => vec![r],
            Ok(None) => return die(Outcome::InvalidInput, format!("loadtest/{name} not found")),
            Err(e) => return die(store_outcome(&e), e),
        },
        None => match store.list_load_tests().await {
            Ok(mut r) => {
                r.sort_by(|a, b| a.name.cmp(&b.name));
                r
            }
            Err(e) => return die(store_outcome(&e), e),
        },
    };
    let value = || {
        if args.name.is_some() {
            records.first().map(record_value).unwrap_or_default()
        } else {
            serde_json::json!({"kind": "List", "items": records.iter().map(record_value).collect::<Vec<_>>()})
        }
    };
    match args.output {
        GetFormat::Table | GetFormat::Wide => {
            if records.is_empty() {
                eprintln!("No LoadTests.");
            } else {
                print!(
                    "{}",
                    table(&records, args.output == GetFormat::Wide, Utc::now())
                );
            }
        }
        GetFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&value()).unwrap_or_default()
        ),
        GetFormat::Yaml => print!("{}", serde_yaml::to_string(&value()).unwrap_or_default()),
    }
    Outcome::Passed
}
