#!/usr/bin/env python3
"""Chart and check the samples of scripts/soak-long.sh (standard library only).

    soak-chart.py SAMPLES.csv OUT.svg TITLE   # two panels: RSS and database size over time
    soak-chart.py --check SAMPLES.csv         # exit 1 when either still grows at the end

"Levels off": the mean of the run's last quarter is at most 10 % (and 8 MiB) above the mean
of the quarter before it.
"""
import csv
import sys

MIB = 1024 * 1024


def load(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["rss_kib"] and r["db_bytes"]]
    t = [int(r["elapsed_s"]) / 60 for r in rows]
    rss = [int(r["rss_kib"]) * 1024 / MIB for r in rows]
    db = [int(r["db_bytes"]) / MIB for r in rows]
    return t, rss, db


def quarters(values):
    n = len(values)
    third = values[n // 2 : 3 * n // 4]
    last = values[3 * n // 4 :]
    return sum(third) / max(len(third), 1), sum(last) / max(len(last), 1)


def check(path):
    t, rss, db = load(path)
    if len(t) < 8:
        print(f"soak-chart: only {len(t)} samples; too few to judge", file=sys.stderr)
        return 1
    failed = 0
    for name, values in (("RSS", rss), ("database size", db)):
        before, last = quarters(values)
        grew = last - before
        verdict = "levels off" if grew <= max(before * 0.10, 8) else "STILL GROWING"
        print(f"soak-chart: {name}: third quarter {before:.1f} MiB, last quarter {last:.1f} MiB, "
              f"max {max(values):.1f} MiB: {verdict}")
        failed |= verdict != "levels off"
    return failed


def panel(x0, y0, w, h, t, values, label, colour):
    top = max(values) * 1.15 or 1
    right = max(t) or 1
    pts = " ".join(f"{x0 + w * x / right:.1f},{y0 + h - h * v / top:.1f}" for x, v in zip(t, values))
    out = [
        f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
        f'<text x="{x0}" y="{y0 - 6}" font-size="12">{label}</text>',
        f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>',
    ]
    for i in range(5):
        v = top * i / 4
        y = y0 + h - h * i / 4
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:.0f}</text>')
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#eee"/>')
    for i in range(7):
        m = right * i / 6
        x = x0 + w * i / 6
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" font-size="10" text-anchor="middle">{m:.0f}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 28}" font-size="10" text-anchor="middle">minutes</text>')
    return out


def chart(path, out, title):
    t, rss, db = load(path)
    w, h = 320, 160
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="760" height="250" font-family="sans-serif">',
        '<rect width="760" height="250" fill="white"/>',
        f'<text x="380" y="18" font-size="13" text-anchor="middle">{title}</text>',
    ]
    parts += panel(50, 45, w, h, t, rss, "serve RSS (MiB)", "#1f77b4")
    parts += panel(430, 45, w, h, t, db, "database size, streamboard.db + WAL (MiB)", "#d62728")
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    chart(sys.argv[1], sys.argv[2], sys.argv[3])
