//! The thin async shell: list and read a run's interval blobs, merge them interval by
//! interval (so memory holds one interval's histograms at a time, plus the run's totals), and
//! write the report set back.
//!
//! It talks to storage through the store crate's [`Blobs`] port, whichever adapter holds the
//! run (S3, a folder, memory), using three of its methods: `list`, `get` and `put`.

use std::collections::BTreeMap;
use std::ops::Range;

use barrage_crds::keys::{self, ReportFile};
use barrage_store::Blobs;
use futures::{StreamExt as _, TryStreamExt as _};

use barrage_crds::hlog::DecodeLimits;

use super::{ReportContext, ReportError, ReportSet, build_report, counts, merge::Merger, window};

/// How many blobs are read at once.
pub const READ_CONCURRENCY: usize = 32;
/// How many blobs are decoded at once (on a few threads) before being added: bounds the
/// decoded counts held, however many agents a run has.
pub const DECODE_BATCH: usize = 128;

/// Interval blob keys of a run, grouped by interval index (sorted), optionally only the
/// intervals in `only`. Keys that are not interval keys are ignored.
pub fn group_keys(listed: &[String], only: Option<&Range<u32>>) -> BTreeMap<u32, Vec<String>> {
    let mut by_interval: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for key in listed {
        let Some(k) = keys::parse_interval_key(key) else {
            continue;
        };
        if only.is_some_and(|r| !r.contains(&k.interval)) {
            continue;
        }
        by_interval.entry(k.interval).or_default().push(key.clone());
    }
    by_interval
}

async fn list(blobs: &dyn Blobs, prefix: &str) -> Result<Vec<String>, ReportError> {
    blobs.list(prefix).await.map_err(|e| ReportError::Store {
        operation: "list",
        key: prefix.to_string(),
        message: e.to_string(),
    })
}

/// The interval keys of `range` of the agents `dirs`, sorted as one listing of the run would
/// give them: a few listings per agent ([`keys::interval_prefixes`]), however long the run.
async fn list_range(
    blobs: &dyn Blobs,
    load_test: &str,
    run_id: &str,
    dirs: &[(u32, u32)],
    range: &Range<u32>,
) -> Result<Vec<String>, ReportError> {
    let blocks = keys::interval_prefixes(range.clone());
    let prefixes: Vec<String> = dirs
        .iter()
        .flat_map(|&(slot, incarnation)| {
            let dir = keys::agent_prefix(load_test, run_id, slot, incarnation);
            blocks.iter().map(move |b| format!("{dir}{b}"))
        })
        .collect();
    let mut listings = futures::stream::iter(
        prefixes
            .into_iter()
            .map(|prefix| async move { list(blobs, &prefix).await }),
    )
    .buffered(READ_CONCURRENCY);
    let mut listed = Vec::new();
    while let Some(keys) = listings.try_next().await? {
        listed.extend(keys);
    }
    listed.sort();
    listed.dedup();
    Ok(listed)
}

/// Reads every interval blob of the run `ctx` names (only the intervals in `only`, if given)
/// and merges them, one interval at a time.
pub async fn merge_from_blobs(
    blobs: &dyn Blobs,
    load_test: &str,
    run_id: &str,
    ctx: &ReportContext,
    only: Option<Range<u32>>,
) -> Result<super::Merged, ReportError> {
    let listed = match (&only, &ctx.agent_dirs) {
        (Some(range), Some(dirs)) => list_range(blobs, load_test, run_id, dirs, range).await?,
        _ => list(blobs, &keys::agents_prefix(load_test, run_id)).await?,
    };
    let mut merger = Merger::new(ctx.merge_options());
    let limits = DecodeLimits::default();
    let threads = counts::decode_threads();
    let (mut decoders, mut decoded) = (Vec::new(), Vec::new());
    for (index, keys_of_interval) in group_keys(&listed, only.as_ref()) {
        let mut bodies =
            futures::stream::iter(keys_of_interval.into_iter().map(|key| async move {
                let body = blobs.get(&key).await.map_err(|e| ReportError::Store {
                    operation: "get",
                    key: key.clone(),
                    message: e.to_string(),
                })?;
                Ok::<_, ReportError>((key, body))
            }))
            .buffered(READ_CONCURRENCY);
        let mut texts = Vec::new();
        while let Some((key, body)) = bodies.try_next().await? {
            // Listed a moment ago: a blob that vanished since is a gap the merge reports.
            let Some(body) = body else { continue };
            let text = String::from_utf8(body.to_vec()).map_err(|e| ReportError::Blob {
                what: key.clone(),
                message: format!("not UTF-8 text: {e}"),
            })?;
            texts.push(text);
        }
        // Decode on a few threads, add in key order: the merge stays deterministic.
        for batch in texts.chunks(DECODE_BATCH) {
            counts::decode_parallel(batch, &limits, threads, &mut decoders, &mut decoded)?;
            for interval in &decoded[..batch.len()] {
                merger.add_counts(interval)?;
            }
        }
        merger.close_through(index)?;
    }
    merger.finish()
}

