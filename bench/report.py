#!/usr/bin/env python3
"""Parses the case folders written by bench/producer-vs-java.sh and prints the figures.

Usage:
  report.py rate CASE_DIR     print the case's achieved records/s (for sizing the next cases)
  report.py table WORK_DIR    print the markdown tables for every case under WORK_DIR

The tools are Barrage (`barrage run`), Kafka's ProducerPerformance ("java") and librdkafka's
rdkafka_performance ("rdkafka"). A case folder holds `meta` (key=value lines written by the script), `stdout` and `stderr` of the
tool, `time` (GNU time: "%U %S %M %e"), `broker` (broker utime+stime clock ticks before and after),
`batches` ("batches records bytes" of the topic's log segments, from DumpLogSegments), `headers`
("records-sampled records-with-headers" from the first 64 KiB of partition 0) and `rc` (the tool's
exit code). Python 3 standard library only.
"""

import os
import re
import statistics
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

JAVA_FINAL = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th"
)


def read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def meta(case):
    m = {}
    for line in read(os.path.join(case, "meta")).splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            m[k.strip()] = v.strip()
    return m


def num(text):
    return float(text.replace(",", ""))


def latency_ms(text):
    """Barrage's human latency (`850µs`, `12.35ms`, `1.40s`) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(µs|ms|s)", text.strip())
    if not m:
        return None
    v = float(m.group(1))
    return {"µs": v / 1000.0, "ms": v, "s": v * 1000.0}[m.group(2)]


def parse_barrage(out):
    r = {}
    for key, label in [
        ("acked", "records acked"),
        ("sent", "records sent"),
        ("failed", "records failed"),
        ("dropped", "records dropped"),
        ("late", r"sent late \(>1ms\)"),
    ]:
        m = re.search(r"^\s*" + label + r"\s+([\d,]+)\s*$", out, re.M)
        if m:
            r[key] = num(m.group(1))
    # `achieved rate 352233.0 records/s (acked over the load, 100.00% of target)`; before 2026-12,
    # `(target 239412/s, 100.00%)`.
    m = re.search(r"achieved rate\s+([\d.]+) records/s \((?:target [\d.]+/s, |acked over the load, )([\d.]+)%", out)
    if m:
        r["summary_rate"] = float(m.group(1))
        r["accuracy"] = float(m.group(2)) / 100.0
    m = re.search(r"elapsed\s+([\d.]+)s \(including flush\)", out)
    if m:
        r["elapsed"] = float(m.group(1))
    for key, label in [("p", r"produce latency \(from intended send\)"), ("s", r"service time \(from actual send\)")]:
        m = re.search(label + r": p50 (\S+)\s+p99 (\S+)\s+p99\.9 (\S+)\s+max (\S+)", out)
        if m:
            r[key + "50"] = latency_ms(m.group(1))
            r[key + "99"] = latency_ms(m.group(2))
            r[key + "999"] = latency_ms(m.group(3))
    if "acked" in r and r.get("elapsed"):
        # Records acknowledged over the whole elapsed time including the final flush
        # (the summary's own "achieved rate" divides by the load duration instead).
        r["rate"] = r["acked"] / r["elapsed"]
        r["records"] = r["acked"]
    return r


# `% 500000 messages produced (50000000 bytes), 500000 delivered (offset 108014, 0 failed) in 1914ms:
# 261229 msgs/s and 26.12 MB/s, 0 produce failures, 0 in queue, no compression` (rdkafka_performance's summary;
# printed every second and once more at the end, which is the result).
RDKAFKA_SUMMARY = re.compile(
    r"^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, (\d+) failed\) "
    r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s, (\d+) produce failures",
    re.M,
)


def parse_rdkafka(out):
    r = {}
    finals = RDKAFKA_SUMMARY.findall(out)
    if not finals:
        return r
    produced, _bytes, delivered, failed, ms, rate, _mb, backpressure = finals[-1]
    r["produced"] = float(produced)
    r["records"] = float(delivered)
    r["failed"] = float(failed)
    # Produce calls refused with QUEUE_FULL (queue.buffering.max.messages reached); it polls 10 ms and retries.
    r["backpressure"] = int(backpressure)
    if int(ms) > 0:
        # msgs/s is delivered over its first produce call to its last delivery report (t_end - t_start, in µs).
        r["elapsed"] = int(ms) / 1000.0
        r["rate"] = float(rate)
    return r


JAVA_PER_REQUEST = re.compile(r"^producer-metrics:records-per-request-avg:\{[^}]*\}\s*:\s*([\d.]+)", re.M)


def parse_java(out):
    r = {}
    m = JAVA_PER_REQUEST.search(out)  # from --print-metrics
    if m:
        r["per_request"] = float(m.group(1))
    finals = JAVA_FINAL.findall(out)
    if not finals:
        return r
    f = finals[-1]
    r["records"] = float(f[0])
    r["rate"] = float(f[1])
    r["java_mib_s"] = float(f[2])
    r["avg"] = float(f[3])
    r["p50"] = float(f[5])
    r["p95"] = float(f[6])
    r["p99"] = float(f[7])
    r["p999"] = float(f[8])
    return r


def parse_time(case):
    text = read(os.path.join(case, "time"))
    for line in reversed(text.splitlines()):
        parts = line.split()
        if len(parts) == 4:
            try:
                user, sys_, rss_kib, wall = (float(p) for p in parts)
            except ValueError:
                continue
            return {"cpu": user + sys_, "user": user, "sys": sys_, "rss_mib": rss_kib / 1024.0, "wall": wall}
    return {}


def parse_broker(case):
    parts = read(os.path.join(case, "broker")).split()
    if len(parts) == 2:
        try:
            return {"broker_cpu": (int(parts[1]) - int(parts[0])) / CLK_TCK}
        except ValueError:
            pass
    return {}


def parse_batches(case):
    """What the broker stored: record batches, records and bytes in the topic's log segments."""
    r = {}
    parts = read(os.path.join(case, "batches")).split()
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        batches, records, size = (int(p) for p in parts)
        if batches > 0:
            r["batches"] = batches
            r["stored"] = records
            r["per_batch"] = records / batches
            r["batch_kib"] = size / batches / 1024.0
            r["bytes_per_record"] = size / records if records else None
    parts = read(os.path.join(case, "headers")).split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        r["sampled"], r["with_headers"] = int(parts[0]), int(parts[1])
    return r


