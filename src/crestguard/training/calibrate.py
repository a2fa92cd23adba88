"""Decision-threshold calibration on sources the model did not train on.

The first measurement (issue 7) found that a threshold tuned on a validation split of the training mix does not
transfer to the evaluation sets. The mix file therefore names separate calibration sources, and the threshold is
chosen on them by one of:

- ``max_f1``: the threshold that maximizes unsafe-class F1 on the calibration records (needs both labels);
- ``target_fpr`` (with ``target_fpr: 0.03``): the lowest threshold whose false-positive rate on the calibration
  benign records is at most the target (ties broken towards recall);
- ``none``: 0.5.

With ``per_source: true`` every calibration source must meet the target (the strictest one decides). With
``validation: [source names]`` the calibration records also include the validation split's records of
those training sources (held-out groups, never trained on: real requests of the forms the model must pass).

The chosen threshold is written into the model's ``crest_config.json`` as ``"threshold"``. With ``per_cluster:
true`` (``target_fpr`` only), clusters whose benign calibration items are flagged more often than the target get a
higher threshold of their own, written as the model's shipped threshold policy (``thresholds.yaml``, read by the
guard; :mod:`crestguard.guard.thresholds`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from crestguard.data.records import Record
from crestguard.errors import CrestGuardError


class CalibrationError(CrestGuardError):
    """The calibration set cannot support the requested method (no benign items, a single class, ...)."""


def choose_threshold(labels: np.ndarray, scores: np.ndarray, method: dict[str, Any]) -> dict[str, Any]:
    """Pick a threshold on (labels, scores) per ``method`` (see the module docstring); return it with its metrics.

    Raises:
        CalibrationError: unknown method, or labels that the method cannot use.
    """
    kind = method.get("method", "none")
    if kind == "none":
        return {"threshold": 0.5, "method": "none"}
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    neg, pos = scores[labels == 0], scores[labels == 1]
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    if kind == "max_f1":
        if not len(neg) or not len(pos):
            raise CalibrationError("max_f1 calibration needs both safe and unsafe calibration items")
        tp = np.array([(pos >= t).sum() for t in candidates], float)
        fp = np.array([(neg >= t).sum() for t in candidates], float)
        f1 = 2 * tp / np.maximum(1, 2 * tp + fp + (len(pos) - tp))
        best = int(np.argmax(f1))
        thr = float(candidates[best])
    elif kind == "target_fpr":
        target = float(method.get("target_fpr", 0.05))
        if not len(neg):
            raise CalibrationError("target_fpr calibration needs safe calibration items")
        fpr = np.array([(neg >= t).mean() for t in candidates])
        ok = np.flatnonzero(fpr <= target)
        thr = float(candidates[ok[0]]) if len(ok) else float(np.nextafter(neg.max(), 2))
    else:
        raise CalibrationError(f"unknown calibration method {kind!r}: use max_f1, target_fpr or none")
    lo, hi = method.get("clip", [0.0, 1.0])
    thr = float(min(max(thr, lo), hi))
    res = {"threshold": thr, "method": kind, "n_safe": int(len(neg)), "n_unsafe": int(len(pos)),
           "fpr": round(float((neg >= thr).mean()) * 100, 3) if len(neg) else None,
           "recall": round(float((pos >= thr).mean()) * 100, 3) if len(pos) else None,
           "fpr_at_0.5": round(float((neg >= 0.5).mean()) * 100, 3) if len(neg) else None,
           "recall_at_0.5": round(float((pos >= 0.5).mean()) * 100, 3) if len(pos) else None}
    if kind == "target_fpr":
        res["target_fpr"] = target
    return res


def cluster_thresholds(records: Sequence[Record], labels: np.ndarray, scores: np.ndarray, global_thr: float,
                       method: dict[str, Any]) -> dict[int, float]:
    """Per CREST cluster, the lowest threshold whose FPR on that cluster's benign calibration items meets the
    target, where it is above the global one (a threshold is raised where the model over-flags a cluster, never
    lowered without unsafe evidence); clusters with fewer than ``min_per_cluster`` benign items keep the global.
    """
    from crestguard.languages import get

    if method.get("method") != "target_fpr":
        raise CalibrationError("per_cluster calibration needs method: target_fpr")
    target, lo_hi = float(method.get("target_fpr", 0.05)), method.get("clip", [0.0, 1.0])
    need = int(method.get("min_per_cluster", 40))
    clusters = np.array([get(r.lang).cluster or 0 for r in records])
    out: dict[int, float] = {}
    for c in sorted(set(clusters.tolist()) - {0}):
        sel = (clusters == c) & (labels == 0)
        if sel.sum() < need:
            continue
        thr = choose_threshold(np.zeros(int(sel.sum()), dtype=int), scores[sel],
                               {"method": "target_fpr", "target_fpr": target, "clip": lo_hi})["threshold"]
        if thr > global_thr:
            out[int(c)] = round(float(thr), 6)
    return out


def calibrate(scorer, records: Sequence[Record], method: dict[str, Any]) -> dict[str, Any]:
    """Score the calibration records with ``scorer`` (a :class:`~crestguard.training.evaluate.Scorer`: the same path
    as evaluation, texts over 512 tokens scored on their first 512) and choose the threshold (0.5 if none)."""
    if not records or method.get("method", "none") == "none":
        return {"threshold": 0.5, "method": "none"}
    truncated = scorer.truncated
    scores = scorer.predict_scores([r.text for r in records])
    labels = np.array([r.label for r in records])
    res = choose_threshold(labels, scores, method)
    res["sources"] = sorted({r.source for r in records})
    if method.get("per_source") and method.get("method") == "target_fpr":
        # every calibration source (the validation records count as one) is flagged at most target_fpr: the
        # strictest source decides, so easy sources (many short questions) cannot hide hard ones (requests)
        val = set(method.get("validation") or ())
        group = np.array(["validation" if r.source in val else r.source for r in records])
        by = {g: choose_threshold(np.zeros(int(((group == g) & (labels == 0)).sum()), dtype=int),
                                  scores[(group == g) & (labels == 0)], method)["threshold"]
              for g in sorted(set(group.tolist())) if ((group == g) & (labels == 0)).sum() >= 20}
        if by:
            thr = max([res["threshold"], *by.values()])
            res = choose_threshold(labels, scores, {**method, "clip": [thr, thr]}) | {"by_source": by,
                                                                                     "sources": res["sources"]}
    if method.get("per_cluster"):
        res["clusters"] = cluster_thresholds(records, labels, scores, res["threshold"], method)
    res["truncated_to_512"] = scorer.truncated - truncated
    return res
