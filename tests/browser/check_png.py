#!/usr/bin/env python3
"""Checks a PNG screenshot of report.html: it exists, is not blank, and shows the charts.

Pure standard library (zlib + struct): decodes the PNG, counts distinct colours, and looks for
the report's series colours (Okabe-Ito blue #0072b2 and orange #e69f00, drawn only by the SVG
charts' lines). Exits non-zero with a reason when a check fails.
"""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, width, height, ctype, depth = 8, b"", 0, 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if depth != 8 or ctype not in (2, 6):
        raise SystemExit(f"{path}: unsupported PNG (bit depth {depth}, colour type {ctype})")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xFF
            elif f == 2:
                line[x] = (line[x] + b) & 0xFF
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    path = sys.argv[1]
    # --consumer-lag: a Consume report, whose charts are the throughput (blue) and the consumer
    # lag (green, drawn by no other chart of it).
    consumer_lag = "--consumer-lag" in sys.argv[2:]
    width, height, bpp, rows = read_png(path)
    colours = {}
    for row in rows:
        for x in range(0, len(row), bpp):
            px = row[x:x + 3]
            colours[px] = colours.get(px, 0) + 1
    total = width * height
    background = max(colours.values())
    near = lambda rgb, tol=40: sum(
        n for px, n in colours.items() if all(abs(px[k] - rgb[k]) <= tol for k in range(3))
    )
    blue, orange = near((0x00, 0x72, 0xB2)), near((0xE6, 0x9F, 0x00))
    green = near((0x00, 0x9E, 0x73))
    print(
        f"{path}: {width}x{height}, {len(colours)} distinct colours, "
        f"{100 * (total - background) / total:.1f}% non-background, "
        f"chart blue pixels {blue}, chart orange pixels {orange}, chart green pixels {green}"
    )
    problems = []
    if len(colours) < 32:
        problems.append(f"only {len(colours)} distinct colours: the page looks blank")
    if total - background < total * 0.02:
        problems.append("less than 2% of the pixels differ from the background")
    if consumer_lag:
        if blue < 500 or green < 300:
            problems.append("the throughput (blue) or consumer lag (green) chart is (almost) absent")
    elif blue < 500 or orange < 200:
        problems.append("the chart series colours are (almost) absent: the SVG charts did not render")
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
