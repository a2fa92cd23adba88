"""Train the category head: one sigmoid per taxonomy category on the guard's pooled features.

``crestguard train categories --model crest-me5s`` (one command; rerun it after retraining the binary model):

1. reads ``configs/categories/head.yaml``: category-labelled sources (targets from the taxonomy; items of unknown
   category are left out, a source's ``covers`` masks the categories it does not label), benign negatives, and
   the evaluation-only sets;
2. drops every item reserved by an evaluation suite (``configs/suites/*.manifest.jsonl.gz``), and holds out
   ``eval_fraction`` of each training source's groups for the category report (:func:`category_sets`);
3. computes the pooled features of every text through the guard (:func:`text_features`, cached per model);
4. fits one L2 logistic regression per category on its unmasked items (class-balanced), picks each category's
   threshold by maximal F1 on 3-fold out-of-fold scores of the training split, and writes
   ``<model>/categories/head.npz`` (+ ``train.json``): a few KB, read by :func:`crestguard.load_guard`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crestguard.data.records import Record
from crestguard.errors import CrestGuardError
from crestguard.guard.categories import fit_logistic, oof_scores
from crestguard.paths import REPO_ROOT, cache_dir

CONFIG = REPO_ROOT / "configs" / "categories" / "head.yaml"
SUITES = REPO_ROOT / "configs" / "suites"
#: Training features kept with the head as default negatives for custom categories (crestguard policy add).
BACKGROUND = 400


@dataclass
class CategorySets:
    """Records with category targets: ``train`` / ``eval`` (held-out groups of the training sources), ``reserved``
    (evaluation-only sets), ``negatives`` (benign, split like the rest); what was dropped, counted."""

    train: list[Record] = field(default_factory=list)
    eval: list[Record] = field(default_factory=list)
    reserved: list[Record] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)


def _manifests():
    from crestguard.evaluation.manifest import read

    return [read(p) for p in sorted(SUITES.glob("*.manifest.jsonl.gz"))]


def _frac(*parts: Any) -> float:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16) / 16 ** 12


def _sample(records: list[Record], per_language_groups: int | None, salt: str) -> list[Record]:
    """At most ``per_language_groups`` groups per language, all their records. Groups are ranked by a hash of the
    group alone, so a parallel set keeps the same items in every language (no translation of a held-out item is
    trained on)."""
    if not per_language_groups:
        return records
    keep: set[tuple[str, str]] = set()
    by_lang: dict[str, set[str]] = {}
    for r in records:
        by_lang.setdefault(r.lang, set()).add(r.group)
    for lang, groups in by_lang.items():
        keep.update((lang, g) for g in sorted(groups, key=lambda g: _frac(salt, g))[:per_language_groups])
    return [r for r in records if (r.lang, r.group) in keep]


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    import yaml

    path = Path(path or CONFIG)
    if not path.is_file():
        raise CrestGuardError(f"category config not found: {path}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def category_sets(config: dict[str, Any] | None = None, data_dir: str | None = None,
                  say: Callable[[str], None] = lambda _m: None) -> CategorySets:
    """The category training, held-out and evaluation-only records (see the module docstring)."""
    from crestguard.data import DATASETS, load_dataset
    from crestguard.taxonomy import load_taxonomy

    cfg = config or load_config()
    tax = load_taxonomy()
    salt, frac = str(cfg.get("salt", "categories")), float(cfg.get("eval_fraction", 0.3))
    manifests = _manifests()
    out = CategorySets()
    for kind in ("sources", "negatives", "evaluation"):
        for spec in cfg.get(kind) or []:
            name = spec["dataset"]
            if name not in DATASETS:
                out.missing.append(name)
                continue
            say(f"loading {name}")
            records = _sample(load_dataset(name, data_dir).records, spec.get("per_language_groups"), salt + name)
            if kind == "negatives":
                records = [Record(r.id, r.text, 0, r.lang, r.source, r.group, None) for r in records if r.label == 0]
            for r in records:
                if kind != "negatives" and tax.targets(r) is None:
                    out.dropped[(name, "no category")] += 1
                    continue
                if kind == "evaluation":
                    out.reserved.append(r)
                    continue
                if any(m.is_reserved(r) for m in manifests):
                    out.dropped[(name, "reserved by a suite")] += 1
                    continue
                (out.eval if _frac(salt, name, r.group) < frac else out.train).append(r)
    return out


def negative_targets(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(len(names), dtype=np.float32), np.ones(len(names), dtype=bool)


def targets(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, M)``: ``(n, categories)`` targets and masks (benign negatives: 0 everywhere, unmasked)."""
    from crestguard.taxonomy import load_taxonomy

    tax = load_taxonomy()
    ys, ms = [], []
    for r in records:
        t = tax.targets(r) if r.category is not None or r.source in tax.sources else None
        y, m = t if t is not None else negative_targets(tax.names)
        ys.append(y)
        ms.append(m)
    return np.array(ys), np.array(ms)


# --- features ---------------------------------------------------------------------------------------------------