def broker_per_m(r):
    """Broker CPU seconds per million records it stored (the tool's own count if the segments were not read)."""
    records = r.get("stored") or r.get("records")
    if r.get("broker_cpu") is None or not records:
        return None
    return r["broker_cpu"] / (records / 1e6)


def load_case(case):
    m = meta(case)
    out = read(os.path.join(case, "stdout"))
    parse = {"barrage": parse_barrage, "rdkafka": parse_rdkafka}.get(m.get("tool"), parse_java)
    r = parse(out)
    r.update(parse_time(case))
    r.update(parse_broker(case))
    r.update(parse_batches(case))
    if m.get("tool") in ("barrage", "rdkafka") and "per_batch" in r:
        # librdkafka (2.12) writes one partition's batch per ProduceRequest (rdkafka_msgset_writer.c).
        r["per_request"] = r["per_batch"]
    r["broker_per_m"] = broker_per_m(r)
    r["meta"] = m
    r["rc"] = read(os.path.join(case, "rc"), "?").strip()
    errors = [l for l in read(os.path.join(case, "stderr")).splitlines() if l.startswith("error:")]
    r["error"] = errors[0][len("error:"):].strip() if errors else ""
    size = int(m.get("size", "0"))
    if "rate" in r:
        r["mb_s"] = r["rate"] * size / 1e6
    if r.get("records") and "cpu" in r:
        r["cpu_per_m"] = r["cpu"] / (r["records"] / 1e6)
    r["ok"] = "rate" in r and "cpu" in r and r.get("failed", 0) == 0
    return r


def cases(work):
    out = []
    for name in sorted(os.listdir(work)):
        path = os.path.join(work, name)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "meta")):
            out.append(load_case(path))
    return out


def size_label(size):
    size = int(size)
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def fmt(v, digits=0, thousands=True):
    if v is None:
        return "n/a"
    if thousands:
        return f"{v:,.{digits}f}"
    return f"{v:.{digits}f}"


def fx(v):
    """A ratio as `1.42×`, or n/a."""
    return "n/a" if v is None else f"{v:.2f}×"


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


MEAN_KEYS = (
    "rate", "mb_s", "cpu", "cpu_per_m", "cpu_per_m_net", "rss_mib", "broker_cpu", "broker_per_m", "per_batch",
    "batch_kib", "per_request",
)


