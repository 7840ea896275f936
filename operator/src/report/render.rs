//! `barrage report render DIR`: the full report set from a folder of interval logs.
//!
//! Every `*.hlog` file under the folder counts, whatever the folder structure:
//! - blobs written by Barrage agents (with `#[Barrage-Interval: …]`) are placed by their header;
//! - logs written by other HdrHistogram tools are one agent each (numbered after the Barrage
//!   slots, in path order); their lines are placed on a common interval grid (the most common
//!   line length, from the earliest line start) and untagged lines count as `produce`;
//! - a `merged.hlog` written by Barrage (`#[Barrage-Merged: …]`) is skipped, so rendering into
//!   the input folder twice does not count anything twice.

use barrage_crds::names::HistogramTag;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use barrage_crds::hlog::{self, DecodeLimits, HistogramLog};

use super::blob::{self, AgentInterval};
use super::{ReportContext, ReportError, ReportSet, build_report, merge};

/// Marker of a merged log written by this module's sibling [`super::hlogout`].
const MERGED_MARKER: &str = "#[Barrage-Merged:";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every `*.hlog` file under `dir`, sorted by path.
pub fn hlog_files(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let path = entry.map_err(io(&d))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "hlog") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A log written by another tool: its path and parsed lines.
struct Foreign {
    log: HistogramLog,
}

/// Reads `(name, text)` pairs into agent intervals (see the [module documentation](self)).
/// Names only order the foreign logs.
pub fn intervals_from_texts<'a>(
    texts: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<AgentInterval>, ReportError> {
    let limits = DecodeLimits::default();
    let mut ours = Vec::new();
    let mut foreign = Vec::new();
    for (name, text) in texts {
        if text
            .lines()
            .any(|l| l.trim_start().starts_with(MERGED_MARKER))
        {
            continue;
        }
        if blob::is_interval_blob(text) {
            ours.push(blob::decode_interval_blob_with(text, &limits)?);
        } else {
            let log = HistogramLog::parse(text, &limits).map_err(|source| ReportError::Hlog {
                what: name.to_string(),
                source,
            })?;
            if !log.entries.is_empty() {
                foreign.push(Foreign { log });
            }
        }
    }
    if foreign.is_empty() {
        return Ok(ours);
    }
    // The grid: the most common line length (ties: the shorter), from the earliest start.
    let mut lengths: BTreeMap<u64, usize> = BTreeMap::new();
    let mut origin = u64::MAX;
    let base_of = |log: &HistogramLog| log.base_time_secs.or(log.start_time_secs).unwrap_or(0.0);
    let abs_ms =
        |base: f64, start: f64| -> u64 { ((base + start) * 1000.0).round().max(0.0) as u64 };
    for f in &foreign {
        for e in &f.log.entries {
            *lengths
                .entry(((e.length_secs * 1000.0).round().max(1.0)) as u64)
                .or_default() += 1;
            origin = origin.min(abs_ms(base_of(&f.log), e.start_secs));
        }
    }
    let length_ms = ours.first().map(|b| b.length_ms).unwrap_or_else(|| {
        lengths
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or(1000, |(l, _)| *l)
    });
    if let Some(first) = ours
        .iter()
        .map(|b| b.start_ms.saturating_sub(u64::from(b.index) * b.length_ms))
        .min()
    {
        origin = origin.min(first);
    }
    let first_foreign_slot = ours.iter().map(|b| b.slot + 1).max().unwrap_or(0);
    for (slot, f) in (first_foreign_slot..).zip(foreign) {
        let mut by_index: BTreeMap<u32, AgentInterval> = BTreeMap::new();
        let base = base_of(&f.log);
        for e in f.log.entries {
            let offset = abs_ms(base, e.start_secs).saturating_sub(origin);
            let index = u32::try_from((offset + length_ms / 2) / length_ms).unwrap_or(u32::MAX);
            let interval = by_index.entry(index).or_insert_with(|| AgentInterval {
                slot,
                incarnation: 0,
                index,
                start_ms: origin + u64::from(index) * length_ms,
                length_ms,
                histograms: BTreeMap::new(),
                counters: None,
                consumer_lag: Default::default(),
                partitions: Default::default(),
            });
            let tag = e.tag.map_or(HistogramTag::Produce, HistogramTag::from);
            match interval.histograms.get_mut(&tag) {
                Some(h) => {
                    hlog::merge_into(h, &e.histogram).map_err(|source| ReportError::Hlog {
                        what: format!("foreign log {slot}, interval {index}, {tag}"),
                        source,
                    })?
                }
                None => {
                    interval.histograms.insert(tag, e.histogram);
                }
            }
        }
        ours.extend(by_index.into_values());
    }
    Ok(ours)
}

/// Renders the report set of the `.hlog` files under `input` into `out` (created if needed)
/// with nothing else known (no thresholds, no target).
pub fn render_dir(input: &Path, out: &Path) -> Result<ReportSet, ReportError> {
    render_dir_with(input, out, &ReportContext::offline())
}

/// [`render_dir`] with a context (thresholds, settings, target).
pub fn render_dir_with(
    input: &Path,
    out: &Path,
    ctx: &ReportContext,
) -> Result<ReportSet, ReportError> {
    let files = hlog_files(input)?;
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(io(f))?;
        texts.push((f.display().to_string(), text));
    }
    let intervals = intervals_from_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
    if intervals.is_empty() {
        return Err(ReportError::Empty(format!(
            "no interval logs (*.hlog) under {}",
            input.display()
        )));
    }
    let merged = merge::merge_all(&intervals, ctx.merge_options())?;
    let set = build_report(&merged, ctx)?;
    write_set(&set, out)?;
    Ok(set)
}

/// Writes the four files of `set` into `out` (created if needed).
pub fn write_set(set: &ReportSet, out: &Path) -> Result<(), ReportError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    for (name, _, body) in set.files() {
        let path = out.join(name);
        std::fs::write(&path, body).map_err(io(&path))?;
    }
    Ok(())
}
