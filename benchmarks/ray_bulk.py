"""Bulk moderation of a file: one process (``crestguard check --file``) against Ray Data (``--ray``) on this machine.

The same ``.jsonl`` of real prompts (several sources and languages) is checked both ways with the default guard on
ONNX int8, and the verdicts are compared id by id:

- **one process**: :func:`crestguard.guard.files.check_file` with one guard using every core (row-parallel);
- **Ray**: a local cluster started for the run, ``--workers`` actors of one core each, one guard per actor
  (:mod:`crestguard.guard.bulk`); the time includes starting the cluster and loading a guard in every actor.

On one machine Ray cannot beat a process that already uses every core; what it buys is the same code on a
cluster of many machines (``--ray-address``). The run says what it costs here.

Usage::

    python benchmarks/ray_bulk.py                 # 2,000 prompts, 2 workers
    python benchmarks/ray_bulk.py --texts 500 --workers 2

Writes ``benchmarks/results/ray_bulk.json`` and ``.md`` (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from crestguard.paths import REPO_ROOT

SOURCES = ("benign_instructions", "harmbench", "multijail", "xstest", "advbench")


def prompts(n: int) -> list[str]:
    from crestguard.data import load_dataset

    per = -(-n // len(SOURCES))
    out: list[str] = []
    for name in SOURCES:
        texts = sorted({r.text for r in load_dataset(name).records if 20 <= len(r.text) <= 1500})
        out += texts[:: max(1, len(texts) // per)][:per]
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "ray_bulk"))
    args = ap.parse_args()

    from cli_start import machine, save

    from crestguard.guard.bulk import ray_rows
    from crestguard.guard.files import check_file
    from crestguard.guard.guard import load_guard

    texts = prompts(args.texts)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "prompts.jsonl"
        src.write_text("".join(json.dumps({"id": f"t{k}", "text": t}, ensure_ascii=False) + "\n"
                               for k, t in enumerate(texts)))
        t = time.perf_counter()
        guard = load_guard(args.model, backend="onnx")
        check_file(guard, src, Path(tmp) / "one.jsonl")
        runs["one process"] = time.perf_counter() - t
        t = time.perf_counter()
        check_file(None, src, Path(tmp) / "ray.jsonl", rows_of=ray_rows(args.model, args.workers, backend="onnx"))
        runs[f"Ray, {args.workers} workers"] = time.perf_counter() - t
        one, many = ({r["id"]: r for r in map(json.loads, (Path(tmp) / f"{n}.jsonl").read_text().splitlines())}
                     for n in ("one", "ray"))
    same = sum(one[k].get("unsafe") == many[k].get("unsafe") for k in one)
    result = {"command": "python benchmarks/ray_bulk.py " + " ".join(sys.argv[1:]), "texts": len(texts),
              "sources": SOURCES, "model": args.model, "backend": "onnx int8",
              "runs": {k: {"seconds": round(v, 1), "texts_per_s": round(len(texts) / v, 1)} for k, v in runs.items()},
              "same_verdicts": same, "flagged": sum(bool(r.get("unsafe")) for r in one.values()), **machine()}
    lines = ["# Bulk moderation: one process against Ray Data", "",
             f"`{result['command'].strip()}`: {len(texts):,} prompts ({', '.join(SOURCES)}), {args.model} on ONNX "
             f"int8, {result['cpus']} CPU cores (load average at the end {result['load_average_at_end'][0]}).", "",
             "| path | wall time (start-up included) | texts/s |", "|---|---|---|"]
    lines += [f"| {k} | {v['seconds']:.1f} s | {v['texts_per_s']:.1f} |" for k, v in result["runs"].items()]
    lines += ["", f"Same verdict for {same:,} of {len(texts):,} prompts ({result['flagged']:,} flagged)."]
    save(Path(args.out), result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
