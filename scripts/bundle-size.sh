#!/usr/bin/env bash
# Sizes of the site's pkg after `cargo leptos build --release --frontend-only --split` (as
# `make release` builds it): each file raw and gzipped (-9, as served compressed), the first
# load (the main wasm, JS and CSS), and what opening each lazy route directly adds (its split
# file and every chunk the split manifest lists for it).
#   scripts/bundle-size.sh [PKG_DIR]     (default target/site/pkg)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "${1:-target/site/pkg}" <<'PY'
import gzip, json, pathlib, re, sys

pkg = pathlib.Path(sys.argv[1])
def sizes(path):
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, 9))
def kb(n):
    return f"{n / 1000:,.0f} KB" if n >= 10_000 else f"{n / 1000:,.1f} KB"

main = sizes(pkg / "streamboard.wasm")
js = sizes(pkg / "streamboard.js")
css = sizes(pkg / "streamboard.css")
loader = [sizes(p) for p in pkg.glob("__wasm_split*.js")]
first = tuple(a + b + c + sum(l[i] for l in loader) for i, (a, b, c) in enumerate(zip(main, js, css)))
print(f"| `streamboard.wasm` (first load's wasm) | {kb(main[0])} | **{kb(main[1])}** |")
print(f"| first load: wasm + JS + split loader + CSS | {kb(first[0])} | **{kb(first[1])}** |")
manifest = json.loads((pkg / "__wasm_split_manifest.json").read_text())
rows = []
for key, files in manifest.items():
    route = re.sub(r"^__(.*)_route_view_\d+$", r"\1", key)
    raw = gz = 0
    for name in files:
        r, g = sizes(pkg / f"{name}.wasm")
        raw += r; gz += g
    rows.append((gz, route, raw))
for gz, route, raw in sorted(rows, reverse=True):
    print(f"| `{route}` route (its split file and chunks) | {kb(raw)} | {kb(gz)} |")
wasm = [sizes(p) for p in pkg.glob("*.wasm")]
print(f"| all wasm files ({len(wasm)}) | {kb(sum(w[0] for w in wasm))} | {kb(sum(w[1] for w in wasm))} |")
PY
