"""Frozen-backbone baselines: mean-pooled embeddings of the offline backbone + logistic regression.

A baseline is defined by a recipe (``reports/baselines/<name>/recipe.yaml``)::

    name: lr-en
    backbone: me5-small-q4
    prefix: "query: "          # E5 models expect it
    bf16: false
    max_length: 512
    C: 1.0                      # inverse L2 strength of scikit-learn's LogisticRegression
    salt: crestguard-baseline-v1
    suite: default              # the training mix must be disjoint from this suite's manifest
    sources:                    # each: a dataset, an optional filter and an optional per-language cap
      - dataset: xsafety
        filter: {langs: [en], categories: [Insult]}
        groups_per_language: 200

The mix is built as: filter -> drop items the manifest reserves -> cap per language by group hash ->
drop duplicate texts; every drop is counted in ``model.json``. ``train_baseline`` writes ``model.json`` beside
the recipe (the weights, the settings and the mix summary), which :class:`LogRegBaseline` loads.
Embeddings are cached per text in ``<cache>/embeddings/<backbone>-<settings>.sqlite``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crestguard.data.records import Record
from crestguard.evaluation.errors import EvaluationError
from crestguard.evaluation.manifest import load_manifest, text_key
from crestguard.evaluation.suite import Loader, SetSpec, default_loader, filter_records, parse_set, sample_groups
from crestguard.paths import cache_dir

SCHEMA = "crestguard.baseline/1"
_RECIPE_KEYS = {"name", "description", "backbone", "prefix", "bf16", "max_length", "C", "salt", "suite", "sources"}
_SOURCE_KEYS = {"dataset", "filter", "groups_per_language"}


class EmbeddingCache:
    """Backbone embeddings keyed by text, in one SQLite file per (backbone, prefix, bf16, max_length).

    The backbone is loaded only when a text is missing, so a fully cached evaluation needs no model.
    """

    def __init__(self, backbone: str, prefix: str = "", bf16: bool = False, max_length: int = 512):
        self.backbone, self.prefix, self.bf16, self.max_length = backbone, prefix, bf16, max_length
        settings = hashlib.sha1(json.dumps([prefix, bf16, max_length]).encode()).hexdigest()[:10]
        self.path = cache_dir() / "embeddings" / f"{backbone.replace('/', '--')}-{settings}.sqlite"
        self._model = None

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path)
        con.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        return con

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeddings of ``texts`` (n, hidden), computing and storing only the missing ones.

        Args:
            texts: the texts.
            progress: called with the number of texts embedded after each stored batch.
        """
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._connect() as con:
            uniq = list(dict.fromkeys(keys))
            for i in range(0, len(uniq), 900):  # SQLite's bound-parameter limit
                part = uniq[i : i + 900]
                rows = con.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part)
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
            missing = [k for k in uniq if k not in found]
            text_of = dict(zip(keys, texts))
            for i in range(0, len(missing), 256):
                part = missing[i : i + 256]
                vecs = self._backbone().encode(
                    [text_of[k] for k in part], prefix=self.prefix, bf16=self.bf16, max_length=self.max_length
                )
                con.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                                [(k, v.astype(np.float32).tobytes()) for k, v in zip(part, vecs)])
                con.commit()
                found.update(zip(part, vecs.astype(np.float32)))
                if progress:
                    progress(len(part))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([found[k] for k in keys])

    def _backbone(self):
        if self._model is None:
            from crestguard.backbones import load_backbone

            self._model = load_backbone(self.backbone)
        return self._model


