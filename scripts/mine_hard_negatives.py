"""Mine hard benign windows or sentences of long training-split text that a guard flags, for a training mix.

    .venv/bin/python scripts/mine_hard_negatives.py --model runs/experiments/l_4layers_360/model \
        --out runs/mined/hard_windows.jsonl [--unit windows] [--docs 40] [--items 300] [--min-score 0.5] [--cap 600]
    .venv/bin/python scripts/mine_hard_negatives.py --model crest-me5s --unit sentences \
        --out runs/mined/hard_sentences.jsonl --docs 120 --min-score 0.3 --cap 3000

A guard reads a long input in windows of its training length and the riskiest window decides (docs/guard.md), so
a model that flags any window of long benign text flags the whole text. This script finds such windows the way the
guard meets them: it joins ``--items`` consecutive instructions of the *training* split of benign_instructions
(shuffled with ``--seed``) into ``--docs`` documents, lets the guard of ``--model`` score them, and keeps every
window that scores at least ``--min-score`` (at most ``--cap``, the riskiest first). Each kept window is written
twice, as counterfactual pairs:

- label 0: the window as the guard read it (a hard negative);
- label 1: the same window with one harmful request of the training material (advbench, and XSafety's crime,
  insult and unsafe-instruction prompts in the selected languages; evaluation items dropped by the manifest)
  inserted after one of its sentences, trimmed from the front so that it fits the training length.

So the only difference between the labels of a pair is the request, not the topic of the benign text.

With ``--unit sentences`` the guard also scores every sentence on its own (``sentences="long"``), and the benign
sentences that score at least ``--min-score`` are written once, label 0 (no pairs: harmful requests are already
single sentences in every mix). The output
is JSON lines of records (``crestguard.translate.pipeline.read_records``), read by a mix as ``file:`` source
(configs/mixes/paper_faithful_mined.yaml). It goes under runs/ (not committed: the texts come from the data
directory); the mix names the command that rebuilds it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def harmful_requests(seed: int) -> list:
    """Harmful requests the training mixes may use (the evaluation manifest's items dropped)."""
    from crestguard.evaluation.manifest import load_manifest
    from crestguard.training.mix import build_source, parse_source, selected_languages

    manifest, dropped = load_manifest("default"), Counter()
    specs = [{"dataset": "advbench", "langs": "all"},
             {"dataset": "xsafety", "langs": "selected", "labels": [1], "per_language_cap": 80,
              "categories": ["Crimes_And_Illegal_Activities", "Insult", "Unsafe_Instruction_Topic"]}]
    out = []
    for i, raw in enumerate(specs):
        out += build_source(parse_source(raw, f"requests[{i}]"), selected_languages(), seed, manifest, dropped)
    return out


def insert_request(window: str, request: str, rng: np.random.Generator, tokenizer, limit: int) -> str:
    """``request`` after a random sentence of ``window`` (or at its end), whole sentences dropped from the front
    until the text fits ``limit`` tokens."""
    cuts = [m.end() for m in SENTENCE_END.finditer(window)] + [len(window)]
    at = cuts[int(rng.integers(len(cuts)))]
    text = (window[:at].rstrip() + " " + request.strip() + " " + window[at:].lstrip()).strip()
    while len(tokenizer.encode(text).ids) > limit:
        m = SENTENCE_END.search(text)
        if m is None or m.end() > text.find(request.strip()):
            break
        text = text[m.end():]
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="guard name or model folder that finds the hard spans")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "mined" / "hard_windows.jsonl")
    ap.add_argument("--unit", choices=("windows", "sentences"), default="windows")
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--min-score", type=float, default=0.5)
    ap.add_argument("--cap", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from crestguard.data import load_dataset
    from crestguard.evaluation.manifest import load_manifest
    from crestguard.guard import load_guard
    from crestguard.guard.normalize import normalize

    rng = np.random.default_rng(args.seed)
    pool, _ = load_manifest("default").split(load_dataset("benign_instructions").split("train"))
    order = rng.permutation(len(pool))
    docs = [" ".join(pool[k].text.strip() for k in order[i * args.items:(i + 1) * args.items])
            for i in range(min(args.docs, len(pool) // args.items))]
    guard = load_guard(args.model, backend="torch", langid=False)
    unit = args.unit[:-1]  # the Window.kind of the spans mined
    if unit == "sentence":
        guard = guard.with_settings(sentences="long")
    found, spans, seen = [], 0, set()
    for d, verdict in enumerate(guard.check_batch(docs)):
        spans += sum(w.kind == unit for w in verdict.windows)
        text = normalize(docs[d]).text  # spans are in the coordinates of the normalized text
        for w in verdict.windows:
            span = text[w.start_char:w.end_char]
            if w.kind == unit and w.score >= args.min_score and span not in seen:
                seen.add(span)
                found.append((w.score, d, w.index, span))
    found.sort(key=lambda f: -f[0])
    found = found[: args.cap]
    summary = {"unit": args.unit, "docs": len(docs), "spans": spans, "kept": len(found),
               "score_range": [round(found[-1][0], 3), round(found[0][0], 3)] if found else None, "out": str(args.out)}
    records = []
    if unit == "sentence":
        for score, d, i, span in found:
            group = f"hard_sentence:{args.seed}:{d}:{i}"
            records.append({"id": group, "text": span, "label": 0, "group": group, "category": "hard_sentence",
                            "mined_score": round(score, 4)})
    else:
        requests = harmful_requests(args.seed)
        summary["requests_pool"] = len(requests)
        for score, d, i, window in found:
            request = requests[int(rng.integers(len(requests)))]
            group = f"hard_window:{args.seed}:{d}:{i}"
            inserted = insert_request(window, request.text, rng, guard.tokenizer, guard.settings.window)
            records += [{"id": f"{group}:0", "text": window, "label": 0, "group": group, "category": "hard_window",
                         "mined_score": round(score, 4)},
                        {"id": f"{group}:1", "text": inserted, "label": 1, "group": group,
                         "category": "hard_window_request", "request_lang": request.lang,
                         "mined_score": round(score, 4)}]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        for r in records:
            fh.write(json.dumps({**r, "lang": "en", "source": "mined"}, ensure_ascii=False) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
