"""Binary safety metrics with defined ``null`` results, bootstrap intervals and calibration.

Every metric is about the **unsafe** class (label 1), as in the CREST paper. An item is *flagged* when its
score is ``>= threshold``. A metric that the data cannot define (recall without unsafe items, FPR without
benign items, AUROC with one class, anything on an empty set) is ``None`` and its reason is stored under
``"null"`` in the metric block; it is never silently 0. Items with a NaN score are excluded and counted in
``n_invalid``.

Definitions (``R`` recall = TPR, ``FPR`` false-positive rate on benign items):

- ``f1``: ``2TP / (2TP + FP + FN)``, the paper's unsafe-class F1 at the set's own class mix.
- ``f1_balanced``: the same F1 with benign items re-weighted to the unsafe mass, ``2R / (1 + R + FPR)``:
  comparable across languages whose unsafe/benign ratios differ. With ``FPR = 0`` it is ``2R / (1 + R)``.
- ``auroc``: Mann-Whitney statistic with average ranks for ties; ``auprc``: average precision with tied
  scores grouped into one threshold (as scikit-learn computes it).
- ``ece``: expected calibration error of ``P(unsafe) = score`` over equal-width bins.

Example:
    >>> import numpy as np
    >>> m = binary_metrics(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1]))
    >>> m["f1"], m["fpr"]
    (0.5, 0.5)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

#: Metrics computed from the confusion counts at one threshold.
COUNT_METRICS = ("f1", "precision", "recall", "fpr", "f1_balanced", "accuracy")
#: Metrics computed from the scores.
SCORE_METRICS = ("auroc", "auprc", "ece")
METRICS = COUNT_METRICS + SCORE_METRICS

NO_ITEMS = "no items with a valid score"
NO_UNSAFE = "no unsafe items"
NO_SAFE = "no benign items"
NOTHING_FLAGGED = "nothing flagged"


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def rates(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    """Count metrics from confusion counts (scalars or arrays, vectorized); NaN where undefined."""
    tp, fp, tn, fn = (np.asarray(x, dtype=float) for x in (tp, fp, tn, fn))
    pos, neg = tp + fn, fp + tn
    recall, fpr = _div(tp, pos), _div(fp, neg)
    f1 = np.where(pos > 0, _div(2 * tp, 2 * tp + fp + fn), np.nan)
    return {
        "f1": f1,
        "precision": _div(tp, tp + fp),
        "recall": recall,
        "fpr": fpr,
        "f1_balanced": np.where(neg > 0, _div(2 * recall, 1 + recall + fpr), np.nan),
        "accuracy": _div(tp + tn, pos + neg),
    }


def _count_null_reason(metric: str, n_pos: int, n_neg: int, n_flagged: int) -> str:
    if n_pos + n_neg == 0:
        return NO_ITEMS
    if metric in ("f1", "recall") or (metric == "f1_balanced" and n_pos == 0):
        return NO_UNSAFE
    if metric in ("fpr", "f1_balanced"):
        return NO_SAFE
    if metric == "precision" and n_flagged == 0:
        return NOTHING_FLAGGED
    raise AssertionError(f"no null reason for {metric}")  # pragma: no cover


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); ``None`` unless both classes are present."""
    labels = np.asarray(labels)
    n_pos = int((labels == 1).sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(labels.size, dtype=float)
    # average rank per run of equal scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision (area under the precision-recall curve, step-wise); ``None`` unless both classes."""
    labels = np.asarray(labels)
    n_pos = int((labels == 1).sum())
    if n_pos == 0 or n_pos == labels.size:
        return None
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    s, y = np.asarray(scores)[order], labels[order]
    last_of_run = np.r_[np.diff(s) != 0, True]  # one threshold per distinct score
    tp = np.cumsum(y == 1)[last_of_run]
    flagged = (np.arange(1, y.size + 1))[last_of_run]
    precision, recall = tp / flagged, tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def reliability(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width bins over [0, 1]: count, mean score and observed unsafe fraction per non-empty bin."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    idx = np.clip((scores * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out.append(
                {
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "n": int(sel.sum()),
                    "mean_score": float(scores[sel].mean()),
                    "frac_unsafe": float((labels[sel] == 1).mean()),
                }
            )
    return out


def ece(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error of the unsafe probability; ``None`` on an empty set."""
    n = np.asarray(labels).size
    if n == 0:
        return None
    return float(sum(b["n"] / n * abs(b["frac_unsafe"] - b["mean_score"]) for b in reliability(labels, scores, bins)))


def _valid(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    ok = ~np.isnan(scores)
    return labels[ok], scores[ok], int((~ok).sum())


def binary_metrics(
    labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5, ece_bins: int = 10
) -> dict[str, Any]:
    """All metrics of one set of items as a JSON-ready block.

    Args:
        labels: 0 safe / 1 unsafe per item.
        scores: unsafe score in [0, 1] per item; NaN marks an item the model could not score.
        threshold: an item is flagged when its score is ``>= threshold``.
        ece_bins: number of equal-width bins for the calibration error.

    Returns:
        ``{"n", "n_unsafe", "n_safe", "n_invalid", "tp", "fp", "tn", "fn", <metric>: float | None, ...,
        "null": {metric: reason}}``.
    """
    y, s, n_invalid = _valid(labels, scores)
    flagged = s >= threshold
    tp = int((flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    fn = int((~flagged & (y == 1)).sum())
    tn = int((~flagged & (y == 0)).sum())
    block: dict[str, Any] = {
        "n": int(y.size), "n_unsafe": tp + fn, "n_safe": fp + tn, "n_invalid": n_invalid,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }
    nulls: dict[str, str] = {}
    for name, value in rates(tp, fp, tn, fn).items():
        value = float(value)
        block[name] = None if np.isnan(value) else value
        if block[name] is None:
            nulls[name] = _count_null_reason(name, tp + fn, fp + tn, tp + fp)
    for name, fn_ in (("auroc", auroc), ("auprc", average_precision)):
        block[name] = fn_(y, s)
        if block[name] is None:
            nulls[name] = NO_ITEMS if y.size == 0 else (NO_UNSAFE if tp + fn == 0 else NO_SAFE)
    block["ece"] = ece(y, s, ece_bins)
    if block["ece"] is None:
        nulls["ece"] = NO_ITEMS
    if n_invalid:
        nulls["_invalid"] = f"{n_invalid} item(s) with a NaN score were excluded"
    block["null"] = nulls
    return block


Stat = Callable[[dict[str, np.ndarray]], np.ndarray]


def _resampled_counts(y: np.ndarray, flagged: np.ndarray, n_boot: int, rng: np.random.Generator):
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    yy, ff = y[idx] == 1, flagged[idx]
    return (ff & yy).sum(1), (ff & ~yy).sum(1), (~ff & ~yy).sum(1), (~ff & yy).sum(1)


def bootstrap_ci(
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    metrics: Sequence[str],
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of count metrics, averaged (macro) over ``groups``.

    Each group (a set, or one language) is resampled with replacement on its own; for one group this is the
    ordinary bootstrap of that set, for several it is the interval of the macro average (mean over the groups
    where the metric is defined in that resample).

    Args:
        groups: ``(labels, scores)`` per group; NaN scores are dropped first.
        metrics: names from :data:`COUNT_METRICS`.
        threshold: flagging threshold.
        n_boot: bootstrap resamples.
        seed: RNG seed (results are deterministic).
        level: coverage of the interval.

    Returns:
        ``{metric: [lo, hi]}`` or ``None`` where fewer than half of the resamples define the metric.
    """
    rng = np.random.default_rng(seed)
    per_metric: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for labels, scores in groups:
        y, s, _ = _valid(labels, scores)
        if y.size == 0:
            continue
        r = rates(*_resampled_counts(y, s >= threshold, n_boot, rng))
        for m in metrics:
            per_metric[m].append(r[m])
    out: dict[str, list[float] | None] = {}
    alpha = (1 - level) / 2
    for m, arrays in per_metric.items():
        if not arrays:
            out[m] = None
            continue
        stack = np.vstack(arrays)
        defined = ~np.isnan(stack)
        with np.errstate(invalid="ignore"):
            means = np.where(defined.any(0), np.nansum(stack, 0) / np.maximum(defined.sum(0), 1), np.nan)
        means = means[~np.isnan(means)]
        out[m] = (
            [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]
            if means.size >= n_boot / 2
            else None
        )
    return out


def macro(blocks: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """Unweighted mean of ``metric`` over the blocks where it is defined, with the count used.

    Returns:
        ``{"value": float | None, "n_groups": int, "n_null": int}``; ``value`` is ``None`` when no block
        defines the metric.
    """
    values = [b[metric] for b in blocks if b.get(metric) is not None]
    return {
        "value": float(np.mean(values)) if values else None,
        "n_groups": len(values),
        "n_null": len(blocks) - len(values),
    }


# --- operating points on a benign reference set (the headline: recall at a fixed FPR on real prompts) ----------

def _weights(n: int, weights: Sequence[float] | None) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or (w < 0).any():
        raise ValueError(f"need {n} non-negative weights")
    return w / w.sum() if w.sum() > 0 else w


def threshold_at_fpr(benign: Sequence[float], target: float, weights: Sequence[float] | None = None
                     ) -> tuple[float, float]:
    """The lowest threshold that flags at most ``target`` of the benign scores (weighted), and the share it flags.

    Flagging is ``score >= threshold``. The threshold sits just above the highest benign score left unflagged (the
    next representable float), so every unsafe item above that score counts at the same benign share; tied scores
    are flagged together, so the achieved share can be below ``target``. When even the top score flags more than
    ``target``, the threshold is just above it and flags nothing; when every score fits, it is 0.

    Raises:
        ValueError: no benign scores.

    Example:
        >>> thr, share = threshold_at_fpr([0.1, 0.2, 0.3, 0.4], 0.25)   # flags 0.4 alone
        >>> 0.3 < thr < 0.3 + 1e-15, share
        (True, 0.25)
    """
    s = np.asarray(benign, dtype=float)
    if s.size == 0:
        raise ValueError("no benign scores")
    w = _weights(s.size, weights)
    order = np.argsort(-s, kind="mergesort")
    s, w = s[order], w[order]
    last_of_run = np.r_[s[1:] != s[:-1], True]
    values, flagged = s[last_of_run], np.cumsum(w)[last_of_run]  # share flagged at threshold = value
    ok = np.nonzero(flagged <= target + 1e-12)[0]
    if ok.size == 0:
        return float(np.nextafter(values[0], np.inf)), 0.0
    k = ok[-1]
    return (float(np.nextafter(values[k + 1], np.inf)) if k + 1 < values.size else 0.0), float(flagged[k])


def auroc_vs(unsafe: Sequence[float], benign: Sequence[float], weights: Sequence[float] | None = None
             ) -> float | None:
    """AUROC of unsafe against benign scores with optional benign weights (ties count one half); equals
    :func:`auroc` without weights. ``None`` when either side is empty."""
    u, b = np.sort(np.asarray(unsafe, dtype=float)), np.asarray(benign, dtype=float)
    if u.size == 0 or b.size == 0:
        return None
    w = _weights(b.size, weights)
    above = u.size - np.searchsorted(u, b, side="right")
    ties = np.searchsorted(u, b, side="right") - np.searchsorted(u, b, side="left")
    return float(np.sum(w * (above + 0.5 * ties)) / u.size)


def tradeoff_curve(unsafe: Sequence[float], benign: Sequence[float], weights: Sequence[float] | None = None,
                   grid: int = 200) -> dict[str, list[float]]:
    """Recall on unsafe scores against (weighted) FPR on benign ones, as the best recall reachable at each FPR of
    an even grid ``0, 1/grid, ..., 1`` (a step curve; exact at the grid points)."""
    u, b = np.asarray(unsafe, dtype=float), np.asarray(benign, dtype=float)
    w = _weights(b.size, weights)
    cuts = np.unique(np.r_[u, b, np.inf])  # threshold candidates, ascending
    order = np.argsort(b)
    cum_w = np.r_[0.0, np.cumsum(w[order])]
    fpr = 1.0 - cum_w[np.searchsorted(b[order], cuts, side="left")]  # share of benign weight with score >= cut
    recall = (u.size - np.searchsorted(np.sort(u), cuts, side="left")) / max(u.size, 1)
    xs = np.linspace(0, 1, grid + 1)
    best = [float(recall[fpr <= x + 1e-12].max()) for x in xs]
    return {"fpr": [float(x) for x in xs], "recall": best}
