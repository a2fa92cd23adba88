"""Which features should the category head read? The guard's pooled output, or the frozen backbone's mean-pooled
embedding (a second encoder pass per text)?

Same training texts (a seeded sample of the category head's training split), same learner (``fit_head``), two
feature kinds; scored on the OpenAI moderation set (never trained on) and the held-out groups of the training
sources. Writes ``reports/categories/features.{json,md}``::

    python scripts/category_features.py --model crest-me5s [--train 6000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from crestguard.paths import REPO_ROOT, cache_dir


def frozen_features(texts: list[str], backbone: str) -> np.ndarray:
    """Mean-pooled, normalized last-layer embeddings of the frozen backbone (``query: `` prefix), cached."""
    from crestguard.backbones import load_backbone
    from crestguard.evaluation.manifest import text_key

    path = cache_dir() / "categories" / f"frozen-{backbone}.npz"
    cache = {}
    if path.is_file():
        with np.load(path) as z:
            cache = dict(zip(z["keys"].tolist(), z["feats"]))
    keys = [text_key(t) for t in texts]
    todo = {k: t for k, t in zip(keys, texts) if k not in cache}
    if todo:
        emb = load_backbone(backbone).encode(list(todo.values()), max_length=256, prefix="query: ", bf16=True)
        cache.update(zip(todo, emb))
        np.savez(path, keys=np.array(list(cache)), feats=np.stack(list(cache.values())))
    return np.stack([cache[k] for k in keys])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--train", type=int, default=6000, help="training texts sampled from the head's training split")
    ap.add_argument("--out", default=str(REPO_ROOT / "reports" / "categories"))
    args = ap.parse_args()

    import crestguard
    from crestguard.evaluation.categories import category_table, openai_table
    from crestguard.taxonomy import load_taxonomy
    from crestguard.training.categories import category_sets, fit_head, targets, text_features

    started = time.time()
    names = load_taxonomy().names
    guard = crestguard.load_guard(args.model, backend="onnx")
    sets = category_sets()
    rng = np.random.default_rng(0)
    train = [sets.train[i] for i in sorted(rng.choice(len(sets.train), min(args.train, len(sets.train)), False))]
    om = [r for r in sets.reserved if r.source == "openai_moderation"]
    held = sets.eval
    y, m = targets(train)
    results = {"command": f"python scripts/category_features.py --model {args.model} --train {args.train}",
               "train_texts": len(train), "held_out_texts": len(held), "openai_texts": len(om)}
    for kind in ("guard_pooled", "frozen_backbone_mean"):
        t0 = time.time()
        if kind == "guard_pooled":
            feats = [text_features(guard, [r.text for r in part]) for part in (train, om, held)]
        else:
            feats = [frozen_features([r.text for r in part], guard.meta["backbone"]) for part in (train, om, held)]
        head, _ = fit_head(feats[0], y, m, names)
        res_om = openai_table(om, head.scores(feats[1]), head.thresholds, names)
        res_held = category_table(held, head.scores(feats[2]), head.thresholds, names)
        results[kind] = {"openai_macro_auprc": res_om["macro_auprc"], "openai_macro_f1": res_om["macro_f1"],
                         "openai_auprc": {k: v["auprc"] for k, v in res_om["labels"].items()},
                         "held_out_macro": res_held["macro"], "seconds": round(time.time() - t0, 1)}
        print(kind, json.dumps(results[kind]))
    results["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "features.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [f"| {k} | {results[k]['openai_macro_auprc']} | {results[k]['openai_macro_f1']} | "
            f"{results[k]['held_out_macro'].get('f1')} | {results[k]['held_out_macro'].get('auprc')} |"
            for k in ("guard_pooled", "frozen_backbone_mean")]
    (out / "features.md").write_text(
        "# Category head: guard pooled features against frozen backbone embeddings\n\n"
        f"`{results['command']}`: the same {len(train)} training texts and learner; scored on the OpenAI "
        f"moderation set ({len(om)} passages, never trained on) and {len(held)} held-out texts.\n\n"
        "| features | OpenAI macro AUPRC | OpenAI macro F1 | held-out macro F1 | held-out macro AUPRC |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
