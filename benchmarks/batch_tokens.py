"""Throughput of ``check_batch`` by the guard's ``max_batch_tokens`` cap, on prompts of unlike and of equal length.

    .venv/bin/python benchmarks/batch_tokens.py [--model crest-me5s] [--threads 2]

Texts: 256 prompts of the server benchmark (200-400 characters, 40-200 tokens; ``server_load.load_texts``) and 256
prompts of ~64 tokens (``guard_bench.prompts``), judged in calls of 32 texts, as the server's micro-batches are.
For each backend (ONNX int8, torch int8) and cap: texts/s, best of 3 rounds that interleave the caps, all in
one run.
Writes benchmarks/results/batch_tokens.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CAPS = (8192, 1024, 512, 256)
ROUNDS = 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "batch_tokens")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import guard_bench
    from server_load import load_texts

    from crestguard.guard import load_guard

    rows = []
    for backend, precision in (("onnx", "int8"), ("torch", "int8")):
        guard = load_guard(args.model, backend=backend, precision=precision, threads=args.threads)
        sets = {"40-200 tokens": load_texts(256), "~64 tokens": guard_bench.prompts(guard.tokenizer, 256)}
        for name, texts in sets.items():
            guards = {cap: guard.with_settings(max_batch_tokens=cap) for cap in CAPS}
            best = dict.fromkeys(CAPS, 0.0)
            for _ in range(ROUNDS):  # the caps interleaved, so that a slow spell of the machine hits all alike
                for cap, g in guards.items():
                    g.check_batch(texts[:32])
                    t = time.perf_counter()
                    for i in range(0, len(texts), 32):
                        g.check_batch(texts[i : i + 32])
                    best[cap] = max(best[cap], len(texts) / (time.perf_counter() - t))
            for cap in CAPS:
                rows.append({"config": f"{backend}-{precision}", "texts": name, "max_batch_tokens": cap,
                             "texts_per_s": round(best[cap], 1)})
                print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    lines = ["# Throughput by max_batch_tokens (calls of 32 texts)", "",
             f"`python benchmarks/batch_tokens.py --model {args.model} --threads {args.threads}`", "",
             "| config | texts | " + " | ".join(f"cap {c}" for c in CAPS) + " |",
             "|---|---|" + "---:|" * len(CAPS)]
    for config in dict.fromkeys(r["config"] for r in rows):
        for texts in dict.fromkeys(r["texts"] for r in rows):
            got = {r["max_batch_tokens"]: r["texts_per_s"] for r in rows if (r["config"], r["texts"]) == (config, texts)}
            lines.append(f"| {config} | {texts} | " + " | ".join(str(got[c]) for c in CAPS) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
