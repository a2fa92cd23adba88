"""Score calibration (temperature scaling) and decision thresholds: global, per language, per cluster.

Scores are ``sigmoid(margin / T)`` where ``margin = logit_unsafe - logit_safe`` of the riskiest window and ``T`` is a
temperature fit on labelled data (:func:`fit_temperature`, minimum negative log-likelihood). ``T = 1`` is the
model's own softmax. Changing ``T`` never changes a decision made with the same *margin* threshold: thresholds given
for one temperature are moved to another with :func:`rescale`.

A policy file (YAML or JSON) looks like::

    temperature: 1.7          # optional; default: the model's ("temperature" in crest_config.json, else 1)
    threshold: 0.42           # optional global default; default: the model's "threshold", else 0.5
    languages: {de: 0.55, hi_rom: 0.35}   # any code the language table knows
    clusters: {3: 0.5}                    # CREST clusters 1-8
    min_language_confidence: 0.5          # below this, language/cluster overrides are not used
    categories:                           # per harm category (crestguard.guard.categories): threshold and action
      sexual_content: {action: ignore}    #   ignore: allowed (a text flagged only for it passes)
      suicide_self_harm: {threshold: 0.3, action: flag}   # flag: blocks on its own; report (default): explains
    custom: {...}                         # categories learned from examples (written by `crestguard policy add`)

Thresholds in the file are on the file's temperature scale. Precedence: language, then cluster, then global.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crestguard.errors import CrestGuardError

_KEYS = {"temperature", "threshold", "languages", "clusters", "min_language_confidence", "calibration", "categories",
         "custom"}


class ThresholdError(CrestGuardError):
    """A threshold policy file or a calibration set is malformed."""


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def logit(p: float) -> float:
    p = min(max(float(p), 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def rescale(threshold: float, t_from: float, t_to: float) -> float:
    """The threshold on the ``t_to`` scale that makes the same decisions as ``threshold`` on the ``t_from`` scale."""
    return float(sigmoid(logit(threshold) * t_from / t_to))


@dataclass(frozen=True)
class ThresholdPolicy:
    """Temperature and thresholds. See the module docstring for the file format and precedence."""

    temperature: float = 1.0
    threshold: float = 0.5
    languages: dict[str, float] = field(default_factory=dict)
    clusters: dict[int, float] = field(default_factory=dict)
    min_language_confidence: float = 0.5
    calibration: dict[str, Any] = field(default_factory=dict)
    categories: dict[str, Any] = field(default_factory=dict)  # name -> {threshold, action} (guard.categories)
    custom: dict[str, Any] = field(default_factory=dict)  # name -> a learned category (guard.categories)

    def for_language(self, language: str | None, cluster: int | None, confidence: float | None) -> float:
        """The threshold for a text identified as ``language`` (in ``cluster``) with ``confidence``."""
        if language is None or (confidence or 0.0) < self.min_language_confidence:
            return self.threshold
        if language in self.languages:
            return self.languages[language]
        if cluster is not None and cluster in self.clusters:
            return self.clusters[cluster]
        return self.threshold

    def with_temperature(self, temperature: float) -> ThresholdPolicy:
        """The same decisions expressed on another temperature scale."""
        t0 = self.temperature

        def move(t: float) -> float:
            return round(rescale(t, t0, temperature), 6)

        return replace(self, temperature=temperature, threshold=move(self.threshold),
                       languages={k: move(v) for k, v in self.languages.items()},
                       clusters={k: move(v) for k, v in self.clusters.items()})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("calibration", "categories", "custom"):
            if not d[key]:
                d.pop(key)
        return d

    def save(self, path: str | Path) -> Path:
        """Write the policy as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path


