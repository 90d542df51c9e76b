"""The floor a per-file pass is compared with: parse every file and do nothing else.

    python bench/parse_only.py libcst FILELIST [-j 2]
    python bench/parse_only.py ast FILELIST [-j 2]

``FILELIST`` holds one path a line.  The files are parsed in a ``multiprocessing.Pool``
of ``-j`` workers (the work is split like asyncmigrate's: batches of files, read in the
worker), and the counts of parsed and unparsable files are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from multiprocessing import Pool
from typing import Sequence


def _parse_libcst(data: bytes) -> None:
    import libcst

    libcst.parse_module(data)


def _parse_ast(data: bytes) -> None:
    import ast

    ast.parse(data)


def _batch(args: tuple[str, list[str]]) -> tuple[int, int]:
    kind, paths = args
    parse = _parse_libcst if kind == "libcst" else _parse_ast
    ok = bad = 0
    warnings.simplefilter("ignore")
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            parse(data)
            ok += 1
        except Exception:  # noqa: BLE001 - a parse failure is counted, like any tool's per-file error
            bad += 1
        except RecursionError:  # pragma: no cover - RecursionError is an Exception; kept for clarity
            bad += 1
    return ok, bad


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("parser", choices=("libcst", "ast"))
    ap.add_argument("filelist")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="files per task (default 16)")
    args = ap.parse_args(argv)
    with open(args.filelist, encoding="utf-8", errors="surrogateescape") as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    batches = [(args.parser, paths[i:i + args.batch]) for i in range(0, len(paths), args.batch)]
    start = time.perf_counter()
    ok = bad = 0
    if args.jobs > 1:
        with Pool(args.jobs) as pool:
            for o, b in pool.imap_unordered(_batch, batches):
                ok, bad = ok + o, bad + b
    else:
        for batch in batches:
            o, b = _batch(batch)
            ok, bad = ok + o, bad + b
    print(json.dumps({"parser": args.parser, "files": len(paths), "parsed": ok, "failed": bad,
                      "seconds": round(time.perf_counter() - start, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
