"""Harm categories at inference: pooled features from either backend, the category head, per-category rules and
custom categories. The binary verdict stays the decision; categories explain it, and rules may change it.

- **Features.** The category head reads the guard's own pooled features (the pooler's ``tanh`` output on the
  first token, the input of the binary classifier), so categories cost one small matrix product per span and no
  second encoder pass. :func:`with_features` wraps an engine so that ``logits()`` returns ``(batch, 2 + hidden)``:
  the two logits, then the pooled features. Torch: a forward hook on the pooler. ONNX: a copy of the exported graph
  with a second output ``pooled`` (the pooler's ``Tanh``), written once beside the cached export
  (:func:`pooled_graph`).
- **Head** (:class:`CategoryHead`): one sigmoid per taxonomy category, ``sigmoid(x @ W + b)`` in numpy, stored
  with the model as ``categories/head.npz`` (a subfolder, so the ONNX export's cache key is unchanged) and trained
  by ``crestguard train categories`` (:mod:`crestguard.training.categories`).
- **Custom categories** (:class:`CustomCategory`): a logistic head (or a prototype) learned from a few examples by
  ``crestguard policy add`` (:mod:`crestguard.guard.policy`) and kept in the policy file.
- **Rules** (:class:`CategoryRule`): per category a threshold and an action. ``report`` (default): the category
  explains a verdict, never changes it. ``flag``: the category alone makes the text unsafe. ``ignore``: a text
  whose flagged categories are all ignored passes even when the binary score is over its threshold (an adult
  platform that allows sexual content), and the category is not reported as flagged.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from crestguard.errors import CrestGuardError

HEAD_DIR = "categories"
HEAD_NAME = "head.npz"
ACTIONS = ("report", "flag", "ignore")
DEFAULT_THRESHOLD = 0.5
POOLED = "pooled"


class CategoryError(CrestGuardError):
    """A category head, rule or custom category is malformed or does not fit the model."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


# --- features ---------------------------------------------------------------------------------------------------

class _TorchFeatures:
    """A torch engine whose ``logits()`` also returns the pooler's output."""

    def __init__(self, engine):
        self.inner, self.name, self.precision = engine, engine.name, engine.precision
        model = engine.model
        base = getattr(model, model.base_model_prefix, None)
        self._pooler = getattr(base, "pooler", None)
        if self._pooler is None:
            raise CategoryError(f"{type(model).__name__} has no pooler: categories need a BERT-style classifier")
        self._seen: list = []
        self._pooler.register_forward_hook(lambda _m, _i, out: self._seen.append(out))

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self._seen.clear()
        logits = self.inner.logits(input_ids, attention_mask)
        pooled = self._seen[-1].float().numpy()
        return np.concatenate([logits, pooled], axis=1)


def pooled_graph(path: str | Path) -> Path:
    """The ONNX graph at ``path`` with a second output ``pooled`` (the last ``Tanh``: BERT's pooler), written once
    as ``<stem>.pooled.onnx`` beside it (returned as is when the graph already has that output).

    Raises:
        CategoryError: the graph has no ``Tanh`` node.
    """
    path = Path(path)
    out = path.with_name(path.name.replace(".onnx", f".{POOLED}.onnx"))
    if out.is_file():  # before loading anything: this runs at every start of a guard with categories
        return out
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if any(o.name == POOLED for o in model.graph.output):
        return path
    tanh = [n for n in model.graph.node if n.op_type == "Tanh"]
    if not tanh:
        raise CategoryError(f"{path}: no Tanh node (the pooler) to read the pooled features from")
    model.graph.node.append(onnx.helper.make_node("Identity", [tanh[-1].output[0]], [POOLED], name="pooled_out"))
    model.graph.output.append(onnx.helper.make_tensor_value_info(POOLED, onnx.TensorProto.FLOAT, None))
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return out


def with_features(engine) -> Any:
    """``engine`` made to return ``(batch, 2 + hidden)``: the logits, then the pooled features."""
    if getattr(engine, "features", False):
        return engine
    if engine.name == "torch":
        wrapped = _TorchFeatures(engine)
    else:
        from crestguard.guard.backends import OnnxBackend

        class _OnnxFeatures(OnnxBackend):
            @staticmethod
            def _run(session, input_ids, attention_mask):
                width = max(int(attention_mask.sum(axis=1).max()) if attention_mask.size else input_ids.shape[1], 1)
                feed = {"input_ids": np.ascontiguousarray(input_ids[:, :width], dtype=np.int64),
                        "attention_mask": np.ascontiguousarray(attention_mask[:, :width], dtype=np.int64)}
                logits, pooled = session.run(["logits", POOLED], feed)
                return np.concatenate([logits, pooled], axis=1)

        wrapped = _OnnxFeatures(pooled_graph(engine.path), engine.precision, engine.threads, engine.spin,
                                engine.row_session is not None)
    wrapped.features = True
    return wrapped


# --- heads ------------------------------------------------------------------------------------------------------