def _prob(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ThresholdError(f"{where}: a threshold must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def policy_from_dict(raw: Any, base: ThresholdPolicy, where: str = "threshold policy") -> ThresholdPolicy:
    """Apply the overrides in ``raw`` (the file format) on top of ``base`` (the model's defaults).

    Raises:
        ThresholdError: unknown keys, thresholds outside (0, 1), unknown language codes, clusters outside 1-8.
    """
    from crestguard.languages import resolve

    if not isinstance(raw, dict):
        raise ThresholdError(f"{where}: must be a mapping with keys {sorted(_KEYS)}")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ThresholdError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    policy = base
    if "temperature" in raw:
        t = raw["temperature"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.05 <= float(t) <= 20:
            raise ThresholdError(f"{where}: temperature must be a number in [0.05, 20], got {t!r}")
        policy = policy.with_temperature(float(t))
    languages, clusters = dict(policy.languages), dict(policy.clusters)
    for code, value in (raw.get("languages") or {}).items():
        try:
            languages[resolve(str(code))] = _prob(value, f"{where}, languages.{code}")
        except CrestGuardError as exc:
            raise ThresholdError(f"{where}, languages: {exc}") from None
    for key, value in (raw.get("clusters") or {}).items():
        if str(key) not in {str(i) for i in range(1, 9)}:
            raise ThresholdError(f"{where}: clusters are numbered 1-8, got {key!r}")
        clusters[int(key)] = _prob(value, f"{where}, clusters.{key}")
    mlc = raw.get("min_language_confidence", policy.min_language_confidence)
    if isinstance(mlc, bool) or not isinstance(mlc, (int, float)) or not 0 <= mlc <= 1:
        raise ThresholdError(f"{where}: min_language_confidence must be in [0, 1], got {mlc!r}")
    threshold = _prob(raw["threshold"], f"{where}, threshold") if "threshold" in raw else policy.threshold
    from crestguard.guard.categories import CategoryError, parse_custom, parse_rules

    try:  # validated here, applied by the guard (which knows the model's categories)
        parse_rules(raw.get("categories"), where)
        parse_custom(raw.get("custom"), where)
    except CategoryError as exc:
        raise ThresholdError(str(exc)) from None
    return replace(policy, threshold=threshold, languages=languages, clusters=clusters,
                   min_language_confidence=float(mlc), calibration=dict(raw.get("calibration") or policy.calibration),
                   categories={**policy.categories, **(raw.get("categories") or {})},
                   custom={**policy.custom, **(raw.get("custom") or {})})


def load_policy(path: str | Path, base: ThresholdPolicy) -> ThresholdPolicy:
    """Read a YAML/JSON policy file over ``base``.

    Raises:
        ThresholdError: the file is missing, unparsable or malformed (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ThresholdError(f"Threshold file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
        raise ThresholdError(f"{path}: cannot parse ({exc})") from exc
    return policy_from_dict(raw, base, where=str(path))


def fit_temperature(margins: Sequence[float], labels: Sequence[int]) -> float:
    """The temperature ``T`` minimizing the negative log-likelihood of ``sigmoid(margin / T)`` on ``labels``.

    A 1-D search on ``log T`` in [0.05, 20] (grid, then golden-section refinement); no scipy needed.

    Raises:
        ThresholdError: fewer than 2 items, or only one class.
    """
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if m.size < 2 or y.min() == y.max():
        raise ThresholdError("fit_temperature needs labelled items of both classes")

    def nll(log_t: float) -> float:
        z = m / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    grid = np.linspace(math.log(0.05), math.log(20.0), 61)
    best = int(np.argmin([nll(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        lo, hi = (lo, b) if nll(a) < nll(b) else (a, hi)
    return round(math.exp((lo + hi) / 2), 4)


def best_threshold(scores: np.ndarray, labels: np.ndarray, max_fpr: float | None = None) -> float:
    """The threshold maximizing F1 of the unsafe class, or (``max_fpr`` given) the lowest one with FPR <= max_fpr.

    Candidates are midpoints between consecutive distinct scores (O(n log n)), so the result never sits on an
    item's score.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])  # last index of each distinct score
    tp = np.r_[0, np.cumsum(y_sorted == 1)[last]]
    fp = np.r_[0, np.cumsum(y_sorted == 0)[last]]
    values = s_sorted[last]
    cands = np.clip(np.r_[(values[0] + 1) / 2, (values + np.r_[values[1:], 0.0]) / 2], 1e-6, 1 - 1e-6)
    if max_fpr is not None:
        ok = np.flatnonzero(fp / max(int((y == 0).sum()), 1) <= max_fpr)
        return float(cands[ok[-1]])
    f1 = 2 * tp / np.maximum(tp + fp + int((y == 1).sum()), 1)
    return float(cands[int(np.argmax(f1))])


def calibrate_thresholds(
    margins: Sequence[float],
    labels: Sequence[int],
    languages: Sequence[str | None] | None = None,
    clusters: Sequence[int | None] | None = None,
    *,
    base: ThresholdPolicy | None = None,
    fit_t: bool = True,
    max_fpr: float | None = None,
    min_per_class: int = 20,
) -> ThresholdPolicy:
    """Fit a temperature and thresholds on a labelled set.

    Args:
        margins: the riskiest window's logit margin per text (:meth:`crestguard.guard.Guard.margins`).
        labels: 0 safe / 1 unsafe.
        languages: detected (or known) language per text; enables per-language thresholds.
        clusters: cluster per text; enables per-cluster thresholds.
        base: the policy to start from (its temperature is kept when ``fit_t`` is false).
        fit_t: fit the temperature (needs both classes).
        max_fpr: choose thresholds for a false-positive-rate ceiling instead of maximal F1.
        min_per_class: a language or cluster gets its own threshold only with this many items of each class; with
            ``max_fpr`` given, groups with only benign items (at least ``min_per_class``) get
            ``max(global, the threshold meeting max_fpr)``: the threshold is raised where the model over-flags, never
            lowered without unsafe evidence.

    Returns:
        The policy, with a ``calibration`` block saying what it was fit on.
    """
    base = base or ThresholdPolicy()
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if m.shape != y.shape or m.size == 0:
        raise ThresholdError(f"calibrate_thresholds: {m.size} margins for {y.size} labels")
    if not set(np.unique(y)) <= {0, 1}:
        raise ThresholdError("calibrate_thresholds: labels must be 0 (safe) or 1 (unsafe)")
    temperature = fit_temperature(m, y) if fit_t else base.temperature
    s = sigmoid(m / temperature)
    if y.min() == y.max():
        raise ThresholdError("calibrate_thresholds: the global threshold needs items of both classes")
    global_thr = round(best_threshold(s, y, max_fpr), 6)

    def per_group(keys: Sequence | None) -> dict:
        out: dict = {}
        if keys is None:
            return out
        arr = np.array([k if k is not None else "" for k in keys], dtype=object)
        for key in sorted({k for k in arr.tolist() if k != ""}, key=str):
            sel = arr == key
            pos, neg = int((y[sel] == 1).sum()), int((y[sel] == 0).sum())
            if pos >= min_per_class and neg >= min_per_class:
                out[key] = round(best_threshold(s[sel], y[sel], max_fpr), 6)
            elif max_fpr is not None and pos == 0 and neg >= min_per_class:
                out[key] = round(max(global_thr, best_threshold(s[sel], y[sel], max_fpr)), 6)
        return out

    return replace(
        base,
        temperature=temperature,
        threshold=global_thr,
        languages=per_group(languages),
        clusters=per_group(clusters),
        calibration={"items": int(y.size), "unsafe": int(y.sum()), "criterion": "f1" if max_fpr is None else
                     f"fpr<={max_fpr}", "fit_temperature": fit_t, "min_per_class": min_per_class},
    )