/// Merges the run's blobs, renders the report set and writes it under
/// `runs/{lt}/{run}/report/`. Returns the set (verdict and summary included).
pub async fn render_from_blobs(
    blobs: &dyn Blobs,
    ctx: &ReportContext,
) -> Result<ReportSet, ReportError> {
    let (lt, run) = names(ctx)?;
    let merged = merge_from_blobs(blobs, lt, run, ctx, None).await?;
    let set = build_report(&merged, ctx)?;
    put_set(blobs, &set, |file| keys::report_key(lt, run, file)).await?;
    Ok(set)
}

/// Where file `file` of soak window `w`'s report set is kept:
/// `runs/{lt}/{run}/windows/{w:05}/{file}` (beside the `report.json` of
/// [`keys::window_report_key`]).
pub fn window_file_key(load_test: &str, run_id: &str, w: u32, file: ReportFile) -> String {
    let json = keys::window_report_key(load_test, run_id, w);
    let dir = json
        .strip_suffix(ReportFile::Json.file_name())
        .unwrap_or(&json);
    format!("{dir}{}", file.file_name())
}

/// The report set of soak window `w` (its intervals only, as a complete report of its own:
/// every (agent, interval) of the window accounted for or listed as a gap, thresholds
/// evaluated over the window), written to `runs/{lt}/{run}/windows/{w:05}/` (`report.json`,
/// `report.html`, `merged.hlog`, `junit.xml`). Needs `ctx.window_intervals`. Memory holds one
/// interval's histograms and the window's totals, whatever the run's length.
pub async fn render_window_from_blobs(
    blobs: &dyn Blobs,
    ctx: &ReportContext,
    w: u32,
) -> Result<ReportSet, ReportError> {
    let (lt, run) = names(ctx)?;
    let k = ctx
        .window_intervals
        .ok_or_else(|| ReportError::Invalid("the run has no report window".into()))?;
    let range = window::window_range(w, k);
    let window_ctx = ReportContext {
        window_intervals: None,
        first_interval: Some(range.start),
        last_interval: Some(range.end.saturating_sub(1)),
        complete: true,
        target_records: None,
        ..ctx.clone()
    };
    let merged = merge_from_blobs(blobs, lt, run, &window_ctx, Some(range)).await?;
    let set = build_report(&merged, &window_ctx)?;
    put_set(blobs, &set, |file| window_file_key(lt, run, w, file)).await?;
    Ok(set)
}

/// Writes the report set of every soak window that `clock` says is due, from window `*next`
/// on and at most `max` of them, advancing `*next` past each one written. Returns the
/// windows written with their sets (verdict and summary included); stops at the first error,
/// which is returned with the windows already written before it.
///
/// The controller calls it on every reconcile of a running soak; `barrage run` can call it
/// the same way over its run folder (any [`Blobs`]) to write windows as the run goes.
pub async fn write_due_windows(
    blobs: &dyn Blobs,
    ctx: &ReportContext,
    clock: &window::WindowClock,
    next: &mut u32,
    max: usize,
) -> (Vec<(u32, ReportSet)>, Option<ReportError>) {
    let mut written = Vec::new();
    while written.len() < max && clock.is_due(*next) {
        match render_window_from_blobs(blobs, ctx, *next).await {
            Ok(set) => {
                written.push((*next, set));
                *next = next.saturating_add(1);
            }
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

fn names(ctx: &ReportContext) -> Result<(&str, &str), ReportError> {
    match (&ctx.load_test, &ctx.run_id) {
        (Some(lt), Some(run)) => Ok((lt, run)),
        _ => Err(ReportError::Invalid(
            "rendering from the blob store needs the LoadTest name and run id".into(),
        )),
    }
}

/// Writes the four files of `set`, each at `key_of(file)` with its content type.
async fn put_set(
    blobs: &dyn Blobs,
    set: &ReportSet,
    key_of: impl Fn(ReportFile) -> String,
) -> Result<(), ReportError> {
    for file in ReportFile::ALL {
        put(blobs, &key_of(file), set.body(file), file.content_type()).await?;
    }
    Ok(())
}

async fn put(
    blobs: &dyn Blobs,
    key: &str,
    body: &str,
    content_type: &str,
) -> Result<(), ReportError> {
    blobs
        .put(key, body.as_bytes().to_vec().into(), content_type)
        .await
        .map_err(|e| ReportError::Store {
            operation: "put",
            key: key.to_string(),
            message: e.to_string(),
        })
}
