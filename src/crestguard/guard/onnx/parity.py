"""Backend parity: do two guards (torch fp32 and ONNX int8, say) give the same labels on the evaluation texts?

Used by ``tests/test_guard_default.py`` and ``benchmarks/onnx_parity.py``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def suite_sample(per_set: int, suite: str = "default", seed: int = 0) -> list[tuple[str, str]]:
    """Up to ``per_set`` distinct texts from every set of an evaluation suite, as ``(set name, text)``.

    The sample is deterministic (``seed``) and spread over all sets, so that English benchmarks, the multilingual
    sets and the long passages of OpenAI moderation are all represented.
    """
    from crestguard.evaluation.suite import load_suite, materialize

    rng = np.random.default_rng(seed)
    out: list[tuple[str, str]] = []
    for evs in materialize(load_suite(suite)):
        texts = sorted({r.text for r in evs.records})
        take = rng.choice(len(texts), size=min(per_set, len(texts)), replace=False)
        out += [(evs.name, texts[i]) for i in sorted(take)]
    return out


def compare(reference, candidate, texts: Sequence[str], chunk: int = 64) -> dict:
    """Scores of both guards on ``texts``; label agreement (each at its own threshold) and ``|Δscore|``.

    Returns:
        ``{"items", "label_agreement", "disagreements", "abs_delta": {"mean", "p50", "p99", "max"},
        "reference", "candidate"}`` plus the per-item ``scores`` arrays (not JSON) under ``"_scores"``.
    """
    a = np.concatenate([reference.predict_scores(texts[i : i + chunk]) for i in range(0, len(texts), chunk)])
    b = np.concatenate([candidate.predict_scores(texts[i : i + chunk]) for i in range(0, len(texts), chunk)])
    same = (a >= reference.threshold) == (b >= candidate.threshold)
    delta = np.abs(a - b)
    return {
        "items": len(texts),
        "label_agreement": round(float(same.mean()), 5),
        "disagreements": int((~same).sum()),
        "abs_delta": {"mean": round(float(delta.mean()), 5), "p50": round(float(np.median(delta)), 5),
                      "p99": round(float(np.quantile(delta, 0.99)), 5), "max": round(float(delta.max()), 5)},
        "reference": {"name": reference.name, "fingerprint": reference.fingerprint},
        "candidate": {"name": candidate.name, "fingerprint": candidate.fingerprint},
        "_scores": (a, b),
    }
