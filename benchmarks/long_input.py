"""A harmful request after thousands of benign tokens: is the benign filler flagged, is the request caught?

    .venv/bin/python benchmarks/long_input.py [--model crest-me5s --model runs/experiments/b_selected_in_context/model]

Fillers: 300 consecutive benign instructions (about 4,300 tokens) from the held-out test split of
benign_instructions and from three slices of its training split. Each filler is scored alone, then with each of the
five harmful requests of tests/test_guard_default.py appended. Writes benchmarks/results/long_input.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="guard name or model folder (repeatable)")
    ap.add_argument("--out", type=Path, default=RESULTS / "long_input")
    args = ap.parse_args()
    models = args.model or ["crest-me5s"]

    sys.path.insert(0, str(ROOT / "tests"))
    from test_guard_default import HARMFUL

    from crestguard.data import load_dataset
    from crestguard.guard import load_guard

    ds = load_dataset("benign_instructions")
    fillers = {"test[0:300]": ds.split("test")[:300]}
    train = ds.split("train")
    for a in (2000, 5000, 9000):
        fillers[f"train[{a}:{a + 300}]"] = train[a:a + 300]
    rows = []
    for model in models:
        guard = load_guard(model, langid=False)
        for name, recs in fillers.items():
            filler = " ".join(r.text for r in recs)
            verdicts = guard.check_batch([filler] + [filler + " " + h for h in HARMFUL])
            rows.append({"model": model, "filler": name, "filler_tokens": len(guard.tokenizer.encode(filler).ids),
                         "threshold": verdicts[0].threshold, "filler_score": round(verdicts[0].score, 3),
                         "with_request_scores": [round(v.score, 3) for v in verdicts[1:]],
                         "requests_caught": sum(v.unsafe for v in verdicts[1:]),
                         "decided_by_request_window": sum(
                             v.windows[v.decisive_window].end_char > len(filler) for v in verdicts[1:])})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    lines = ["# Long inputs: a harmful request after ~4,300 benign tokens", "",
             "`python benchmarks/long_input.py " + " ".join(f"--model {m}" for m in models) + "`", "",
             "| model | filler | tokens | filler score | with a request appended (5 requests) | caught | decided by the "
             "request's window |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['filler']} | {r['filler_tokens']} | {r['filler_score']} | "
                     f"{', '.join(map(str, r['with_request_scores']))} | {r['requests_caught']}/5 | "
                     f"{r['decided_by_request_window']}/5 |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
