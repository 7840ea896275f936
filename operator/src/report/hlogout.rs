//! `merged.hlog`: the run's merged interval histograms in the standard interval log format,
//! one line per interval and tag (tags kept), readable by HdrHistogram's own tools.

use barrage_crds::hlog::{LEGEND, LOG_FORMAT_VERSION, MAX_VALUE_UNIT_RATIO};

use super::ReportError;
use super::merge::Merged;

/// Writes the merged log: `StartTime` and `BaseTime` are the run's start, each line starts at
/// its interval's offset. Same layout as [`barrage_crds::hlog::write_log`].
pub fn merged_log(merged: &Merged) -> Result<String, ReportError> {
    let start_ms = i64::try_from(merged.run_start_ms)
        .map_err(|_| ReportError::Invalid("run start is out of range".into()))?;
    let when = chrono::DateTime::from_timestamp_millis(start_ms)
        .ok_or_else(|| ReportError::Invalid("run start is out of range".into()))?;
    let start = merged.run_start_ms as f64 / 1000.0;
    let length = merged.length_ms as f64 / 1000.0;
    let mut out = String::new();
    out.push_str(&format!(
        "#[Histogram log format version {LOG_FORMAT_VERSION}]\n"
    ));
    out.push_str(&format!(
        "#[StartTime: {start:.3} (seconds since epoch), {}]\n",
        when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ));
    out.push_str(&format!("#[BaseTime: {start:.3} (seconds since epoch)]\n"));
    out.push_str(&format!(
        "#[Barrage-Merged: {} agent interval blobs, {} intervals]\n",
        merged.blobs,
        merged.intervals.len()
    ));
    if merged.warmup_intervals > 0 {
        // Every interval's line is here; the warm-up's are not in the report's summary.
        out.push_str(&format!(
            "#[Barrage-Warmup: intervals 0-{} ({:.3} s) are the warm-up: not in the summary's latency]\n",
            merged.warmup_intervals - 1,
            f64::from(merged.warmup_intervals) * length
        ));
    }
    out.push_str(LEGEND);
    out.push('\n');
    for i in &merged.intervals {
        let offset = f64::from(i.index) * length;
        for (tag, b64) in &i.encoded {
            let max = i.stats.get(tag).map_or(0, |s| s.max) as f64 / MAX_VALUE_UNIT_RATIO;
            out.push_str(&format!(
                "Tag={tag},{offset:.3},{length:.3},{max:.3},{b64}\n"
            ));
        }
    }
    Ok(out)
}
