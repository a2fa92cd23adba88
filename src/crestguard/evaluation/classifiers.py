"""The classifier protocol, the built-in models, model resolution and the prediction cache.

Anything with ``name``, ``fingerprint`` and ``predict_scores(texts) -> np.ndarray`` (unsafe scores in [0, 1],
NaN for an item it cannot score) can be evaluated. Optional attributes the harness reads:

- ``threshold`` (default 0.5): an item is flagged when its score is ``>= threshold``;
- ``train_languages``: the languages of the model's *unsafe* training supervision, the in-domain (ID) languages
  (CREST's premise: benign text in any language is cheap, labelled unsafe text is not);
- ``train_sources``: the datasets it was trained on, to split benign sources into seen / unseen.

``None`` means unknown, and those breakdowns are ``null``.

``fingerprint`` must change whenever the scores could change: predictions are cached under
``<cache>/predictions/<fingerprint>/<dataset>.npz`` keyed by the SHA-1 of each text. An empty fingerprint
disables the cache.

Model specs understood by :func:`resolve_model`:

- ``flag-all``: the "flag everything" baseline (every score 1.0);
- a baseline name under ``reports/baselines/`` (``lr-en``, ``lr-all``) or a path to a baseline ``model.json``;
- ``guard:NAME`` (or a plain ``NAME``): ``crestguard.load_guard(NAME)``, scored through ``check_batch``;
- ``py:MODULE:FACTORY``: ``MODULE.FACTORY()`` must return a classifier (how external models plug in).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from crestguard.evaluation.errors import EvaluationError
from crestguard.paths import REPO_ROOT, cache_dir

BASELINES_DIR = REPO_ROOT / "reports" / "baselines"


@runtime_checkable
class Classifier(Protocol):
    """What the harness needs from a model."""

    name: str
    fingerprint: str

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Unsafe scores in [0, 1] (NaN where the item cannot be scored), one per text, in order."""
        ...


def describe(clf: Classifier) -> dict[str, Any]:
    """The model block of ``results.json``."""
    return {
        "name": clf.name,
        "fingerprint": clf.fingerprint,
        "threshold": float(getattr(clf, "threshold", 0.5)),
        "train_languages": getattr(clf, "train_languages", None),
        "train_sources": getattr(clf, "train_sources", None),
        "meta": getattr(clf, "meta", {}),
    }


class FlagAll:
    """Baseline (a): flags every text. It shows what F1 means on sets that hold only unsafe items."""

    name = "flag-all"
    fingerprint = "flag-all-v1"
    threshold = 0.5
    train_languages = None
    train_sources = None
    meta = {"description": "scores every text 1.0 (unsafe)"}

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones(len(texts))


class GuardClassifier:
    """Adapter for the guard API: ``crestguard.load_guard(name).check_batch(texts)`` -> verdicts with ``.score``."""

    def __init__(self, name: str):
        import crestguard

        load_guard = getattr(crestguard, "load_guard", None)
        if load_guard is None:
            raise EvaluationError(
                f"Cannot evaluate guard {name!r}: this installation has no crestguard.load_guard yet. "
                f"Use flag-all or a baseline under {BASELINES_DIR}."
            )
        self.guard = load_guard(name, backend="torch")  # the reports are torch fp32 (ONNX: onnx_parity.py)
        self.name = f"guard:{name}"
        self.fingerprint = str(getattr(self.guard, "fingerprint", "") or "")
        self.threshold = float(getattr(self.guard, "threshold", 0.5))
        meta = getattr(self.guard, "meta", None) or {}
        self.train_languages = meta.get("unsafe_languages", getattr(self.guard, "train_languages", None))
        self.train_sources = getattr(self.guard, "train_sources", None)
        self.meta = self.guard.describe() if hasattr(self.guard, "describe") else {"guard": name}

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([v.score for v in self.guard.check_batch(list(texts))], dtype=float)


