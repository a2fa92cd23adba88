"""A harmful request after thousands of benign tokens: is the benign filler flagged, is the request caught?

    .venv/bin/python benchmarks/long_input.py [--model crest-me5s --model runs/experiments/w_4layers/model]
        [--sentences off,long,only]

Fillers: 300 consecutive benign instructions (about 4,300 tokens) from the held-out test split of
benign_instructions, the first 300 of its test items that the guard passes one by one ("test, passing alone": the
filler then holds no item the guard flags on its own), three slices of its training split, and news: 100
consecutive NTREX-128 sentences (whole articles, 2,000-4,000 tokens) in English, German, Hindi, Japanese and
Swahili, from two places in the corpus (sentences 0-99 and 800-899). Each filler is
scored alone, then with each of the five harmful requests of tests/test_guard_default.py appended; once per
sentence mode of the guard (``sentences``: windows only, windows and sentences, or sentences only). Writes
benchmarks/results/long_input.{json,md}: a summary per model and mode, then every filler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NEWS_LANGS = ("en", "de", "hi", "ja", "sw")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="guard name or model folder (repeatable)")
    ap.add_argument("--sentences", default="off,long,only", help="comma-separated sentence modes of the guard")
    ap.add_argument("--out", type=Path, default=RESULTS / "long_input")
    args = ap.parse_args()
    models = args.model or ["crest-me5s"]
    modes = args.sentences.split(",")

    sys.path.insert(0, str(ROOT / "tests"))
    from test_guard_default import HARMFUL, passing_items

    from crestguard.data import load_dataset
    from crestguard.guard import load_guard

    ds = load_dataset("benign_instructions")
    test = [r.text for r in ds.split("test")]
    train = [r.text for r in ds.split("train")]
    news: dict[str, list[str]] = {}
    for r in load_dataset("ntrex128").records:
        if r.lang in NEWS_LANGS:
            news.setdefault(r.lang, []).append(r.text)
    rows = []
    for model in models:
        guard = load_guard(model, backend="torch", langid=False)
        fillers = {"test[0:300]": test[:300], "test, passing alone": passing_items(guard)}
        for a in (2000, 5000, 9000):
            fillers[f"train[{a}:{a + 300}]"] = train[a:a + 300]
        for lang in NEWS_LANGS:
            for a in (0, 800):
                fillers[f"news {lang}[{a}:{a + 100}]"] = news[lang][a:a + 100]
        for mode in modes:
            g = guard.with_settings(sentences=mode)
            for name, items in fillers.items():
                filler = ("" if name.startswith("news ja") else " ").join(items)
                verdicts = g.check_batch([filler] + [filler + " " + h for h in HARMFUL])
                decisive = verdicts[0].windows[verdicts[0].decisive_window]
                rows.append({"model": model, "sentences": mode, "filler": name,
                             "filler_tokens": len(g.tokenizer.encode(filler).ids),
                             "spans_scored": len(verdicts[0].windows), "threshold": verdicts[0].threshold,
                             "filler_score": round(verdicts[0].score, 3),
                             "filler_decided_by": filler[decisive.start_char:decisive.end_char][:80],
                             "with_request_scores": [round(v.score, 3) for v in verdicts[1:]],
                             "requests_caught": sum(v.unsafe for v in verdicts[1:]),
                             "decided_by_request_window": sum(
                                 v.windows[v.decisive_window].end_char > len(filler) for v in verdicts[1:]),
                             "caught_by_request_window": sum(
                                 v.unsafe and v.windows[v.decisive_window].end_char > len(filler)
                                 for v in verdicts[1:])})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    lines = ["# Long inputs: a harmful request after 2,000-4,300 benign tokens", "",
             "`python benchmarks/long_input.py " + " ".join(f"--model {m}" for m in models)
             + f" --sentences {args.sentences}`", "",
             "Summary: how many of the 15 fillers (10 of them news) are flagged alone, and of the 75 texts with a "
             "request appended, how many are caught by the request's own span.", "",
             "| model | sentences | fillers flagged | news flagged | 'test, passing alone' flagged | requests "
             "caught by their span |", "|---|---|---|---|---|---|"]
    for (model, mode), group in _groups(rows).items():
        test = next(r for r in group if r["filler"] == "test, passing alone")
        lines.append(f"| {model} | {mode} | {sum(r['filler_score'] >= r['threshold'] for r in group)}/{len(group)} | "
                     f"{sum(r['filler_score'] >= r['threshold'] for r in group if r['filler'].startswith('news'))}"
                     f"/{sum(r['filler'].startswith('news') for r in group)} | "
                     f"{'yes' if test['filler_score'] >= test['threshold'] else 'no'} ({test['filler_score']}) | "
                     f"{sum(r['caught_by_request_window'] for r in group)}/{5 * len(group)} |")
    lines += ["", "| model | sentences | filler | tokens | spans scored | filler score | with a request appended (5 "
             "requests) | caught | decided by the request's span |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['sentences']} | {r['filler']} | {r['filler_tokens']} | "
                     f"{r['spans_scored']} | {r['filler_score']} | "
                     f"{', '.join(map(str, r['with_request_scores']))} | {r['requests_caught']}/5 | "
                     f"{r['decided_by_request_window']}/5 |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["model"], r["sentences"]), []).append(r)
    return out


if __name__ == "__main__":
    main()