@dataclass(frozen=True)
class Recipe:
    """A parsed baseline recipe (see the module docstring)."""

    name: str
    path: Path
    sources: tuple[SetSpec, ...]  # dataset, filter and cap of each source
    backbone: str = "me5-small-q4"
    prefix: str = "query: "
    bf16: bool = False
    max_length: int = 512
    C: float = 1.0
    salt: str = "crestguard-baseline-v1"
    suite: str = "default"
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file.

    Raises:
        EvaluationError: missing file, unknown keys, or a malformed source; the message names the file.
    """
    import yaml

    path = Path(path)
    if path.is_dir():
        path = path / "recipe.yaml"
    if not path.is_file():
        raise EvaluationError(f"No baseline recipe at {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or set(raw) - _RECIPE_KEYS or not raw.get("name") or not raw.get("sources"):
        raise EvaluationError(f"{path}: a recipe needs 'name' and 'sources'; allowed keys: {sorted(_RECIPE_KEYS)}")
    sources = []
    for i, src in enumerate(raw["sources"]):
        if not isinstance(src, dict) or set(src) - _SOURCE_KEYS or "dataset" not in src:
            raise EvaluationError(f"{path}: sources[{i}] needs 'dataset'; allowed keys: {sorted(_SOURCE_KEYS)}")
        cap = src.get("groups_per_language")
        sources.append(parse_set({"name": f"sources[{i}]", "dataset": src["dataset"], "section": "benign",
                                  "filter": src.get("filter"), "reserve": "sample" if cap else "dataset",
                                  **({"sample": {"groups_per_language": cap}} if cap else {})}, i, path))
    opts = {k: raw[k] for k in ("backbone", "prefix", "bf16", "max_length", "C", "salt", "suite", "description")
            if k in raw}
    return Recipe(name=raw["name"], path=path, sources=tuple(sources), raw=raw, **opts)


def build_mix(recipe: Recipe, load: Loader | None = None) -> tuple[list[Record], dict[str, Any]]:
    """The recipe's training mix, disjoint from the suite manifest, and a summary of what was kept and dropped."""
    load = load or default_loader()
    manifest = load_manifest(recipe.suite)
    mix: list[Record] = []
    dropped: Counter = Counter()
    seen: set[str] = set()
    for spec in recipe.sources:
        kept, why = filter_records(spec, load(spec.dataset))
        dropped.update({f"{spec.dataset}: {k}": v for k, v in why.items()})
        kept, reserved = manifest.split(kept)
        dropped.update({f"{src}: reserved ({how})": n for (src, how), n in reserved.items()})
        if spec.groups_per_language is not None:
            n = len(kept)
            kept, _ = sample_groups(kept, spec.groups_per_language, recipe.salt, spec.dataset)
            dropped[f"{spec.dataset}: cap {spec.groups_per_language} groups per language"] += n - len(kept)
        for rec in kept:
            key = text_key(rec.text)
            if key in seen:
                dropped[f"{spec.dataset}: duplicate text"] += 1
            else:
                seen.add(key)
                mix.append(rec)
    manifest.assert_disjoint(mix, f"training mix of baseline {recipe.name!r}")
    if len({r.label for r in mix}) < 2:
        raise EvaluationError(f"{recipe.path}: the mix needs both safe and unsafe items")
    rows = Counter((r.source, r.lang, r.label) for r in mix)
    summary = {
        "n": len(mix),
        "n_unsafe": sum(r.label == 1 for r in mix),
        "rows": [{"source": s, "lang": lang, "label": lab, "n": n} for (s, lang, lab), n in sorted(rows.items())],
        "dropped": {k: v for k, v in sorted(dropped.items()) if v},
    }
    return mix, summary


class LogRegBaseline:
    """A trained baseline: ``sigmoid(w · embed(text) + b)`` with the settings stored in ``model.json``."""

    def __init__(self, model: dict[str, Any]):
        if model.get("schema") != SCHEMA:
            raise EvaluationError(f"not a baseline model (schema {model.get('schema')!r}, expected {SCHEMA!r})")
        self.model = model
        self.name = model["name"]
        self.coef = np.asarray(model["coef"], dtype=np.float64)
        self.intercept = float(model["intercept"])
        self.threshold = float(model["threshold"])
        self.train_languages = model["train_languages"]
        self.train_sources = model["train_sources"]
        emb = model["embedding"]
        self.cache = EmbeddingCache(emb["backbone"], emb["prefix"], emb["bf16"], emb["max_length"])
        self.fingerprint = hashlib.sha256(
            json.dumps([model["coef"], model["intercept"], emb], sort_keys=True).encode()
        ).hexdigest()[:20]
        self.meta = {"kind": "frozen backbone + logistic regression", "embedding": emb,
                     "mix": {k: model["mix"][k] for k in ("n", "n_unsafe")}, "description": model["description"]}

    @classmethod
    def load(cls, path: str | Path) -> "LogRegBaseline":
        """Load ``model.json`` written by :func:`train_baseline`."""
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise EvaluationError(f"{path}: cannot read baseline model ({exc})") from exc

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        z = self.cache.embed(texts).astype(np.float64) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def train_baseline(recipe_path: str | Path, load: Loader | None = None, progress: bool = True) -> Path:
    """Build the mix, embed it (cached), fit the logistic regression and write ``model.json`` beside the recipe.

    Returns:
        The path of the written ``model.json``.
    """
    from sklearn.linear_model import LogisticRegression

    recipe = load_recipe(recipe_path)
    mix, summary = build_mix(recipe, load)
    cache = EmbeddingCache(recipe.backbone, recipe.prefix, recipe.bf16, recipe.max_length)
    texts = [r.text for r in mix]
    if progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"embedding the {recipe.name} mix", total=len(texts))
            x = cache.embed(texts, progress=lambda k: bar.advance(task, k))
    else:
        x = cache.embed(texts)
    y = np.array([r.label for r in mix])
    clf = LogisticRegression(C=recipe.C, class_weight="balanced", max_iter=2000).fit(x, y)
    model = {
        "schema": SCHEMA,
        "name": recipe.name,
        "description": recipe.description,
        "recipe": recipe.raw,
        "embedding": {"backbone": recipe.backbone, "prefix": recipe.prefix, "bf16": recipe.bf16,
                      "max_length": recipe.max_length},
        "threshold": 0.5,
        "train_languages": sorted({r.lang for r in mix if r.label == 1}),
        "train_sources": sorted({r.source for r in mix}),
        "train_accuracy": float(clf.score(x, y)),
        "mix": summary,
        "coef": [float(v) for v in clf.coef_[0]],
        "intercept": float(clf.intercept_[0]),
    }
    out = recipe.path.parent / "model.json"
    out.write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
