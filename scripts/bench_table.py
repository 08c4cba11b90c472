#!/usr/bin/env python3
"""Print the README's GEMM table from criterion's saved results.

Run `cargo bench --bench gemm` first; this reads target/criterion/<group>/<bench>/new/
estimates.json and benchmark.json, takes the *median* time of each benchmark, and prints
GFLOP/s (2 m n k / median) with the ratio to matrixmultiply measured in the same run.
"""

import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = {}
for est in root.glob("**/new/estimates.json"):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    group = bench["group_id"]
    name = bench["function_id"] + ("/" + bench["value_str"] if bench.get("value_str") else "")
    m = re.search(r"(\d+)x(\d+)x(\d+)", group)
    if not m:
        continue
    flops = 2 * int(m[1]) * int(m[2]) * int(m[3])
    median_ns = json.loads(est.read_text())["median"]["point_estimate"]
    rows.setdefault(group, {})[name] = flops / median_ns  # FLOP per ns = GFLOP/s


def order(group):
    kind, shape = group.split("/")
    return (kind != "trainer", kind, [int(x) for x in shape.split("x")])


columns = ["simdnet/avx512", "simdnet/avx2", "simdnet/neon", "simdnet/scalar", "matrixmultiply"]
present = [c for c in columns if any(c in r for r in rows.values())]
print("| shape (m,k,n) | " + " | ".join(c.replace("simdnet/", "simdnet ") for c in present)
      + " | best simdnet / matrixmultiply |")
print("|---" * (len(present) + 2) + "|")
for group in sorted((g for g in rows if not g.startswith("threads")), key=order):
    r = rows[group]
    cells = [f"{r[c]:.1f}" if c in r else "" for c in present]
    best = max((v for k, v in r.items() if k.startswith("simdnet")), default=None)
    base = r.get("matrixmultiply")
    ratio = f"{best / base:.2f}x" if best and base else ""
    shape = ",".join(group.split("/")[1].split("x"))
    print(f"| ({shape}) | " + " | ".join(cells) + f" | {ratio} |")

threads = {g: r for g, r in rows.items() if g.startswith("threads")}
if threads:
    print()
    print("| shape (m,k,n) | 1 thread | 2 threads | speed-up |")
    print("|---|---|---|---|")
    for group in sorted(threads, key=order):
        r = threads[group]
        one = next((v for k, v in r.items() if k.endswith("/1")), None)
        two = next((v for k, v in r.items() if k.endswith("/2")), None)
        shape = ",".join(group.split("/")[1].split("x"))
        if one and two:
            print(f"| ({shape}) | {one:.1f} | {two:.1f} | {two / one:.2f}x |")
