"""The harm taxonomy: category names, the OpenAI mapping and every source's raw-category mapping, read from ONE data
file (``taxonomy.yaml`` beside this module). No other module names a category.

Example:
    >>> from crestguard.taxonomy import load_taxonomy
    >>> tax = load_taxonomy()
    >>> tax.names[:3]
    ('violent_crimes', 'non_violent_crimes', 'sex_related_crimes')
    >>> tax.targets(record)            # (y, mask) over tax.names, or None when the record carries no category
    >>> tax.openai_scores({"hate": 0.9, "violent_crimes": 0.7})["hate/threatening"]
    0.7
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from crestguard.errors import CrestGuardError

TAXONOMY_FILE = Path(__file__).with_name("taxonomy.yaml")
_SOURCE_KEYS = {"map", "separator", "by_label", "default", "covers", "benign"}


class TaxonomyError(CrestGuardError):
    """The taxonomy file is malformed (unknown category names, keys or OpenAI keys)."""


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    title: str
    description: str


@dataclass(frozen=True)
class SourceMap:
    """How one source's raw ``Record.category`` strings map to taxonomy categories (see taxonomy.yaml)."""

    name: str
    mapping: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    separator: str | None = None
    by_label: Mapping[int, tuple[str, ...]] | None = None
    default: tuple[str, ...] | None = None
    covers: tuple[str, ...] | None = None
    benign: bool = False

    def categories(self, raw: str | None, label: int | None) -> tuple[str, ...] | None:
        """The taxonomy categories of one item (``()`` = no harm category), or ``None`` when unknown."""
        if self.by_label is not None:
            return self.by_label.get(label) if label is not None else None
        if self.benign and label == 0:
            return ()
        if raw is None:
            return None
        parts = [p.strip() for p in raw.split(self.separator)] if self.separator else [raw.strip()]
        out: list[str] = []
        for part in parts:
            cats = self._lookup(part)
            if cats is None:
                return None
            out.extend(c for c in cats if c not in out)
        return tuple(out)

    def _lookup(self, raw: str) -> tuple[str, ...] | None:
        """A hierarchical raw string (``"Top|Sub"``, as loaders join a source's levels) is looked up whole, then
        level by level from the most specific; the first level named in ``map`` decides (null: unknown)."""
        if raw in self.mapping:
            return self.mapping[raw]
        for level in reversed([x.strip() for x in raw.split("|")]):
            if level in self.mapping:
                return self.mapping[level]
        return self.default