def oof_scores(x: np.ndarray, y: np.ndarray, l2: float = 1.0, folds: int = 3, seed: int = 0,
               weights: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold probabilities of :func:`fit_logistic` (folds stratified by class), for choosing thresholds."""
    y = np.asarray(y)
    out = np.full(len(y), 0.5)
    k = min(folds, int(y.sum()), int(len(y) - y.sum()))
    if k < 2:
        return out
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    for f in range(k):
        tr, te = fold != f, fold == f
        w, b = fit_logistic(x[tr], y[tr], l2, None if weights is None else weights[tr])
        out[te] = _sigmoid(np.asarray(x[te], dtype=np.float64) @ w + b)
    return out

def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, weights: np.ndarray | None = None,
                 balanced: bool = True, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression by Newton's method in numpy (no scikit-learn needed at deployment);
    ``balanced`` weighs both classes equally, as scikit-learn's ``class_weight="balanced"``. Returns ``(w, b)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sw = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if balanced:
        pos = max(float((sw * y).sum()), 1e-9)
        neg = max(float((sw * (1 - y)).sum()), 1e-9)
        sw = sw * np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg))
    xb = np.hstack([x, np.ones((len(x), 1))])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    theta = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = _sigmoid(xb @ theta)
        grad = xb.T @ (sw * (p - y)) + reg * theta
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return theta[:-1], float(theta[-1])


@dataclass(frozen=True)
class CategoryHead:
    """Linear sigmoid heads over pooled features: ``scores = sigmoid(features @ weight + bias)``.

    Attributes:
        names: the category of each column.
        weight: ``(hidden, len(names))``.
        bias: ``(len(names),)``.
        thresholds: the default threshold per category (fit at training time).
        meta: what it was trained on (model hash, feature kind, data, metrics).
    """

    names: tuple[str, ...]
    weight: np.ndarray
    bias: np.ndarray
    thresholds: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    background: np.ndarray | None = None  # pooled features of sampled training texts: custom categories' negatives

    def scores(self, features: np.ndarray) -> np.ndarray:
        return _sigmoid(np.asarray(features, dtype=np.float64) @ self.weight + self.bias)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, names=np.array(self.names), weight=self.weight.astype(np.float32),
                                bias=self.bias.astype(np.float32), thresholds=self.thresholds.astype(np.float32),
                                meta=np.array(json.dumps(self.meta, sort_keys=True)),
                                background=np.zeros((0, len(self.bias))) if self.background is None
                                else self.background.astype(np.float16))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CategoryHead:
        try:
            with np.load(path, allow_pickle=False) as z:
                bg = z["background"].astype(np.float64) if "background" in z.files else None
                return cls(tuple(str(n) for n in z["names"]), z["weight"].astype(np.float64),
                           z["bias"].astype(np.float64), z["thresholds"].astype(np.float64),
                           json.loads(str(z["meta"])), bg if bg is not None and len(bg) else None)
        except (OSError, KeyError, ValueError) as exc:
            raise CategoryError(f"cannot read the category head {path}: {exc}") from exc


def head_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / HEAD_DIR / HEAD_NAME


def head_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(np.asarray(a, dtype="<f4").tobytes()).decode("ascii")


def _unpack(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float64)


@dataclass(frozen=True)
class CustomCategory:
    """A category learned from examples (``crestguard policy add``), stored in the policy file.

    ``kind`` ``"logistic"``: ``sigmoid(x @ w + b)``; ``"prototype"`` (no negatives given): the cosine similarity to
    the mean of the positives, mapped to ``sigmoid((cos - b) * w[0])``.
    """

    name: str
    kind: str
    w: np.ndarray
    b: float
    threshold: float = DEFAULT_THRESHOLD
    model: str = ""
    examples: Mapping[str, Sequence[str]] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)

    def scores(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if self.kind == "prototype":
            proto = self.w[1:]
            cos = (x @ proto) / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(proto), 1e-12)
            return _sigmoid((cos - self.b) * self.w[0])
        return _sigmoid(x @ self.w + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "threshold": round(float(self.threshold), 6), "model": self.model,
                "w": _pack(self.w), "b": float(self.b), "stats": dict(self.stats),
                "examples": {k: list(v) for k, v in self.examples.items()}}

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], where: str) -> CustomCategory:
        try:
            return cls(name=name, kind=str(d.get("kind", "logistic")), w=_unpack(d["w"]), b=float(d["b"]),
                       threshold=float(d.get("threshold", DEFAULT_THRESHOLD)), model=str(d.get("model", "")),
                       examples=dict(d.get("examples") or {}), stats=dict(d.get("stats") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise CategoryError(f"{where}: custom category {name!r} is malformed ({exc})") from exc


@dataclass(frozen=True)
class CategoryRule:
    threshold: float | None = None  # None: the head's own threshold
    action: str = "report"


def parse_rules(raw: Any, where: str) -> dict[str, CategoryRule]:
    """``{name: {threshold: p, action: flag|ignore|report}}`` (a bare number is a threshold).

    Raises:
        CategoryError: unknown keys or actions, thresholds outside (0, 1).
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CategoryError(f"{where}: 'categories' must map category names to {{threshold, action}}")
    out = {}
    for name, rule in raw.items():
        rule = {"threshold": rule} if isinstance(rule, (int, float)) and not isinstance(rule, bool) else rule
        if not isinstance(rule, dict) or set(rule) - {"threshold", "action"}:
            raise CategoryError(f"{where}: categories.{name} must be {{threshold: p, action: {'|'.join(ACTIONS)}}}")
        thr, action = rule.get("threshold"), rule.get("action", "report")
        if thr is not None and (isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 < thr < 1):
            raise CategoryError(f"{where}: categories.{name}.threshold must be strictly between 0 and 1, got {thr!r}")
        if action not in ACTIONS:
            raise CategoryError(f"{where}: categories.{name}.action must be one of {', '.join(ACTIONS)}, got {action!r}")
        out[str(name)] = CategoryRule(None if thr is None else float(thr), action)
    return out


def parse_custom(raw: Any, where: str) -> dict[str, CustomCategory]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CategoryError(f"{where}: 'custom' must map names to learned categories (crestguard policy add)")
    return {str(k): CustomCategory.from_dict(str(k), v, where) for k, v in raw.items()}


class CategoryModel:
    """Everything a guard needs to score categories: the built-in head (optional), custom categories and rules."""

    def __init__(self, head: CategoryHead | None, custom: Mapping[str, CustomCategory],
                 rules: Mapping[str, CategoryRule], model_hash: str = ""):
        self.head, self.custom, self.rules = head, dict(custom), dict(rules)
        names = list(head.names if head else ()) + [n for n in self.custom if not head or n not in head.names]
        self.names = tuple(names)
        unknown = set(self.rules) - set(self.names)
        if unknown:
            raise CategoryError(f"threshold policy names unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                                f"{sorted(unknown)}; known: {', '.join(self.names) or 'none (no category head)'}")
        stale = [c.name for c in self.custom.values() if c.model and model_hash and c.model != model_hash]
        if stale:
            raise CategoryError(f"custom categor{'y' if len(stale) == 1 else 'ies'} {stale} were learned on another "
                                f"model; relearn them from their stored examples: crestguard policy refit")
        thr = dict(zip(head.names, head.thresholds)) if head else {}
        thr.update({n: c.threshold for n, c in self.custom.items()})
        self.thresholds = {n: float(self.rules[n].threshold if n in self.rules and self.rules[n].threshold
                                    is not None else thr[n]) for n in self.names}
        self.actions = {n: self.rules[n].action if n in self.rules else "report" for n in self.names}

    def scores(self, features: np.ndarray) -> np.ndarray:
        """``(spans, len(names))`` category scores."""
        parts = [self.head.scores(features)] if self.head else []
        parts += [c.scores(features)[:, None] for n, c in self.custom.items() if not self.head or n not in self.head.names]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(features), 0))

    def judge(self, features: np.ndarray, unsafe: bool) -> tuple[dict[str, float], tuple[str, ...], bool]:
        """Category scores of a text (max over its spans), the categories over their thresholds (ignored ones left
        out), and the decision after the rules."""
        s = self.scores(features).max(axis=0)
        scores = {n: round(float(v), 6) for n, v in zip(self.names, s)}
        over = [n for n in self.names if scores[n] >= self.thresholds[n]]
        explained = tuple(n for n in over if self.actions[n] != "ignore")
        if any(self.actions[n] == "flag" for n in explained):
            unsafe = True
        elif unsafe and over and not explained:  # every category that explains it is allowed
            unsafe = False
        # categories explain a flagged text; a text that passes names none (its scores are still reported)
        return scores, explained if unsafe else (), unsafe

    def fingerprint(self) -> dict[str, Any]:
        return {"head": self.head.meta.get("sha256") if self.head else None,
                "custom": {n: c.to_dict()["w"][:64] for n, c in self.custom.items()},
                "thresholds": self.thresholds, "actions": self.actions}


def load_categories(model_dir: str | Path, model_hash: str, rules: Any = None, custom: Any = None,
                    where: str = "threshold policy") -> CategoryModel | None:
    """The category model of a guard: the head beside the model (if any), plus the policy's custom categories and
    rules; ``None`` when there is nothing to score."""
    path = head_path(model_dir)
    head = CategoryHead.load(path) if path.is_file() else None
    if head is not None:
        head.meta["sha256"] = head_digest(path)
        trained_on = head.meta.get("model_hash")
        if trained_on and trained_on != model_hash:  # the binary model was retrained: its features moved
            import warnings

            warnings.warn(f"{path} was trained on another version of the model ({trained_on[:12]}, now "
                          f"{model_hash[:12]}): categories are off until it is retrained with: crestguard train "
                          f"categories --model {model_dir}", stacklevel=2)
            head = None
    rules_ = parse_rules(rules, where)
    custom_ = parse_custom(custom, where)
    if head is None and not custom_:
        if rules_:
            raise CategoryError(f"{where} sets category rules, but {model_dir} has no category head "
                                f"(crestguard train categories) and the policy no custom category")
        return None
    return CategoryModel(head, custom_, rules_, model_hash)
