//! `report.html`: one self-contained page (no scripts, no fonts, no network) with inline SVG
//! charts drawn here: throughput over time, latency percentiles over time, the percentile
//! distribution on a `1/(1-q)` log axis as HdrHistogram's plotter draws it, and tables of
//! thresholds, windows, agents, gaps and settings.
//!
//! Every number is printed with a fixed number of decimals, so the same report renders to the
//! same bytes.

use barrage_crds::names::HistogramTag;
use std::fmt::Write as _;

use super::Settings;
use super::json::{Report, SummaryJson};
use super::junit::escape;
use super::merge::Stats;
use super::verdict::format_micros;

const WIDTH: f64 = 1120.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 48.0;

/// Series colours (Okabe–Ito, readable for colour-blind people).
const COLORS: [&str; 6] = [
    "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9",
];

const STYLE: &str = r#"
:root { --fg:#1d2430; --muted:#5b6677; --line:#e3e7ee; --bg:#f6f8fb; --card:#ffffff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 18px; margin: 0 0 12px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin: 18px 0; }
.badge { display:inline-block; padding: 3px 12px; border-radius: 999px; font-weight: 650; color: #fff; font-size: 14px; vertical-align: middle; }
.Passed { background: #1a7f37; } .Failed { background: #cf222e; } .Invalid { background: #bc4c00; } .Incomplete { background: #6e7781; }
.reasons { margin: 10px 0 0; padding-left: 20px; color: var(--fg); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.tile .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .v { font-size: 21px; font-weight: 650; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { text-align: right; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
tr:nth-child(even) td { background: #fafbfd; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
.scroll { max-height: 480px; overflow: auto; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Arial, sans-serif; fill: #5b6677; }
svg .grid { stroke: #e8ebf0; stroke-width: 1; }
svg .axis { stroke: #9aa4b2; stroke-width: 1; }
.legend { display:flex; flex-wrap: wrap; gap: 14px; margin: 6px 0 0 78px; font-size: 13px; color: var(--muted); }
.legend span::before { content: ""; display: inline-block; width: 18px; height: 3px; margin-right: 6px; vertical-align: middle; background: var(--c); }
.note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
"#;

/// An axis scale.
#[derive(Debug, Clone, Copy)]
enum Scale {
    Linear { min: f64, max: f64 },
    Log { min: f64, max: f64 },
}

impl Scale {
    fn unit(&self, v: f64) -> f64 {
        match *self {
            Scale::Linear { min, max } => {
                if max > min {
                    (v - min) / (max - min)
                } else {
                    0.0
                }
            }
            Scale::Log { min, max } => {
                let v = v.max(min);
                if max > min {
                    (v.log10() - min.log10()) / (max.log10() - min.log10())
                } else {
                    0.0
                }
            }
        }
    }
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Linear ticks from 0 up to at least `max`; returns (scale, ticks).
fn linear_axis(max: f64) -> (Scale, Vec<f64>) {
    let max = if max > 0.0 { max } else { 1.0 };
    let step = nice_step(max, 5.0);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as usize;
    let ticks = (0..=n).map(|i| i as f64 * step).collect();
    (Scale::Linear { min: 0.0, max: top }, ticks)
}

/// Decade ticks covering `[min, max]`, both > 0.
fn log_axis(min: f64, max: f64) -> (Scale, Vec<f64>) {
    let lo = 10f64.powf(min.max(1e-9).log10().floor());
    let mut hi = 10f64.powf(max.max(min * 10.0).log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    let mut ticks = Vec::new();
    let mut t = lo;
    while t <= hi * 1.000_001 {
        ticks.push(t);
        t *= 10.0;
    }
    (Scale::Log { min: lo, max: hi }, ticks)
}

/// A number with few digits: 12, 1.5, 0.25, 12k, 3.4M.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        trim(format!("{:.1}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Milliseconds from microseconds, for axis labels.
fn ms_label(v_ms: f64) -> String {
    if v_ms >= 1000.0 {
        trim(format!("{:.1}", v_ms / 1000.0)) + " s"
    } else {
        short(v_ms) + " ms"
    }
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

struct Chart<'a> {
    title: &'a str,
    x: Scale,
    x_ticks: Vec<(f64, String)>,
    x_label: &'a str,
    y: Scale,
    y_ticks: Vec<(f64, String)>,
    y_label: &'a str,
    series: Vec<Series>,
    /// The palette index of the first series (the consumer lag chart is green, so a
    /// screenshot tells it from the others).
    first_color: usize,
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

fn chart(c: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |v: f64| LEFT + c.x.unit(v).clamp(0.0, 1.0) * plot_w;
    let sy = |v: f64| TOP + plot_h - c.y.unit(v).clamp(0.0, 1.0) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg viewBox=\"0 0 {WIDTH:.0} {HEIGHT:.0}\" role=\"img\" aria-label=\"{}\">",
        escape(c.title)
    );
    for (v, label) in &c.y_ticks {
        let y = sy(*v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            px(LEFT),
            px(WIDTH - RIGHT),
            px(y),
            px(y),
            px(LEFT - 8.0),
            px(y + 4.0),
            escape(label)
        );
    }
    for (v, label) in &c.x_ticks {
        let x = sx(*v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(x),
            px(x),
            px(TOP),
            px(TOP + plot_h),
            px(x),
            px(TOP + plot_h + 18.0),
            escape(label)
        );
    }
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{l}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\"/><line class=\"axis\" x1=\"{l}\" x2=\"{l}\" y1=\"{t}\" y2=\"{b}\"/>",
        l = px(LEFT),
        r = px(WIDTH - RIGHT),
        t = px(TOP),
        b = px(TOP + plot_h)
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        px(LEFT + plot_w / 2.0),
        px(HEIGHT - 8.0),
        escape(c.x_label)
    );
    let _ = write!(
        s,
        "<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        px(TOP + plot_h / 2.0),
        escape(c.y_label)
    );
    for (i, series) in c.series.iter().enumerate() {
        let color = COLORS[(c.first_color + i) % COLORS.len()];
        let dash = if series.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        if series.points.len() == 1 {
            let (x, y) = series.points[0];
            let _ = write!(
                s,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{color}\"/>",
                px(sx(x)),
                px(sy(y))
            );
            continue;
        }
        let d: Vec<String> = series
            .points
            .iter()
            .map(|(x, y)| format!("{},{}", px(sx(*x)), px(sy(*y))))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-linejoin=\"round\"{dash} points=\"{}\"><title>{}</title></polyline>",
            d.join(" "),
            escape(&series.name)
        );
    }
    s.push_str("</svg>");
    s.push_str("<div class=\"legend\">");
    for (i, series) in c.series.iter().enumerate() {
        let _ = write!(
            s,
            "<span style=\"--c:{}\">{}</span>",
            COLORS[(c.first_color + i) % COLORS.len()],
            escape(&series.name)
        );
    }
    s.push_str("</div>");
    s
}

/// Time ticks (seconds from the start) with labels in s, min or h.
fn time_ticks(max_secs: f64) -> (Scale, Vec<(f64, String)>) {
    let max = if max_secs > 0.0 { max_secs } else { 1.0 };
    let (unit, div) = if max >= 7200.0 {
        ("h", 3600.0)
    } else if max >= 180.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    let step = nice_step(max / div, 8.0) * div;
    let n = (max / step).floor() as usize;
    let ticks = (0..=n)
        .map(|i| {
            let v = i as f64 * step;
            (v, format!("{}{unit}", short(v / div)))
        })
        .collect();
    (Scale::Linear { min: 0.0, max }, ticks)
}

fn throughput_chart(r: &Report) -> Option<String> {
    if r.intervals.is_empty() {
        return None;
    }
    let len = r.summary.interval_secs;
    let mid = |o: f64| o + len / 2.0;
    let acked: Vec<(f64, f64)> = r
        .intervals
        .iter()
        .map(|i| (mid(i.offset_secs), i.rate))
        .collect();
    let sent: Vec<(f64, f64)> = r
        .intervals
        .iter()
        .map(|i| (mid(i.offset_secs), i.sent_rate))
        .collect();
    let scheduled: Vec<(f64, f64)> = r
        .intervals
        .iter()
        .filter(|_| len > 0.0)
        .map(|i| (mid(i.offset_secs), i.records.scheduled as f64 / len))
        .collect();
    let mut series = vec![Series {
        name: "acked / s".into(),
        points: acked,
        dashed: false,
    }];
    if sent != series[0].points {
        series.push(Series {
            name: "sent / s".into(),
            points: sent,
            dashed: false,
        });
    }
    if scheduled.iter().any(|p| p.1 > 0.0) {
        series.push(Series {
            name: "scheduled / s".into(),
            points: scheduled,
            dashed: true,
        });
    }
    let consumed: Vec<(f64, f64)> = r
        .intervals
        .iter()
        .filter(|_| len > 0.0)
        .map(|i| (mid(i.offset_secs), i.records.consumed as f64 / len))
        .collect();
    if consumed.iter().any(|p| p.1 > 0.0) {
        series.push(Series {
            name: "consumed / s".into(),
            points: consumed,
            dashed: false,
        });
    }
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (y, ticks) = linear_axis(ymax * 1.05);
    let (x, x_ticks) = time_ticks(time_extent(r));
    Some(chart(&Chart {
        title: "Throughput over time",
        x,
        x_ticks,
        x_label: "time since start",
        y,
        y_ticks: ticks.into_iter().map(|t| (t, short(t))).collect(),
        y_label: "records per second",
        series,
        first_color: 0,
    }))
}

/// The consumer group's lag at each interval's end; `None` when none was sampled.
fn consumer_lag_chart(r: &Report) -> Option<String> {
    let len = r.summary.interval_secs;
    let points: Vec<(f64, f64)> = r
        .intervals
        .iter()
        .filter_map(|i| Some((i.offset_secs + len, i.consumer_lag? as f64)))
        .collect();
    if points.is_empty() {
        return None;
    }
    let ymax = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let (y, ticks) = linear_axis(ymax * 1.05);
    let (x, x_ticks) = time_ticks(time_extent(r));
    Some(chart(&Chart {
        title: "Consumer lag over time",
        x,
        x_ticks,
        x_label: "time since start",
        y,
        y_ticks: ticks.into_iter().map(|t| (t, short(t))).collect(),
        y_label: "records behind",
        series: vec![Series {
            name: "lag (all partitions)".into(),
            points,
            dashed: false,
        }],
        first_color: 2,
    }))
}

/// Records per partition, each with a bar of its share of the busiest partition's.
fn partitions(h: &mut String, r: &Report) {
    let Some(p) = &r.summary.partitions else {
        return;
    };
    let most = p
        .by_partition
        .iter()
        .map(|x| x.records)
        .max()
        .unwrap_or(1)
        .max(1);
    let _ = write!(
        h,
        "<div class=\"card\"><h2>Partitions</h2><p class=\"note\">Records acknowledged per partition, from the delivery reports. Skew (busiest ÷ mean): {}.</p><div class=\"scroll\"><table><thead><tr><th>partition</th><th>records</th><th>bytes</th><th>share</th><th></th></tr></thead><tbody>",
        short(p.skew)
    );
    for x in &p.by_partition {
        let width = (x.records as f64 / most as f64 * 100.0).round();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td style=\"width:40%\"><div style=\"background:{};height:10px;width:{width}%\"></div></td></tr>",
            x.partition,
            int(x.records),
            int(x.bytes),
            x.share * 100.0,
            COLORS[0]
        );
    }
    h.push_str("</tbody></table></div></div>");
}

/// The consumer lag section: the chart over time and where each partition stood at the end.
fn consumer_lag(h: &mut String, r: &Report) {
    let (Some(lag), Some(c)) = (&r.summary.consumer_lag, consumer_lag_chart(r)) else {
        return;
    };
    let _ = write!(
        h,
        "<div class=\"card\"><h2>Consumer lag</h2>{c}<p class=\"note\">Records the consumers were behind at each interval's end, summed over partitions (high watermark − position). Max {}, p99 {} over {} intervals.</p><div class=\"scroll\"><table><thead><tr><th>partition</th><th>lag at interval {}</th></tr></thead><tbody>",
        int(lag.max),
        int(lag.p99),
        lag.intervals,
        lag.last_interval
    );
    for (partition, records) in &lag.last_by_partition {
        let _ = write!(h, "<tr><td>{partition}</td><td>{}</td></tr>", int(*records));
    }
    h.push_str("</tbody></table></div></div>");
}

/// Seconds from the run's start to the end of the report's last interval: the x axis of the
/// charts over time (a window's report starts later than the run).
fn time_extent(r: &Report) -> f64 {
    let len = r.summary.interval_secs;
    r.intervals
        .iter()
        .map(|i| i.offset_secs + len)
        .fold(r.summary.span_secs, f64::max)
}

fn latency_over_time_chart(r: &Report, tag: &HistogramTag) -> Option<String> {
    let len = r.summary.interval_secs;
    type Pick = fn(&Stats) -> u64;
    let pick: [(&str, Pick); 5] = [
        ("p50", |s| s.p50),
        ("p90", |s| s.p90),
        ("p99", |s| s.p99),
        ("p99.9", |s| s.p999),
        ("max", |s| s.max),
    ];
    let mut series = Vec::new();
    for (name, f) in pick {
        let points: Vec<(f64, f64)> = r
            .intervals
            .iter()
            .filter_map(|i| {
                let s = i.latency.get(tag).filter(|s| s.count > 0)?;
                Some((i.offset_secs + len / 2.0, f(s) as f64 / 1000.0))
            })
            .collect();
        if !points.is_empty() {
            series.push(Series {
                name: format!("{tag} {name}"),
                points,
                dashed: name == "max",
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (y, ticks) = log_axis(lo.max(0.001), hi.max(0.001));
    let (x, x_ticks) = time_ticks(time_extent(r));
    Some(chart(&Chart {
        title: "Latency percentiles over time",
        x,
        x_ticks,
        x_label: "time since start",
        y,
        y_ticks: ticks.into_iter().map(|t| (t, ms_label(t))).collect(),
        y_label: "latency (log scale)",
        series,
        first_color: 0,
    }))
}

fn distribution_chart(r: &Report) -> Option<String> {
    let order = [
        HistogramTag::Produce,
        HistogramTag::Service,
        HistogramTag::E2e,
        HistogramTag::Lag,
    ];
    let mut series = Vec::new();
    let mut x_max: f64 = 100.0;
    let mut tags: Vec<&HistogramTag> = r.distribution.keys().collect();
    tags.sort_by_key(|t| order.iter().position(|o| o == *t).unwrap_or(order.len()));
    for tag in tags {
        let points: Vec<(f64, f64)> = r.distribution[tag]
            .iter()
            .map(|(p, v)| {
                let q = (p / 100.0).min(1.0);
                let x = if q >= 1.0 { f64::MAX } else { 1.0 / (1.0 - q) };
                (x, *v as f64 / 1000.0)
            })
            .collect();
        // The max sits just past the last quantile: draw it at twice the last x.
        let last_finite = points
            .iter()
            .map(|p| p.0)
            .filter(|x| *x < f64::MAX)
            .fold(1.0, f64::max);
        let points: Vec<(f64, f64)> = points
            .into_iter()
            .map(|(x, y)| (if x == f64::MAX { last_finite * 2.0 } else { x }, y))
            .collect();
        x_max = x_max.max(points.iter().map(|p| p.0).fold(1.0, f64::max));
        if !points.is_empty() {
            series.push(Series {
                name: tag.to_string(),
                points,
                dashed: *tag == HistogramTag::Lag,
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let decades = x_max.log10().ceil().clamp(2.0, 7.0) as i32;
    let x = Scale::Log {
        min: 1.0,
        max: 10f64.powi(decades),
    };
    let x_ticks = (0..=decades)
        .map(|d| {
            let label = match d {
                0 => "0%".to_string(),
                1 => "90%".to_string(),
                d => format!(
                    "{}%",
                    trim(format!(
                        "{:.*}",
                        (d - 2) as usize,
                        100.0 - 10f64.powi(2 - d)
                    ))
                ),
            };
            (10f64.powi(d), label)
        })
        .collect();
    let ymax = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (y, ticks) = linear_axis(ymax * 1.05);
    Some(chart(&Chart {
        title: "Latency by percentile",
        x,
        x_ticks,
        x_label: "percentile (log scale of 1/(1−q))",
        y,
        y_ticks: ticks.into_iter().map(|t| (t, ms_label(t))).collect(),
        y_label: "latency",
        series,
        first_color: 0,
    }))
}

fn tile(s: &mut String, k: &str, v: &str) {
    let _ = write!(
        s,
        "<div class=\"tile\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
        escape(k),
        escape(v)
    );
}

fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

fn us(v: u64) -> String {
    format_micros(v as f64)
}

/// A latency, or a dash where nothing was recorded.
fn us_or_dash(v: Option<u64>) -> String {
    v.map_or_else(|| "—".to_string(), us)
}

/// The rate tiles: each per second of load, with the load and the span beside them.
fn rate_tiles(h: &mut String, s: &SummaryJson) {
    let rate = |v: f64| format!("{}/s", short(v));
    if let Some(t) = s.target_rate {
        tile(h, "target rate (profile)", &rate(t));
    }
    if let Some(a) = s.achieved_rate {
        tile(h, "achieved rate (over load)", &rate(a));
    }
    if let Some(l) = s.load_secs {
        tile(h, "load", &format!("{} s", short(l)));
    }
    tile(h, "span (with flush)", &format!("{} s", short(s.span_secs)));
    if let Some(p) = s.paused_secs {
        let spans: Vec<String> = s
            .paused
            .iter()
            .map(|p| format!("{}–{} s", short(p.from_secs), short(p.until_secs)))
            .collect();
        tile(
            h,
            "paused (not in load)",
            &format!("{} s: {}", short(p), spans.join(", ")),
        );
    }
    if let Some(w) = &s.warmup {
        let p99 = w.latency.get(&HistogramTag::Produce).map(|p| p.p99);
        tile(
            h,
            "warm-up (latency apart)",
            &format!("{} s: produce p99 {}", short(w.secs), us_or_dash(p99)),
        );
    }
}

/// One row of the latency table.
fn latency_row(h: &mut String, name: &str, st: &Stats) {
    let _ = write!(
        h,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        escape(name),
        int(st.count),
        us(st.min),
        format_micros(st.mean),
        us(st.p50),
        us(st.p90),
        us(st.p99),
        us(st.p999),
        us(st.p9999),
        us(st.max)
    );
}

/// The latency table: the summary's histograms, then the warm-up's, marked.
fn latency_table(h: &mut String, s: &SummaryJson) {
    let warmup = s.warmup.iter().flat_map(|w| w.latency.iter());
    if s.latency.is_empty() && s.warmup.as_ref().is_none_or(|w| w.latency.is_empty()) {
        return;
    }
    h.push_str("<div class=\"card\"><h2>Latency</h2><table><thead><tr><th>histogram</th><th>count</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr></thead><tbody>");
    for (tag, st) in &s.latency {
        latency_row(h, tag.as_str(), st);
    }
    for (tag, st) in warmup {
        latency_row(h, &format!("{tag} (warm-up)"), st);
    }
    h.push_str("</tbody></table>");
    if let Some(w) = &s.warmup {
        let _ = write!(
            h,
            "<p class=\"note\">The warm-up (intervals {}–{}, {} s) is measured apart: its records are counted above, its latency is only in its own rows, not in the run's percentiles, the thresholds or the schedule-lag check.</p>",
            w.first_interval,
            w.last_interval,
            short(w.secs)
        );
    }
    h.push_str("</div>");
}

/// Renders `report.html`.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    header(&mut h, r);
    summary(&mut h, r);
    thresholds(&mut h, r);
    charts(&mut h, r);
    consumer_lag(&mut h, r);
    partitions(&mut h, r);
    latency_table(&mut h, &r.summary);
    windows(&mut h, r);
    agents(&mut h, r);
    gaps(&mut h, r);
    if let Some(st) = &r.settings {
        settings(&mut h, st);
    }
    let _ = write!(
        h,
        "<footer>{} · histograms {} · merged by HdrHistogram addition; percentiles are never averaged.</footer>",
        escape(&r.schema),
        escape(&r.coverage.histogram)
    );
    h.push_str("</main></body></html>\n");
    h
}

/// The page head, the title with the verdict badge, the run line and the verdict's reasons.
fn header(h: &mut String, r: &Report) {
    let title = match &r.load_test {
        Some(n) => format!("Barrage report — {n}"),
        None => "Barrage report".to_string(),
    };
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = write!(
        h,
        "<title>{}</title><style>{STYLE}</style></head><body><main>",
        escape(&title)
    );
    let _ = write!(
        h,
        "<h1>{} <span class=\"badge {}\">{}</span></h1>",
        escape(&title),
        escape(&r.verdict.result),
        escape(&r.verdict.result)
    );
    let _ = write!(
        h,
        "<p class=\"sub\">{}{} → {} · {}span {} s in {} intervals of {} s · {} agent interval blobs from {} agents</p>",
        r.run_id
            .as_ref()
            .map_or(String::new(), |id| format!("run {} · ", escape(id))),
        escape(&r.summary.start_time),
        escape(&r.summary.end_time),
        r.summary
            .load_secs
            .map_or(String::new(), |l| format!("load {} s · ", short(l))),
        short(r.summary.span_secs),
        r.coverage.intervals,
        short(r.summary.interval_secs),
        int(r.coverage.blobs),
        r.coverage.slots
    );
    if !r.verdict.reasons.is_empty() {
        h.push_str("<div class=\"card\"><h2>Verdict</h2><ul class=\"reasons\">");
        for reason in &r.verdict.reasons {
            let _ = write!(h, "<li>{}</li>", escape(reason));
        }
        h.push_str("</ul></div>");
    }
}

/// Summary tiles: records, rates, errors, the latency headline.
fn summary(h: &mut String, r: &Report) {
    let s = &r.summary;
    h.push_str("<div class=\"card\"><h2>Summary</h2><div class=\"tiles\">");
    tile(h, "records acked", &int(s.records.acked));
    tile(h, "records sent", &int(s.records.sent));
    rate_tiles(h, s);
    if let Some(ratio) = s.achieved_ratio {
        tile(h, "achieved / target", &format!("{:.2}%", ratio * 100.0));
    }
    tile(h, "errors", &int(s.records.errors));
    if let Some(p) = s.latency.get(&HistogramTag::Produce) {
        tile(h, "produce p50", &us(p.p50));
        tile(h, "produce p99", &us(p.p99));
        tile(h, "produce p99.9", &us(p.p999));
        tile(h, "produce max", &us(p.max));
    }
    if let Some(p) = s.latency.get(&HistogramTag::E2e) {
        tile(h, "end-to-end p99", &us(p.p99));
    }
    if s.records.lost > 0 || s.records.duplicated > 0 {
        tile(h, "lost", &int(s.records.lost));
        tile(h, "duplicated", &int(s.records.duplicated));
    }
    if s.records.consumed > 0 {
        tile(h, "records consumed", &int(s.records.consumed));
    }
    if let Some(lag) = &s.consumer_lag {
        tile(h, "consumer lag max", &int(lag.max));
    }
    if let Some(d) = &s.drain {
        let seconds = d
            .seconds
            .map_or("not drained".to_string(), |x| format!("{} s", short(x)));
        tile(h, "backlog drained in", &seconds);
        if let Some(rate) = d.rate {
            tile(h, "consumed / s (drain)", &int(rate.round() as u64));
        }
    }
    h.push_str("</div></div>");
}

/// Each threshold with its observed value and its result.
fn thresholds(h: &mut String, r: &Report) {
    if r.thresholds.is_empty() {
        return;
    }
    {
        h.push_str("<div class=\"card\"><h2>Thresholds</h2><table><thead><tr><th>threshold</th><th>scope</th><th>observed (run)</th><th>windows failed</th><th>result</th></tr></thead><tbody>");
        for t in &r.thresholds {
            let failed_windows = t.windows.iter().filter(|c| !c.passed).count();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&t.threshold),
                escape(&t.scope),
                escape(t.run.as_ref().map_or("—", |c| c.observed_display.as_str())),
                if t.windows.is_empty() {
                    "—".to_string()
                } else {
                    format!("{failed_windows} of {}", t.windows.len())
                },
                if t.passed { "ok" } else { "bad" },
                if t.passed { "passed" } else { "failed" }
            );
        }
        h.push_str("</tbody></table></div>");
    }
}

/// Throughput and latency over time, and latency by percentile.
fn charts(h: &mut String, r: &Report) {
    let s = &r.summary;
    if let Some(c) = throughput_chart(r) {
        let _ = write!(
            h,
            "<div class=\"card\"><h2>Throughput over time</h2>{c}</div>"
        );
    }
    for tag in [HistogramTag::Produce, HistogramTag::E2e] {
        if let Some(c) = latency_over_time_chart(r, &tag) {
            let what = if tag == HistogramTag::Produce {
                "Produce latency over time"
            } else {
                "End-to-end latency over time"
            };
            let warmup = s.warmup.as_ref().map_or(String::new(), |w| {
                format!(
                    " Intervals {}–{} are the warm-up: shown here, not in the run's percentiles.",
                    w.first_interval, w.last_interval
                )
            });
            let _ = write!(
                h,
                "<div class=\"card\"><h2>{what}</h2>{c}<p class=\"note\">Percentiles of each interval's merged histogram, measured from the intended send time (coordinated-omission free).{warmup}</p></div>"
            );
        }
    }
    if let Some(c) = distribution_chart(r) {
        let _ = write!(
            h,
            "<div class=\"card\"><h2>Latency by percentile</h2>{c}<p class=\"note\">The whole run's merged histograms (after the warm-up, when there is one); the x axis is 1/(1−q), so each step right is ten times rarer (the last point is the maximum).</p></div>"
        );
    }
}

/// One row per soak window.
fn windows(h: &mut String, r: &Report) {
    if !r.windows.is_empty() {
        h.push_str("<div class=\"card\"><h2>Windows</h2><div class=\"scroll\"><table><thead><tr><th>window</th><th>intervals</th><th>acked</th><th>errors</th><th>produce p99</th><th>produce max</th><th>result</th></tr></thead><tbody>");
        for w in &r.windows {
            let p = w.latency.get(&HistogramTag::Produce);
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}–{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                w.index,
                w.first_interval,
                w.last_interval,
                if w.warmup_intervals > 0 {
                    format!(" ({} warm-up)", w.warmup_intervals)
                } else {
                    String::new()
                },
                int(w.records.acked),
                int(w.records.errors),
                us_or_dash(p.map(|p| p.p99)),
                us_or_dash(p.map(|p| p.max)),
                if w.passed { "ok" } else { "bad" },
                if w.passed {
                    "passed".to_string()
                } else {
                    escape(&w.failures.join("; "))
                }
            );
        }
        h.push_str("</tbody></table></div></div>");
    }
}

/// One row per agent incarnation.
fn agents(h: &mut String, r: &Report) {
    h.push_str("<div class=\"card\"><h2>Agents</h2><div class=\"scroll\"><table><thead><tr><th>agent</th><th>intervals</th><th>sent</th><th>acked</th><th>errors</th><th>late</th><th>queue full</th><th>produce p50</th><th>produce p99</th><th>produce max</th><th>lag p99</th></tr></thead><tbody>");
    for a in &r.agents {
        let _ = write!(
            h,
            "<tr><td>{}-{:02}</td><td>{} ({}–{})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.slot,
            a.incarnation,
            a.intervals,
            a.first_interval,
            a.last_interval,
            int(a.records.sent),
            int(a.records.acked),
            int(a.records.errors),
            int(a.records.late),
            int(a.records.queue_full),
            us_or_dash(a.produce.map(|p| p.p50)),
            us_or_dash(a.produce.map(|p| p.p99)),
            us_or_dash(a.produce.map(|p| p.max)),
            us_or_dash(a.lag.map(|l| l.p99))
        );
    }
    h.push_str("</tbody></table></div></div>");
}

/// Intervals missing from the report, and why.
fn gaps(h: &mut String, r: &Report) {
    if !r.gaps.is_empty() {
        h.push_str("<div class=\"card\"><h2>Gaps</h2><div class=\"scroll\"><table><thead><tr><th>agent</th><th>intervals</th><th>cause</th></tr></thead><tbody>");
        for g in &r.gaps {
            let _ = write!(
                h,
                "<tr><td>{}{}</td><td>{}–{}</td><td>{}</td></tr>",
                g.slot,
                g.incarnation.map_or(String::new(), |i| format!("-{i:02}")),
                g.from_interval,
                g.to_interval,
                escape(&g.cause.describe())
            );
        }
        h.push_str("</tbody></table></div></div>");
    }
}

/// The settings that decide what the run measured.
fn settings(h: &mut String, st: &Settings) {
    h.push_str("<div class=\"card\"><h2>Settings</h2><table><tbody>");
    let mut row = |k: &str, v: String| {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(&v));
    };
    row("workload", st.workload.clone());
    row("topic", st.topic.clone());
    if let Some(p) = st.partitions {
        row("partitions", p.to_string());
    }
    row("acks", st.acks.clone());
    row("linger", st.linger.clone());
    row("batch size", format!("{} B", st.batch_size));
    row("compression", st.compression.clone());
    row("idempotence", st.idempotence.to_string());
    row("partitioner", st.partitioner.clone());
    row("max in flight", st.max_in_flight.to_string());
    row("record size", st.record_size.clone());
    row("keys", st.keys.clone());
    row(
        "records per transaction",
        st.records_per_transaction.to_string(),
    );
    row("transactional", st.transactional.to_string());
    row("agents", st.agents.to_string());
    row("peak rate", format!("{}/s", short(st.peak_rate)));
    row("duration", st.duration.clone());
    row("interval", st.interval.clone());
    if let Some(w) = &st.window {
        row("window", w.clone());
    }
    if let Some(w) = &st.warmup {
        row("warm-up", w.clone());
    }
    for (k, v) in &st.producer_properties {
        row(k, v.clone());
    }
    h.push_str("</tbody></table></div>");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.3, 5.0), 0.1);
    }

    #[test]
    fn percentile_axis_labels_follow_hdrhistogram_plotter() {
        let labels: Vec<String> = (0..=5)
            .map(|d| match d {
                0 => "0%".to_string(),
                1 => "90%".to_string(),
                d => format!(
                    "{}%",
                    trim(format!(
                        "{:.*}",
                        (d - 2) as usize,
                        100.0 - 10f64.powi(2 - d)
                    ))
                ),
            })
            .collect();
        assert_eq!(
            labels,
            vec!["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        );
    }

    #[test]
    fn short_numbers_are_compact() {
        assert_eq!(short(12_500.0), "12.5k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(1.5), "1.5");
        assert_eq!(short(0.0), "0");
    }
}
