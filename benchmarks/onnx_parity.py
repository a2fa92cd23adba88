"""ONNX int8 (or another backend/precision) vs torch fp32 on a sample of the default evaluation suite: label
agreement and |Δscore|.

    .venv/bin/python benchmarks/onnx_parity.py [--model crest-me5s] [--per-set 60]
    .venv/bin/python benchmarks/onnx_parity.py --backend torch --precision int8 --out benchmarks/results/torch_int8_parity

Writes benchmarks/results/onnx_parity.{json,md}. The ONNX model is exported into the cache on first use.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--per-set", type=int, default=60, help="texts sampled from each set of the suite")
    ap.add_argument("--backend", default="onnx", help="backend to compare with torch fp32")
    ap.add_argument("--precision", default="int8", help="its precision")
    ap.add_argument("--out", type=Path, default=RESULTS / "onnx_parity")
    args = ap.parse_args()

    import crestguard
    from crestguard.guard.onnx.parity import compare, suite_sample

    items = suite_sample(args.per_set)
    texts = [t for _, t in items]
    torch_guard = crestguard.load_guard(args.model, backend="torch", langid=False)
    onnx_guard = crestguard.load_guard(args.model, backend=args.backend, precision=args.precision, langid=False)
    start = time.perf_counter()
    result = compare(torch_guard, onnx_guard, texts)
    a, b = result.pop("_scores")
    per_set: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (name, _), x, y in zip(items, a, b):
        per_set[name][0] += 1
        per_set[name][1] += int((x >= torch_guard.threshold) == (y >= onnx_guard.threshold))
    result.update(
        suite="default", per_set_sample=args.per_set, seconds=round(time.perf_counter() - start, 1),
        by_set={k: {"items": n, "agreement": round(ok / n, 4)} for k, (n, ok) in sorted(per_set.items())},
        command=f"python benchmarks/onnx_parity.py --model {args.model} --per-set {args.per_set}"
                + ("" if (args.backend, args.precision) == ("onnx", "int8") else
                   f" --backend {args.backend} --precision {args.precision} --out {args.out}"),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    d = result["abs_delta"]
    lines = [
        f"# {'ONNX' if args.backend == 'onnx' else args.backend} {args.precision} vs torch fp32 parity ({args.model})", "",
        f"`{result['command']}`", "",
        f"- texts: {result['items']} ({args.per_set} per set of the default evaluation suite, all {len(per_set)} "
        "sets)",
        f"- same label: **{100 * result['label_agreement']:.2f}%** ({result['disagreements']} disagreements)",
        f"- |Δscore|: mean {d['mean']:.4f}, median {d['p50']:.4f}, p99 {d['p99']:.4f}, max {d['max']:.4f}", "",
        "| set | texts | same label |", "|---|---:|---:|",
        *[f"| {k} | {v['items']} | {100 * v['agreement']:.1f}% |" for k, v in result["by_set"].items()],
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
