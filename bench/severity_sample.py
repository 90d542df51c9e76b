"""Draw a seeded random sample of findings from a ``scan --format json`` report, to check by hand.

    python -m asyncmigrate scan PROJECT --format json -o scan.json --exit-zero --no-cache
    python bench/severity_sample.py scan.json --seed 10 -n 30 --root PROJECT

prints a markdown table (path, line, code, severity the scan gave, scope, chain) with an empty
``verdict`` column to fill in by reading the code: does this line run on the event loop (blocks-loop) or
only in a worker thread / at import / from a script (debt)?  Findings are ordered by (path, line, column,
code) before sampling, so the same report and seed give the same sample.  Filled-in samples are kept under
``bench/severity/`` (paths and lines only; the project's code is never copied).
"""

from __future__ import annotations

import argparse
import json
import os
import random


def sample(report: dict, seed: int, n: int) -> list[dict]:
    found = sorted(report["findings"], key=lambda f: (f["path"], f["line"], f["column"], f["code"]))
    picks = random.Random(seed).sample(range(len(found)), min(n, len(found)))
    return [found[i] for i in sorted(picks)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--root", default="", help="strip this prefix from paths")
    args = ap.parse_args()
    with open(args.report, encoding="utf-8") as fh:
        report = json.load(fh)
    print("| # | path:line | code | scan says | scope | chain | verdict |")
    print("|---|---|---|---|---|---|---|")
    for i, f in enumerate(sample(report, args.seed, args.n), 1):
        path = os.path.relpath(f["path"], args.root) if args.root else f["path"]
        chain = " → ".join(f["chain"])
        print(f"| {i} | {path}:{f['line']} | {f['code']} | {f['severity']} | {f['scope']} | {chain} |  |")


if __name__ == "__main__":
    main()
