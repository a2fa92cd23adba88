"""The reserved-items manifest: every item a suite evaluates, which training must never use.

The manifest of suite ``<name>`` is committed as ``configs/suites/<name>.manifest.jsonl.gz`` and rebuilt by
``crestguard eval manifest --suite <name>`` (``--check`` verifies the committed file). It is gzip JSON lines:

1. a header ``{"manifest": "crestguard.reserved/1", "suite", "suite_version", "suite_sha256", "text_key"}``;
2. ``{"dataset": D, "scope": "dataset"}``: the whole dataset ``D`` is reserved;
3. ``{"dataset": D, "scope": "groups", "groups": [...]}``: these groups of ``D`` are reserved (the rest of ``D``
   stays available for training);
4. ``{"texts": [...]}``: the text key of every evaluated item, so that the same text reached through another
   dataset (AdvBench prompts inside StrongREJECT or JBB, say) is refused too.

The text key is the first 16 hex digits of SHA-1 over the text after Unicode NFC, case folding and collapsing
whitespace. The gzip header carries no timestamp, so the file is byte-for-byte reproducible.

Training code calls :func:`assert_disjoint` (refuse) or :meth:`Manifest.split` (drop and count)::

    from crestguard.evaluation import assert_disjoint
    assert_disjoint(training_records)          # raises ReservedItemError naming the offending items
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from crestguard.data.records import Record
from crestguard.evaluation.errors import EvaluationError, ReservedItemError
from crestguard.evaluation.suite import SUITES_DIR, EvalSet, Suite

SCHEMA = "crestguard.reserved/1"
_WS = re.compile(r"\s+")


def text_key(text: str) -> str:
    """The normalized-text key used to match the same text across datasets."""
    norm = _WS.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()[:16]


def manifest_path(suite_name: str) -> Path:
    """Where the committed manifest of a suite lives."""
    return SUITES_DIR / f"{suite_name}.manifest.jsonl.gz"


@dataclass(frozen=True)
class Manifest:
    """The reserved items of one suite, with lookups for training code."""

    suite: str
    suite_version: int
    suite_sha256: str
    datasets: frozenset[str]
    groups: frozenset[tuple[str, str]]
    texts: frozenset[str]

    def reason(self, record: Record) -> str | None:
        """Why ``record`` is reserved (``"dataset"``, ``"group"`` or ``"text"``), or ``None`` if it is not."""
        if record.source in self.datasets:
            return "dataset"
        if (record.source, record.group) in self.groups:
            return "group"
        if text_key(record.text) in self.texts:
            return "text"
        return None

    def is_reserved(self, record: Record) -> bool:
        """True when training must not use ``record``."""
        return self.reason(record) is not None

    def split(self, records: Iterable[Record]) -> tuple[list[Record], Counter]:
        """Separate allowed records from reserved ones.

        Returns:
            ``(allowed, counts)`` where ``counts[(source, reason)]`` is the number of reserved records dropped.
        """
        allowed, counts = [], Counter()
        for rec in records:
            why = self.reason(rec)
            if why is None:
                allowed.append(rec)
            else:
                counts[(rec.source, why)] += 1
        return allowed, counts

    def assert_disjoint(self, records: Iterable[Record], what: str = "training mix") -> None:
        """Raise :class:`ReservedItemError` if any of ``records`` is reserved, naming counts and examples."""
        bad = [(rec, why) for rec in records if (why := self.reason(rec)) is not None]
        if bad:
            counts = Counter((rec.source, why) for rec, why in bad)
            summary = ", ".join(f"{src} by {why}: {n}" for (src, why), n in sorted(counts.items()))
            examples = "; ".join(f"{r.source}/{r.id}" for r, _ in bad[:5])
            raise ReservedItemError(
                f"The {what} holds {len(bad)} item(s) reserved for evaluation by suite {self.suite!r} "
                f"({summary}). Examples: {examples}. Drop them (Manifest.split) before training."
            )


def build(suite: Suite, sets: Sequence[EvalSet]) -> Manifest:
    """The manifest of ``suite`` from its materialized sets (``materialize_reserved``: with those of the suites it
    names under ``also_reserve``); every held item counts, also those an evaluation cap leaves unscored."""
    datasets = {s.spec.dataset for s in sets if s.spec.reserve == "dataset"}
    groups = {(s.spec.dataset, g) for s in sets if s.spec.reserve == "sample" for g in s.reserved_groups}
    groups = {(d, g) for d, g in groups if d not in datasets}
    texts = {text_key(r.text) for s in sets for r in (s.records if s.held is None else s.held)}
    return Manifest(suite.name, suite.version, suite.sha256, frozenset(datasets), frozenset(groups),
                    frozenset(texts))


def to_bytes(m: Manifest) -> bytes:
    """Serialize deterministically (sorted, gzip without timestamp)."""
    lines = [{"manifest": SCHEMA, "suite": m.suite, "suite_version": m.suite_version,
              "suite_sha256": m.suite_sha256, "text_key": "sha1(nfc+casefold+collapsed whitespace)[:16]"}]
    lines += [{"dataset": d, "scope": "dataset"} for d in sorted(m.datasets)]
    by_ds: dict[str, list[str]] = {}
    for d, g in sorted(m.groups):
        by_ds.setdefault(d, []).append(g)
    lines += [{"dataset": d, "scope": "groups", "groups": gs} for d, gs in by_ds.items()]
    lines.append({"texts": sorted(m.texts)})
    raw = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return buf.getvalue()


def write(m: Manifest, path: Path | None = None) -> Path:
    """Write the manifest (default: the committed location of its suite) and return the path."""
    path = path or manifest_path(m.suite)
    path.write_bytes(to_bytes(m))
    return path


def read(path: Path) -> Manifest:
    """Parse a manifest file.

    Raises:
        EvaluationError: the file is missing, not gzip JSON lines, or has an unknown schema.
    """
    if not path.is_file():
        raise EvaluationError(f"No reserved-items manifest at {path}: run `crestguard eval manifest` first")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{path}: not a gzip JSON-lines manifest ({exc})") from exc
    if not rows or rows[0].get("manifest") != SCHEMA:
        raise EvaluationError(f"{path}: expected header with manifest={SCHEMA!r}")
    head, datasets, groups, texts = rows[0], set(), set(), set()
    for row in rows[1:]:
        if row.get("scope") == "dataset":
            datasets.add(row["dataset"])
        elif row.get("scope") == "groups":
            groups.update((row["dataset"], g) for g in row["groups"])
        elif "texts" in row:
            texts.update(row["texts"])
        else:
            raise EvaluationError(f"{path}: unknown manifest line {str(row)[:80]}")
    return Manifest(head["suite"], head["suite_version"], head["suite_sha256"], frozenset(datasets),
                    frozenset(groups), frozenset(texts))


@lru_cache(maxsize=8)
def load_manifest(suite: str = "default") -> Manifest:
    """The committed manifest of ``suite`` (read once per process)."""
    return read(manifest_path(suite))


def is_reserved(record: Record, suite: str = "default") -> bool:
    """True when ``record`` is reserved for evaluation by the committed manifest of ``suite``."""
    return load_manifest(suite).is_reserved(record)


def assert_disjoint(records: Iterable[Record], suite: str = "default", what: str = "training mix") -> None:
    """Raise :class:`ReservedItemError` when any record is reserved by the committed manifest of ``suite``."""
    load_manifest(suite).assert_disjoint(records, what)
