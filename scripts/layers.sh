#!/usr/bin/env bash
# Checks the server crate's layering: every module of server/src may use only modules of a
# lower layer (never its own layer's siblings, never a higher one), and no two files import
# each other in a circle. Prints each offending import with its file and line; exits 1 if any.
#   scripts/layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import pathlib, re, sys

# Layers from the bottom up. A module may use modules of strictly lower layers only.
LAYERS = [
    ["clock", "kinesis", "settings"],
    ["metric"],
    ["storage"],
    ["engine", "query"],
    ["catalog", "alerts", "export", "auth", "dashboards"],
    ["telemetry"],
    ["consumer"],
    ["producer", "tail"],
    ["live", "pipeline"],
    ["http"],
    ["config"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
SRC = pathlib.Path("server/src")
TOP = {"lib.rs", "main.rs"}

def module_of(path):
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)

files = sorted(p for p in SRC.rglob("*.rs") if p.relative_to(SRC).as_posix() not in TOP)
problems = []
unknown = sorted({module_of(p) for p in files} - RANK.keys())
for m in unknown:
    problems.append(f"server/src/{m}: module has no layer in scripts/layers.sh")

def file_for(parts):
    """The file a path of module names resolves to (the longest existing prefix)."""
    for n in range(len(parts), 0, -1):
        base = SRC.joinpath(*parts[:n])
        for cand in (base.with_suffix(".rs"), base / "mod.rs"):
            if cand.exists():
                return cand
    return None

def dir_of(path):
    """Module path (names) of a file."""
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts

def expand(tree):
    """`a::{b, c::{d, e}}` -> [["a","b"], ["a","c","d"], ["a","c","e"]]."""
    tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
    tree = re.sub(r"\s+", "", tree)
    def split_top(text):
        depth, start, out = 0, 0, []
        for i, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                out.append(text[start:i]); start = i + 1
        out.append(text[start:])
        return [t for t in out if t]
    def walk(prefix, text):
        if "{" in text and text.endswith("}"):
            head, inner = text.split("{", 1)
            head = [p for p in head.split("::") if p]
            paths = []
            for part in split_top(inner[:-1]):
                paths += walk(prefix + head, part)
            return paths
        return [prefix + [p for p in text.split("::") if p]]
    return walk([], tree)

def references(text):
    """(line, path) of every `crate::`/`super::` path: in use trees and inline."""
    refs = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        line = text.count("\n", 0, m.start()) + 1
        for path in expand(m.group(1)):
            if path and path[0] in ("crate", "super"):
                refs.append((line, path))
    without_uses = re.sub(r"\buse\s+[^;]+;", lambda m: "\n" * m.group(0).count("\n"), text)
    for m in re.finditer(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", without_uses):
        line = without_uses.count("\n", 0, m.start()) + 1
        refs.append((line, [m.group(1)] + [p for p in m.group(2).split("::") if p]))
    return refs

edges = {}
for path in files:
    text = strip_comments(path.read_text())
    me = module_of(path)
    here = dir_of(path)
    targets = set()
    for lineno, ref in references(text):
        if ref[0] == "crate":
            parts = ref[1:]
        else:
            # `super` of a file is its directory's module; of a mod.rs, the directory above.
            parts = here[:-1] + ref[1:]
        parts = [p for p in parts if p not in ("self", "*")]
        if not parts:
            continue
        other = parts[0]
        if ref[0] == "crate" and other != me and other in RANK and me in RANK and RANK[other] >= RANK[me]:
            rel = "same" if RANK[other] == RANK[me] else "higher"
            problems.append(
                f"{path}:{lineno}: `{me}` uses `crate::{other}` ({rel} layer: "
                f"{me} is layer {RANK[me]}, {other} is layer {RANK[other]})"
            )
        target = file_for(parts)
        if target is not None and target != path:
            targets.add(target)
    edges[path] = targets

# Circles between files (Tarjan's strongly connected components).
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))
for v in files:
    if v not in index:
        visit(v)
for comp in comps:
    problems.append("circle of imports: " + " <-> ".join(str(p) for p in comp))

if problems:
    print("layering check failed:")
    for p in problems:
        print("  " + p)
    sys.exit(1)
print(f"layering check: {len(files)} files in {len(RANK)} modules, no upward import, no circle")
PY
