"""Rows on all cores against operators split across cores (ONNX int8), on dedicated and on shared cores.

    .venv/bin/python benchmarks/row_parallel.py [--model crest-me5s] [--threads 2] [--rounds 3]

The ONNX backend runs the rows of a batch in parts, each part on one core in a single-threaded session
(``rows=True``, ``OnnxBackend.parts_per_thread`` parts per thread, taken by whichever thread is free), or the whole
batch in one session whose operators are split across the cores (``rows=False``). Measured through ``check_batch``
(full guard path) in one process: texts/s on 256 prompts of ~64 tokens (``guard_bench.prompts``) and 256 of 40-200
tokens (``server_load.load_texts``), in calls of 8 and 32 texts, the best of ``--rounds`` rounds that interleave the
configurations; once on an otherwise idle machine, once beside one other process that keeps a core busy
(``python -c "while True: pass"``, as on a CPU shared with other work).
Writes benchmarks/results/row_parallel.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = (("operators split (rows=False)", False, 1), ("rows, 1 part per thread", True, 1),
           ("rows, 2 parts per thread (default)", True, 2))
BATCHES = (8, 32)


def measure(guards: dict, texts: dict[str, list[str]], rounds: int) -> dict[str, float]:
    from crestguard.guard.backends import OnnxBackend

    default = OnnxBackend.parts_per_thread
    best: dict[str, float] = {}
    try:
        for _ in range(rounds):
            for name, rows, per_thread in CONFIGS:
                OnnxBackend.parts_per_thread = per_thread
                guard = guards[rows]
                for kind, items in texts.items():
                    for bs in BATCHES:
                        t = time.perf_counter()
                        for i in range(0, len(items), bs):
                            guard.check_batch(items[i : i + bs])
                        key = f"{name}|{kind}|{bs}"
                        best[key] = max(best.get(key, 0.0), round(len(items) / (time.perf_counter() - t), 1))
    finally:
        OnnxBackend.parts_per_thread = default
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS / "row_parallel")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import guard_bench
    from server_load import load_texts

    from crestguard.guard import load_guard

    guards = {rows: load_guard(args.model, backend="onnx", threads=args.threads, rows=rows) for rows in (False, True)}
    texts = {"~64 tokens": guard_bench.prompts(guards[True].tokenizer, 256), "40-200 tokens": load_texts(256)}
    for guard in guards.values():
        guard.check_batch(texts["~64 tokens"][:32])
    loads = {"idle": os.getloadavg()[0]}
    results = {"idle": measure(guards, texts, args.rounds)}
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)
        results["one core busy"] = measure(guards, texts, args.rounds)
        loads["one core busy"] = os.getloadavg()[0]
    finally:
        hog.kill()
        hog.wait()
    res = {"model": args.model, "threads": args.threads, "rounds": args.rounds, "loadavg_1min": loads,
           "command": f"python benchmarks/row_parallel.py --model {args.model} --threads {args.threads} "
                      f"--rounds {args.rounds}", "texts_per_s": results}
    lines = [f"# Rows on all cores against operators split across cores ({args.model}, ONNX int8)", "",
             f"`{res['command']}`", "",
             "texts/s through `check_batch`, best of the rounds; 'one core busy': beside one process spinning on a "
             "core. Ratio: to operators split, on the same machine state.", "",
             "| machine | texts | batch | " + " | ".join(name for name, _, _ in CONFIGS) + " |",
             "|---|---|---:|" + "---:|" * len(CONFIGS)]
    for state, best in results.items():
        for kind in texts:
            for bs in BATCHES:
                base = best[f"{CONFIGS[0][0]}|{kind}|{bs}"]
                cells = []
                for name, _, _ in CONFIGS:
                    v = best[f"{name}|{kind}|{bs}"]
                    cells.append(f"{v}" + ("" if name == CONFIGS[0][0] else f" ({v / base:.2f}×)"))
                lines.append(f"| {state} | {kind} | {bs} | " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