def _features_file(guard) -> Path:
    return cache_dir() / "categories" / f"features-{guard.model_hash[:16]}-{guard.backend}-{guard.precision}.npz"


def text_features(guard, texts: Sequence[str], batch: int = 256, say: Callable[[str], None] = lambda _m: None
                  ) -> np.ndarray:
    """The pooled features of each text's riskiest span (the span that decides the binary verdict), cached by
    model, backend and text in ``$CRESTGUARD_HOME/categories/``."""
    from crestguard.evaluation.manifest import text_key
    from crestguard.guard.categories import with_features

    path = _features_file(guard)
    cache: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as z:
            cache = dict(zip(z["keys"].tolist(), z["feats"]))
    keys = [text_key(t) for t in texts]
    todo = list(dict.fromkeys(k for k in keys if k not in cache))
    if todo:
        g = guard if getattr(guard.engine, "features", False) else guard._copy(engine=with_features(guard.engine))
        first = {k: t for k, t in zip(reversed(keys), reversed(list(texts)))}
        started = time.time()
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            prepared = g._prepare([first[k] for k in chunk], strict=False)
            ok = [(k, p) for k, p in zip(chunk, prepared) if p is not None]
            margins, feats = g._window_outputs([p for _, p in ok])
            for (k, _), m, f in zip(ok, margins, feats):
                cache[k] = f[int(np.argmax(m))].astype(np.float32)
            say(f"features {min(i + batch, len(todo))}/{len(todo)} ({time.time() - started:.0f} s)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cache)), feats=np.stack(list(cache.values())))
        tmp.replace(path)
    dim = len(next(iter(cache.values())))
    return np.stack([cache.get(k, np.full(dim, np.nan, dtype=np.float32)) for k in keys])


# --- fitting ----------------------------------------------------------------------------------------------------

def fit_head(x: np.ndarray, y: np.ndarray, m: np.ndarray, names: Sequence[str], c: float = 1.0,
             say: Callable[[str], None] = lambda _m: None):
    """One logistic regression per category on its unmasked rows; threshold = max-F1 on out-of-fold scores
    (0.5 for a category without positives: it never fires). Returns the head and per-category training counts."""
    from crestguard.guard.categories import CategoryHead
    from crestguard.guard.thresholds import best_threshold

    dim = x.shape[1]
    weight, bias, thr, counts = np.zeros((dim, len(names))), np.full(len(names), -20.0), np.full(len(names), 0.5), {}
    for j, name in enumerate(names):
        sel = m[:, j]
        yj = y[sel, j].astype(int)
        counts[name] = {"positives": int(yj.sum()), "negatives": int(len(yj) - yj.sum())}
        if yj.sum() < 5 or yj.sum() == len(yj):
            say(f"{name}: {int(yj.sum())} positives, not trained (never fires)")
            continue
        weight[:, j], bias[j] = fit_logistic(x[sel], yj, 1 / c)
        thr[j] = best_threshold(oof_scores(x[sel], yj, 1 / c), yj)
        say(f"{name}: {int(yj.sum())} positives / {len(yj)}; threshold {thr[j]:.3f}")
    return CategoryHead(tuple(names), weight, bias, thr), counts


def train_categories(model: str = "crest-me5s", backend: str = "onnx", config: str | Path | None = None,
                     c: float = 1.0, data_dir: str | None = None,
                     say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Train and install ``<model>/categories/head.npz``; returns the training summary (also ``train.json``)."""
    import crestguard
    from crestguard.guard.categories import head_path
    from crestguard.taxonomy import load_taxonomy

    started = time.time()
    tax = load_taxonomy()
    guard = crestguard.load_guard(model, backend=backend, progress=say)
    sets = category_sets(load_config(config), data_dir, say)
    x = text_features(guard, [r.text for r in sets.train], say=say)
    y, m = targets(sets.train)
    ok = ~np.isnan(x).any(axis=1)
    head, counts = fit_head(x[ok], y[ok], m[ok], tax.names, c, say)
    summary = {
        "model": str(guard.model_dir), "model_hash": guard.model_hash, "features": "pooled",
        "backend": f"{guard.backend}-{guard.precision}", "taxonomy_version": tax.version, "c": c,
        "train_items": int(ok.sum()), "eval_items": len(sets.eval),
        "train_by_source": dict(Counter(r.source for r in sets.train)), "per_category": counts,
        "dropped": {f"{s}: {why}": n for (s, why), n in sorted(sets.dropped.items())},
        "sources_not_registered": sets.missing, "seconds": round(time.time() - started, 1),
        "command": f"crestguard train categories --model {model}",
    }
    rng = np.random.default_rng(int(load_config(config).get("seed", 0)))
    background = x[ok][rng.choice(int(ok.sum()), size=min(BACKGROUND, int(ok.sum())), replace=False)]
    head = type(head)(head.names, head.weight, head.bias, head.thresholds, summary, background)
    path = head.save(head_path(guard.model_dir))
    (path.parent / "train.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    say(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) in {summary['seconds']} s")
    return summary
