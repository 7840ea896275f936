//! `barrage report NAME [--out DIR]` downloads a run's report set; `barrage report render DIR`
//! renders one offline from a folder of interval logs.

use crate::Outcome;
use crate::cmd::client::{client_blobs, client_store, die, outcome_of, store_outcome};
use barrage_crds::keys::{self, ReportFile};
use clap::Args;
use std::path::{Path, PathBuf};

/// `barrage report`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    /// The LoadTest.
    #[arg(required = true)]
    pub name: Option<String>,
    /// Where the files go (default barrage-reports/NAME/RUN).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
}

/// `barrage report render`.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Renders the full report set (report.json, report.html, merged.hlog, junit.xml) from a
    /// folder of interval logs (`.hlog`, Barrage's or any HdrHistogram tool's), offline.
    Render {
        /// Folder searched for `.hlog` files (recursively).
        dir: PathBuf,
        /// Where the report set goes (default: DIR).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `barrage report render DIR [--out DIR]`.
pub fn report_render(dir: &Path, out: Option<&Path>) -> Outcome {
    let out = out.unwrap_or(dir);
    match barrage_operator::report::render_dir(dir, out) {
        Ok(set) => {
            let s = &set.summary;
            println!(
                "Rendered {} from {}: {} records acked, produce p50 {} µs, p99 {} µs, max {} µs; verdict {:?}",
                out.display(),
                dir.display(),
                s.records_acked,
                s.produce_p50_us,
                s.produce_p99_us,
                s.produce_max_us,
                set.verdict.result
            );
            Outcome::Passed
        }
        Err(e) => die(
            Outcome::InvalidInput,
            format!("cannot render {}: {e}", dir.display()),
        ),
    }
}

/// `barrage report NAME [--out DIR]`: downloads the run's report set.
pub async fn report(args: ReportArgs) -> Outcome {
    if let Some(ReportCommand::Render { dir, out }) = &args.command {
        return report_render(dir, out.as_deref());
    }
    let Some(name) = args.name.clone() else {
        return die(
            Outcome::InvalidInput,
            "barrage report needs NAME (or `render DIR`)",
        );
    };
    let store = match client_store().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let blobs = match client_blobs().await {
        Ok(b) => b,
        Err(o) => return o,
    };
    let rec = match store.get_load_test(&name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return die(
                Outcome::InvalidInput,
                format!("loadtest/{} not found", name),
            );
        }
        Err(e) => return die(store_outcome(&e), e),
    };
    let st = rec.status.unwrap_or_default();
    let Some(run) = st.run_id.clone() else {
        return die(
            Outcome::RunError,
            format!("loadtest/{} has not started a run yet", name),
        );
    };
    let out = args
        .out
        .unwrap_or_else(|| Path::new("barrage-reports").join(&name).join(&run));
    if let Err(e) = std::fs::create_dir_all(&out) {
        return die(
            Outcome::RunError,
            format!("cannot create {}: {e}", out.display()),
        );
    }
    let mut written = 0;
    for file in ReportFile::ALL {
        let key = keys::report_key(&name, &run, file);
        match blobs.get(&key).await {
            Ok(Some(body)) => {
                let path = out.join(file.file_name());
                if let Err(e) = std::fs::write(&path, &body[..]) {
                    return die(
                        Outcome::RunError,
                        format!("cannot write {}: {e}", path.display()),
                    );
                }
                println!("{}", path.display());
                written += 1;
            }
            Ok(None) => eprintln!("missing: {}", blobs.uri(&key)),
            Err(e) => return die(Outcome::RunError, e),
        }
    }
    if written == 0 {
        return die(
            Outcome::RunError,
            format!(
                "no report for run {run} of loadtest/{} yet (phase {})",
                name,
                st.phase.as_str()
            ),
        );
    }
    if st.phase.is_terminal() {
        outcome_of(&st)
    } else {
        Outcome::Passed
    }
}