def resolve_model(spec: str) -> Classifier:
    """Turn a model spec (see the module docstring) into a classifier.

    Raises:
        EvaluationError: the spec names nothing known; the message lists what would work.
    """
    from crestguard.evaluation.baselines import LogRegBaseline

    if spec == FlagAll.name:
        return FlagAll()
    path = Path(spec)
    for cand in (path, path / "model.json", BASELINES_DIR / spec / "model.json"):
        if cand.is_file() and cand.suffix == ".json":
            return LogRegBaseline.load(cand)
    if spec.startswith("py:"):
        return _from_factory(spec)
    name = spec.removeprefix("guard:")
    if spec.startswith("guard:") or _has_guard_api():
        return GuardClassifier(name)
    known = [FlagAll.name] + sorted(p.parent.name for p in BASELINES_DIR.glob("*/model.json"))
    raise EvaluationError(f"Unknown model {spec!r}. Known: {', '.join(known)}; or guard:NAME once the guard API exists.")


def _from_factory(spec: str) -> Classifier:
    import importlib

    module, _, attr = spec.removeprefix("py:").partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise EvaluationError(f"model {spec!r}: cannot import {module}:{attr} ({exc})") from exc
    clf = factory()
    if not isinstance(clf, Classifier):
        raise EvaluationError(f"model {spec!r}: {attr}() returned {type(clf).__name__}, which lacks name, "
                              "fingerprint or predict_scores")
    return clf


def _has_guard_api() -> bool:
    import crestguard

    return hasattr(crestguard, "load_guard")


def _text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.array([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts])


def check_scores(scores: Any, n: int, model: str) -> np.ndarray:
    """Validate a classifier's output: ``n`` floats in [0, 1] or NaN.

    Raises:
        EvaluationError: wrong length or a score outside [0, 1] (the protocol is broken, not the data).
    """
    arr = np.asarray(scores, dtype=float).reshape(-1)
    if arr.size != n:
        raise EvaluationError(f"model {model!r} returned {arr.size} scores for {n} texts")
    finite = arr[~np.isnan(arr)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise EvaluationError(
            f"model {model!r} returned scores outside [0, 1] (min {finite.min():.3g}, max {finite.max():.3g})"
        )
    return arr


def score_texts(
    clf: Classifier,
    texts: Sequence[str],
    dataset: str,
    chunk: int = 256,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Scores of ``texts`` from the prediction cache, computing (and caching) only what is missing.

    Args:
        clf: the classifier.
        texts: texts to score (duplicates are scored once).
        dataset: the cache file name within the model's folder.
        chunk: texts per ``predict_scores`` call (the progress granularity).
        advance: called with the number of texts done after each chunk (cached ones at once).

    Returns:
        ``(scores, n_computed)``: one score per text, and how many unique texts the model had to score.
    """
    keys = _text_keys(texts)
    cache_file = cache_dir() / "predictions" / clf.fingerprint / f"{dataset}.npz" if clf.fingerprint else None
    known: dict[str, float] = {}
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file) as z:
            known = dict(zip(z["keys"].tolist(), z["scores"].tolist()))
    counts = Counter(keys.tolist())
    todo = [k for k in counts if k not in known]
    text_of = dict(zip(keys.tolist(), texts))
    if advance:
        advance(len(texts) - sum(counts[k] for k in todo))
    for i in range(0, len(todo), chunk):
        part = todo[i : i + chunk]
        out = check_scores(clf.predict_scores([text_of[k] for k in part]), len(part), clf.name)
        known.update(zip(part, out.tolist()))
        if cache_file is not None:  # after every chunk, so an interrupted run resumes where it stopped
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(list(known)), scores=np.array(list(known.values()), dtype=float))
            tmp.replace(cache_file)
        if advance:
            advance(sum(counts[k] for k in part))
    return np.array([known[k] for k in keys], dtype=float), len(todo)