@dataclass(frozen=True)
class Taxonomy:
    """The loaded taxonomy. ``names`` orders every category vector (heads, targets, reports)."""

    version: int
    categories: tuple[Category, ...]
    openai: Mapping[str, tuple[str, tuple[str, ...]]]  # key -> ("any" | "all", categories)
    openai_set_labels: Mapping[str, str]
    sources: Mapping[str, SourceMap]
    path: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    @property
    def openai_keys(self) -> tuple[str, ...]:
        return tuple(self.openai)

    def category(self, name: str) -> Category:
        for c in self.categories:
            if name in (c.name, c.code):
                return c
        raise TaxonomyError(f"Unknown category {name!r}; known: {', '.join(self.names)}")

    def item_categories(self, record: Any) -> tuple[str, ...] | None:
        """The taxonomy categories of a record (``()``: none of them), ``None`` when its source or its raw
        category is not mapped."""
        src = self.sources.get(record.source)
        return None if src is None else src.categories(record.category, record.label)

    def targets(self, record: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """``(y, mask)`` over :attr:`names` for a record, or ``None`` when it carries no category target."""
        cats = self.item_categories(record)
        if cats is None:
            return None
        y = np.array([n in cats for n in self.names], dtype=np.float32)
        covers = self.sources[record.source].covers
        mask = np.array([covers is None or n in covers for n in self.names], dtype=bool)
        return y, mask

    def openai_scores(self, scores: Mapping[str, float]) -> dict[str, float]:
        """OpenAI's 13 category scores from ours: max over ``any``, min over ``all`` (missing names count 0)."""
        out = {}
        for key, (mode, cats) in self.openai.items():
            values = [float(scores.get(c, 0.0)) for c in cats]
            out[key] = max(values) if mode == "any" else min(values)
        return out

    def openai_categories(self, flagged: Iterable[str]) -> dict[str, bool]:
        """OpenAI's 13 booleans from the set of our flagged categories (same any/all rule)."""
        flagged = set(flagged)
        return {key: (any if mode == "any" else all)(c in flagged for c in cats)
                for key, (mode, cats) in self.openai.items()}

    def unmapped(self, records: Iterable[Any]) -> Counter:
        """``(source, raw category)`` counts of records whose source is mapped but whose category is unknown."""
        out: Counter = Counter()
        for r in records:
            if r.source in self.sources and self.item_categories(r) is None:
                out[(r.source, r.category)] += 1
        return out


def _names(value: Any, known: set[str], where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(v not in known for v in value):
        raise TaxonomyError(f"{where}: expected a list of category names from {sorted(known)}, got {value!r}")
    return tuple(value)


def parse(doc: Any, path: str = "taxonomy") -> Taxonomy:
    """Validate a taxonomy document (the YAML's content).

    Raises:
        TaxonomyError: unknown keys, duplicate or unknown category names, malformed mappings.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        raise TaxonomyError(f"{path}: expected a mapping with a 'categories' list")
    cats = []
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not {"code", "name"} <= set(c):
            raise TaxonomyError(f"{path}: categories[{i}] needs 'code' and 'name'")
        cats.append(Category(str(c["code"]), str(c["name"]), str(c.get("title", c["name"])),
                             str(c.get("description", ""))))
    known = {c.name for c in cats}
    if len(known) != len(cats):
        raise TaxonomyError(f"{path}: duplicate category names")
    openai = {}
    for key, rule in (doc.get("openai") or {}).items():
        if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in ("any", "all"):
            raise TaxonomyError(f"{path}: openai.{key} must be {{any: [...]}} or {{all: [...]}}")
        mode, names = next(iter(rule.items()))
        openai[str(key)] = (mode, _names(names, known, f"{path}: openai.{key}"))
    labels = {str(k): str(v) for k, v in (doc.get("openai_set_labels") or {}).items()}
    if set(labels.values()) - set(openai):
        raise TaxonomyError(f"{path}: openai_set_labels name unknown OpenAI keys {set(labels.values()) - set(openai)}")
    sources = {}
    for name, spec in (doc.get("sources") or {}).items():
        where = f"{path}: sources.{name}"
        if not isinstance(spec, dict) or set(spec) - _SOURCE_KEYS:
            raise TaxonomyError(f"{where}: must be a mapping with keys from {sorted(_SOURCE_KEYS)}")
        by_label = spec.get("by_label")
        if by_label is not None:
            by_label = {int(k): _names(v, known, f"{where}.by_label.{k}") for k, v in by_label.items()}
        sources[name] = SourceMap(
            name=name, mapping={str(k): _names(v, known, f"{where}.map.{k}") for k, v in (spec.get("map") or {}).items()},
            separator=spec.get("separator"), by_label=by_label,
            default=_names(spec.get("default"), known, f"{where}.default"),
            covers=_names(spec.get("covers"), known, f"{where}.covers"), benign=bool(spec.get("benign", False)))
    return Taxonomy(int(doc.get("version", 1)), tuple(cats), openai, labels, sources, path)


@lru_cache(maxsize=4)
def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and validate the taxonomy (default: the packaged ``taxonomy.yaml``).

    Raises:
        TaxonomyError: the file is missing or malformed.
    """
    import yaml

    path = Path(path) if path else TAXONOMY_FILE
    if not path.is_file():
        raise TaxonomyError(f"Taxonomy file not found: {path}")
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