TOOLS = ("barrage", "java", "rdkafka")
# The ratios the table gives: Barrage over each of the two reference producers.
VERSUS = (("java", "Java"), ("rdkafka", "rdkafka_performance"))


def table(work):
    all_cases = cases(work)
    maxr = [c for c in all_cases if c["meta"].get("phase") == "max"]
    fixed = [c for c in all_cases if c["meta"].get("phase") == "fixed"]
    sizes = sorted({int(c["meta"]["size"]) for c in maxr + fixed})
    # Each tool's fixed start-up CPU (a 1,000-record run), subtracted for the "without start-up" column.
    startup = {}
    for c in all_cases:
        if c["meta"].get("phase") == "startup" and "cpu" in c:
            startup[c["meta"]["tool"]] = c["cpu"]
    for c in maxr:
        base = startup.get(c["meta"]["tool"])
        if base is not None and c.get("records") and "cpu" in c:
            c["cpu_per_m_net"] = max(c["cpu"] - base, 0.0) / (c["records"] / 1e6)

    lines = max_runs_table(maxr)
    means, summary = max_means_table(maxr, sizes)
    lines.extend(means)
    lines.extend(ratio_table(summary))
    lines.extend(goal_lines(summary))
    if startup:
        lines.append("")
        lines.append(
            "Start-up CPU (a 1,000-record run, subtracted in the \"without start-up\" columns): "
            + ", ".join(f"{tool_name(t)} {startup[t]:.2f} s" for t in TOOLS if t in startup)
            + "."
        )
    lines.append("")
    if fixed:
        lines.extend(fixed_table(fixed))
    return "\n".join(lines)


