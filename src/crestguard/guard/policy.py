"""Custom categories: learn a category from a few example texts in any language, keep it in a policy file.

``crestguard policy add gambling --examples pos.txt [--negatives neg.txt] --policy policy.yaml`` (one text per line):

- features: the guard's pooled features of each example (the same features the built-in category head reads, so a
  custom category costs nothing extra at inference);
- negatives: the given ones, plus the pooled features of sampled training texts stored with the model's category
  head (``background``; benign texts and every built-in category), so that a category learned from positives alone
  still has something to tell them from;
- model: an L2 logistic regression (:func:`crestguard.guard.categories.fit_logistic`, numpy); its threshold (never
  below the one that flags 1% of the background texts out of fold) is the
  one with maximal F1 on 3-fold out-of-fold scores of the examples;
- storage: the policy file (the threshold-policy YAML the guard takes with ``thresholds=``): ``custom.<name>`` holds
  the weights (base64 float32), the threshold, the model's hash and the example texts (so ``crestguard policy refit``
  relearns it after the model changes); ``categories.<name>`` holds its action (``flag`` by default: a deployment
  adds a category to block on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crestguard.errors import CrestGuardError
from crestguard.guard.categories import CustomCategory, fit_logistic, oof_scores

#: A custom category's threshold flags at most this share of the background texts (out of fold).
BACKGROUND_FPR = 0.01
#: Background negatives weigh as much, together, as this many example texts.
BACKGROUND_WEIGHT = 50.0


class PolicyError(CrestGuardError):
    """A policy file or an examples file cannot be used."""


def read_examples(path: str | Path) -> list[str]:
    """One text per line (blank lines skipped); ``.jsonl`` files: the ``text`` field of each line."""
    import json

    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"examples file not found: {path}")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".jsonl":
        lines = [json.loads(ln)["text"].strip() for ln in lines if ln]
    texts = list(dict.fromkeys(t for t in lines if t))
    if not texts:
        raise PolicyError(f"{path} holds no example text")
    return texts


def learn(guard, name: str, positives: Sequence[str], negatives: Sequence[str] = (), l2: float = 1.0,
          use_background: bool = True) -> CustomCategory:
    """Learn category ``name`` from example texts through ``guard`` (see the module docstring).

    Raises:
        PolicyError: fewer than 5 positives, or no negatives at all (none given and no category head).
    """
    from crestguard.training.categories import text_features

    if len(positives) < 5:
        raise PolicyError(f"category {name!r}: give at least 5 example texts (20-200 work best), got {len(positives)}")
    texts = list(positives) + list(negatives)
    x = text_features(guard, texts).astype(np.float64)
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    w = np.ones(len(texts))
    head = guard.categories.head if guard.categories is not None else None
    if head is None:
        from crestguard.guard.categories import CategoryHead, head_path

        path = head_path(guard.model_dir)
        head = CategoryHead.load(path) if path.is_file() else None
    bg = head.background if head is not None and use_background else None
    if bg is not None:
        x = np.vstack([x, bg])
        y = np.r_[y, np.zeros(len(bg))]
        w = np.r_[w, np.full(len(bg), BACKGROUND_WEIGHT / len(bg))]
    keep = ~np.isnan(x).any(axis=1)
    x, y, w = x[keep], y[keep], w[keep]
    if y.min() == 1:
        raise PolicyError(f"category {name!r}: no negatives (give --negatives; this model has no category head "
                          "with background texts)")
    wt, b = fit_logistic(x, y, l2, w)
    from crestguard.guard.thresholds import best_threshold

    oof = oof_scores(x, y, l2, weights=w)
    real = np.arange(len(y)) < int(keep[: len(texts)].sum())  # the threshold is chosen on the given texts
    thr = best_threshold(oof[real], y[real].astype(int)) if y[real].min() == 0 else \
        float(np.quantile(oof[real], 0.1))
    background = oof[~real]
    if background.size >= 50:  # and flag at most BACKGROUND_FPR of general text (the model's sampled training texts)
        thr = max(thr, float(np.quantile(background, 1 - BACKGROUND_FPR)))
    pos_recall = float((oof[real][y[real] == 1] >= thr).mean())
    return CustomCategory(name=name, kind="logistic", w=wt, b=b, threshold=round(float(thr), 6),
                          model=guard.model_hash,
                          examples={"positives": list(positives), "negatives": list(negatives)},
                          stats={"positives": len(positives), "negatives": len(negatives),
                                 "background": 0 if bg is None else len(bg), "oof_recall": round(pos_recall, 4)})


def read_policy(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: a policy file is a YAML mapping")
    return doc


def write_policy(path: str | Path, doc: dict[str, Any]) -> Path:
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    return path


def add_category(path: str | Path, category: CustomCategory, action: str = "flag",
                 threshold: float | None = None) -> Path:
    """Store ``category`` (and its rule) in the policy file at ``path`` (created if missing; other keys kept)."""
    from crestguard.guard.categories import ACTIONS

    if action not in ACTIONS:
        raise PolicyError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    doc = read_policy(path)
    doc.setdefault("custom", {})[category.name] = category.to_dict()
    rule = {"action": action}
    if threshold is not None:
        rule["threshold"] = float(threshold)
    doc.setdefault("categories", {})[category.name] = rule
    return write_policy(path, doc)


def remove_category(path: str | Path, name: str) -> Path:
    doc = read_policy(path)
    if name not in (doc.get("custom") or {}):
        raise PolicyError(f"{path} has no custom category {name!r}")
    doc["custom"].pop(name)
    (doc.get("categories") or {}).pop(name, None)
    for key in ("custom", "categories"):
        if key in doc and not doc[key]:
            doc.pop(key)
    return write_policy(path, doc)


def refit(path: str | Path, guard) -> list[str]:
    """Relearn every custom category of the policy file from its stored examples on ``guard``'s model."""
    doc = read_policy(path)
    names = []
    for name, raw in (doc.get("custom") or {}).items():
        ex = raw.get("examples") or {}
        cat = learn(guard, name, ex.get("positives") or [], ex.get("negatives") or [])
        doc["custom"][name] = cat.to_dict()
        names.append(name)
    write_policy(path, doc)
    return names