def max_runs_table(maxr):
    """Every maximum-rate case, in the order run."""
    lines = ["### Maximum rate (every run, in the order run)", ""]
    lines.append(
        "| # | value | tool | round | records | elapsed s | records/s | MB/s | CPU s (user+sys) | "
        "CPU s / M records | same without start-up | peak RSS MiB | broker CPU s | broker CPU s / M records | "
        "records / batch | batch KiB | records / request | note |"
    )
    lines.append("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for c in sorted(maxr, key=lambda c: int(c["meta"].get("seq", "0"))):
        m = c["meta"]
        note = []
        if not c["ok"]:
            note.append(f"no result (exit {c['rc']})")
        if c.get("failed"):
            note.append(f"{int(c['failed'])} failed")
        if c["ok"] and exit_note(c):
            note.append(exit_note(c))
        if c.get("with_headers"):
            note.append(f"headers on {c['with_headers']} of {c['sampled']} records read")
        if c.get("backpressure"):
            note.append(f"{c['backpressure']:,} produce calls refused (queue full)")
        elapsed = c.get("elapsed")
        if m["tool"] == "java" and c.get("rate"):
            elapsed = c["records"] / c["rate"]
        lines.append(
            f"| {m.get('seq')} | {size_label(m['size'])} | {tool_name(m['tool'])} | {m.get('round')} | "
            f"{fmt(c.get('records'))} | {fmt(elapsed, 1)} | {fmt(c.get('rate'))} | {fmt(c.get('mb_s'), 1)} | "
            f"{fmt(c.get('cpu'), 1)} | {fmt(c.get('cpu_per_m'), 2)} | {fmt(c.get('cpu_per_m_net'), 2)} | "
            f"{fmt(c.get('rss_mib'), 0)} | {fmt(c.get('broker_cpu'), 1)} | {broker_cells(c)} | {'; '.join(note)} |"
        )
    lines.append("")
    return lines


def max_means_table(maxr, sizes):
    """Per size, each tool's mean over the rounds, then the rows Barrage / Java and Barrage / rdkafka_performance.

    Returns the lines and, per size, {other tool: {key: ratio Barrage / other}}."""
    lines = ["### Maximum rate, mean of the rounds, and the ratios Barrage / Java and Barrage / rdkafka_performance", ""]
    lines.append(
        "| value | tool | runs | records/s | MB/s | CPU s | CPU s / M records | same without start-up | "
        "peak RSS MiB | broker CPU s | broker CPU s / M records | records / batch | batch KiB | records / request |"
    )
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    summary = {}
    for size in sizes:
        per_tool = {}
        for tool in TOOLS:
            runs = [c for c in maxr if c["ok"] and c["meta"]["tool"] == tool and int(c["meta"]["size"]) == size]
            agg = {k: mean([c.get(k) for c in runs]) for k in MEAN_KEYS}
            agg["runs"] = len(runs)
            per_tool[tool] = agg
            lines.append(
                f"| {size_label(size)} | {tool_name(tool)} | {len(runs)} | {fmt(agg['rate'])} | {fmt(agg['mb_s'], 1)} | "
                f"{fmt(agg['cpu'], 1)} | {fmt(agg['cpu_per_m'], 2)} | {fmt(agg['cpu_per_m_net'], 2)} | "
                f"{fmt(agg['rss_mib'], 0)} | {fmt(agg['broker_cpu'], 1)} | {broker_cells(agg)} |"
            )
        summary[size] = {}
        for other, label in VERSUS:
            r = {k: ratio(per_tool["barrage"][k], per_tool[other][k]) for k in MEAN_KEYS}
            summary[size][other] = r
            lines.append(
                f"| {size_label(size)} | **ratio Barrage/{label}** | | **{fx(r['rate'])}** | {fx(r['mb_s'])} | "
                f"{fx(r['cpu'])} | **{fx(r['cpu_per_m'])}** | {fx(r['cpu_per_m_net'])} | "
                f"{fx(r['rss_mib'])} | {fx(r['broker_cpu'])} | **{fx(r['broker_per_m'])}** | {fx(r['per_batch'])} | "
                f"{fx(r['batch_kib'])} | {fx(r['per_request'])} |"
            )
    lines.append("")
    return lines, summary


def ratio_table(summary):
    """The ratios side by side: Barrage ÷ rdkafka_performance (the library it drives) and ÷ Java."""
    lines = ["### Maximum rate: Barrage ÷ rdkafka_performance and Barrage ÷ Java (means of the rounds)", ""]
    lines.append(
        "| value | records/s ÷ rdkafka_performance | records/s ÷ Java | CPU s / M records ÷ rdkafka_performance | "
        "CPU s / M records ÷ Java | same without start-up ÷ rdkafka_performance | same without start-up ÷ Java | "
        "peak RSS ÷ rdkafka_performance | peak RSS ÷ Java | broker CPU s / M records ÷ rdkafka_performance | "
        "broker CPU s / M records ÷ Java |"
    )
    lines.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for size, vs in summary.items():
        r, j = vs["rdkafka"], vs["java"]
        lines.append(
            f"| {size_label(size)} | **{fx(r['rate'])}** | **{fx(j['rate'])}** | {fx(r['cpu_per_m'])} | "
            f"**{fx(j['cpu_per_m'])}** | {fx(r['cpu_per_m_net'])} | {fx(j['cpu_per_m_net'])} | "
            f"{fx(r['rss_mib'])} | {fx(j['rss_mib'])} | {fx(r['broker_per_m'])} | {fx(j['broker_per_m'])} |"
        )
    lines.append("")
    return lines


def goal_lines(summary):
    """Issue 17's goals: records/s ≥ 0.95× rdkafka_performance and ≥ 1.3× Java, CPU per record ≤ 0.5× Java."""
    def verdict(v, ok):
        return f"{fx(v)} {'met' if v is not None and ok(v) else 'NOT met'}"

    lines = []
    for size, vs in summary.items():
        r, j = vs["rdkafka"], vs["java"]
        lines.append(
            f"Goal at {size_label(size)} (records/s ≥ 0.95× rdkafka_performance and ≥ 1.3× Java, CPU per record "
            f"≤ 0.5× Java): records/s {verdict(r['rate'], lambda v: v >= 0.95)} against rdkafka_performance, "
            f"{verdict(j['rate'], lambda v: v >= 1.3)} against Java; "
            f"CPU per record {verdict(j['cpu_per_m'], lambda v: v <= 0.5)} "
            f"({fx(j['cpu_per_m_net'])} without either tool's start-up; {fx(r['cpu_per_m'])} of rdkafka_performance's)."
        )
    return lines


def fixed_table(fixed):
    """The fixed-rate cases, then broker CPU per record and records per batch, Barrage / each other tool, per size."""
    lines = ["### Fixed rate: 50 % of Java's measured maximum", ""]
    lines.append(
        "| value | tool | target/s | achieved/s | achieved / target | p50 ms | p99 ms | p99.9 ms | "
        "latency measured from | CPU s / M records | broker CPU s / M records | records / batch | batch KiB | "
        "records / request | note |"
    )
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|---|")
    for c in sorted(fixed, key=lambda c: int(c["meta"].get("seq", "0"))):
        m = c["meta"]
        target = float(m.get("target", "0"))
        note = "" if c["ok"] else f"no result (exit {c['rc']}); "
        if c["ok"] and exit_note(c):
            note += exit_note(c) + "; "
        if m["tool"] == "barrage":
            achieved = c.get("summary_rate")  # acked / load duration
            if c.get("dropped"):
                note += f"{int(c['dropped'])} dropped; "
            if c.get("late") is not None:
                note += f"{int(c['late']):,} sent >1 ms late"
            lines.append(
                f"| {size_label(m['size'])} | Barrage | {fmt(target)} | {fmt(achieved)} | "
                f"{fmt(ratio(achieved, target), 4, False)} | {fmt(c.get('p50'), 2)} | {fmt(c.get('p99'), 2)} | "
                f"{fmt(c.get('p999'), 2)} | intended send time (coordinated-omission free) | "
                f"{fmt(c.get('cpu_per_m'), 2)} | {broker_cells(c)} | {note} |"
            )
            lines.append(
                f"| {size_label(m['size'])} | Barrage | | | | {fmt(c.get('s50'), 2)} | {fmt(c.get('s99'), 2)} | "
                f"{fmt(c.get('s999'), 2)} | actual send (service time; comparable to Java's) | | | | | | same run |"
            )
        elif m["tool"] == "rdkafka":
            achieved = c.get("rate")  # delivered / first produce to last delivery report
            lines.append(
                f"| {size_label(m['size'])} | rdkafka_performance | {fmt(target)} | {fmt(achieved)} | "
                f"{fmt(ratio(achieved, target), 4, False)} | n/a | n/a | n/a | not measured (no -l) | "
                f"{fmt(c.get('cpu_per_m'), 2)} | {broker_cells(c)} | {note}-r polls in a loop between messages |"
            )
        else:
            achieved = c.get("rate")
            lines.append(
                f"| {size_label(m['size'])} | Java | {fmt(target)} | {fmt(achieved)} | "
                f"{fmt(ratio(achieved, target), 4, False)} | {fmt(c.get('p50'), 0)} | {fmt(c.get('p99'), 0)} | "
                f"{fmt(c.get('p999'), 0)} | send() call (whole ms) | {fmt(c.get('cpu_per_m'), 2)} | "
                f"{broker_cells(c)} | {note} |"
            )
    lines.append("")
    for size in sorted({int(c["meta"]["size"]) for c in fixed}):
        per_tool = {c["meta"]["tool"]: c for c in fixed if c["ok"] and int(c["meta"]["size"]) == size}
        b = per_tool.get("barrage", {})
        for other, label in VERSUS:
            o = per_tool.get(other, {})
            lines.append(
                f"Broker at {size_label(size)}, Barrage / {label} at the same rate: CPU per record "
                f"{fx(ratio(b.get('broker_per_m'), o.get('broker_per_m')))}, records per batch "
                f"{fx(ratio(b.get('per_batch'), o.get('per_batch')))}, records per request "
                f"{fx(ratio(b.get('per_request'), o.get('per_request')))}."
            )
    lines.append("")
    return lines


def broker_cells(c):
    """Broker CPU per million records, records per batch, batch KiB and records per request, as table cells."""
    return (
        f"{fmt(c.get('broker_per_m'), 2)} | {fmt(c.get('per_batch'))} | {fmt(c.get('batch_kib'), 1)} | "
        f"{fmt(c.get('per_request'))}"
    )


def exit_note(c):
    """The tool's non-zero exit code and first error line, shortened, for the note column."""
    if c["rc"] in ("0", ""):
        return ""
    text = f"exit {c['rc']}"
    if c.get("error"):
        e = c["error"]
        text += ": " + (e if len(e) <= 70 else e[:67] + "...")
    return text


def tool_name(tool):
    return {"barrage": "Barrage", "java": "Java ProducerPerformance", "rdkafka": "rdkafka_performance"}.get(tool, tool)


def main(argv):
    if len(argv) == 3 and argv[1] == "rate":
        c = load_case(argv[2])
        if "rate" not in c:
            print("0")
            return 1
        print(f"{c['rate']:.0f}")
        return 0
    if len(argv) == 3 and argv[1] == "table":
        print(table(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
