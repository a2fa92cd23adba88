"""Validation on load: every candidate text goes through :class:`DatasetBuilder`, which keeps it as a
:class:`~crestguard.data.records.Record` or drops it with a counted, exemplified reason.

The invariant ``items_read == kept + dropped`` holds for every loaded dataset: nothing disappears silently.
Issue kinds:

========================  =======  ===========================================================================
kind                      dropped  meaning
========================  =======  ===========================================================================
``undecodable``           yes      the text holds bytes that are not valid UTF-8
``missing_field``         yes      the row is shorter than the header (its text or label cell is absent)
``empty_text``            yes      empty or whitespace-only text
``unknown_label``         yes      a source label outside the loader's documented mapping
``unknown_language``      yes      a language code :func:`crestguard.languages.resolve` does not know
``duplicate_id``          yes      an id already used in this dataset (the first one is kept)
``duplicate_language``    yes      a file whose language another file of the dataset already covers
``deduplicated``          yes      a repeated text removed by the loader's documented rule (e.g. JBB goals)
``excluded``              yes      left out by the source's label mapping (e.g. HarmBench copyright)
``eval_overlap``          yes      the SOURCE.md flags it as matching an evaluation set (``exact_match_eval``)
``duplicate_text``        no       same text and language as an earlier record (kept, reported)
========================  =======  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crestguard.data.readers import UNDECODABLE
from crestguard.data.records import Record

ISSUES: dict[str, tuple[bool, str]] = {
    "undecodable": (True, "bytes that are not valid UTF-8"),
    "missing_field": (True, "row shorter than the header"),
    "empty_text": (True, "empty or whitespace-only text"),
    "unknown_label": (True, "label outside the documented mapping"),
    "unknown_language": (True, "language code not in the language table"),
    "duplicate_id": (True, "id already used in this dataset"),
    "duplicate_language": (True, "file duplicates a language another file covers"),
    "deduplicated": (True, "repeated text removed by the documented rule"),
    "excluded": (True, "left out by the source's label mapping"),
    "eval_overlap": (True, "matches an evaluation set (SOURCE.md's exact_match_eval)"),
    "duplicate_text": (False, "same text and language as an earlier record (kept)"),
}
MAX_EXAMPLES = 5


@dataclass
class Issue:
    """One kind of problem: how many items it hit and up to :data:`MAX_EXAMPLES` examples."""

    kind: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        return ISSUES[self.kind][0]

    @property
    def meaning(self) -> str:
        return ISSUES[self.kind][1]


@dataclass
class ValidationReport:
    """What loading a dataset found. ``items_read`` counts candidate texts (one per row, or more where a row
    holds several texts, e.g. one per language column)."""

    dataset: str
    items_read: int = 0
    kept: int = 0
    issues: dict[str, Issue] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        """Items that did not become records (the sum of every dropping issue)."""
        return sum(i.count for i in self.issues.values() if i.dropped)

    def count(self, kind: str) -> int:
        """How many items had issue ``kind`` (0 if none)."""
        return self.issues[kind].count if kind in self.issues else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "items_read": self.items_read, "kept": self.kept,
            "dropped": self.dropped,
            "issues": {k: {"count": i.count, "dropped": i.dropped, "examples": i.examples}
                       for k, i in self.issues.items()},
        }

    def summary(self) -> str:
        """One line, e.g. ``"400 read, 300 kept, 100 dropped (excluded 100)"``."""
        parts = ", ".join(f"{k} {i.count}" for k, i in self.issues.items())
        return (f"{self.items_read} read, {self.kept} kept, {self.dropped} dropped"
                + (f" ({parts})" if parts else ""))


class DatasetBuilder:
    """Collects records for one dataset, validating each one, and keeps the source's own splits.

    Ids and groups are prefixed with the dataset name (``"harmbench:<BehaviorID>"``), so they are unique
    across datasets as well. Language codes go through :func:`crestguard.languages.resolve` (cached per code).

    Args:
        name: the dataset name (``Record.source``).
    """

    def __init__(self, name: str):
        self.name = name
        self.records: list[Record] = []
        self.report = ValidationReport(name)
        self.splits: dict[str, list[str]] = {}
        self._ids: set[str] = set()
        self._texts: set[tuple[str, str]] = set()
        self._langs: dict[str, str | None] = {}

    def issue(self, kind: str, example: str, n: int = 1) -> None:
        """Record ``n`` items with issue ``kind``; a dropping kind also counts them as read."""
        entry = self.report.issues.setdefault(kind, Issue(kind))
        entry.count += n
        if len(entry.examples) < MAX_EXAMPLES:
            entry.examples.append(example)
        if entry.dropped:
            self.report.items_read += n

    def language(self, code: str) -> str | None:
        """The canonical code of ``code``, or ``None`` when the language table does not know it."""
        if code not in self._langs:
            from crestguard.languages import try_resolve

            self._langs[code] = try_resolve(code)
        return self._langs[code]

    def add(self, key: str, text: str | None, label: Any, lang: str, group: str | None = None,
            category: str | None = None, where: str = "", split: str | None = None,
            dedupe: bool = False) -> Record | None:
        """Validate one candidate text; keep it as a record or count why not.

        Args:
            key: the item's id within the dataset (prefixed with the dataset name to make ``Record.id``).
            text: the text, or ``None`` when the row lacked the cell.
            label: 0, 1 or ``None``; anything else is counted as ``unknown_label``.
            lang: the source's language code, resolved through the language table.
            group: the translation group key (defaults to ``key``), prefixed like the id.
            category: the source's own category.
            where: file and row, for examples in the report.
            split: the source's own split this item belongs to, if any.
            dedupe: drop the item (``deduplicated``) when the same text and language was already kept.

        Returns:
            The record, or ``None`` if the item was dropped.
        """
        rid = f"{self.name}:{key}"
        if text is None or label is MISSING:
            self.issue("missing_field", f"{where} ({rid})")
            return None
        if UNDECODABLE.search(text):
            raw = text.encode("utf-8", errors="surrogateescape")
            self.issue("undecodable", f"{where}: {raw[:80]!r}")
            return None
        if not text.strip():
            self.issue("empty_text", f"{where} ({rid}): {text!r}")
            return None
        if label not in (0, 1, None) or isinstance(label, bool):
            self.issue("unknown_label", f"{where} ({rid}): label {label!r}")
            return None
        canonical = self.language(lang)
        if canonical is None:
            self.issue("unknown_language", f"{where} ({rid}): code {lang!r}")
            return None
        if rid in self._ids:
            self.issue("duplicate_id", f"{where}: {rid}")
            return None
        text_key = (canonical, text)
        if text_key in self._texts:
            self.issue("deduplicated" if dedupe else "duplicate_text", f"{where} ({rid}): {_clip(text)}")
            if dedupe:
                return None
        else:
            self._texts.add(text_key)
        record = Record(id=rid, text=text, label=label, lang=canonical, source=self.name,
                        group=f"{self.name}:{key if group is None else group}", category=category)
        self._ids.add(rid)
        self.records.append(record)
        self.report.items_read += 1
        self.report.kept += 1
        if split is not None:
            self.splits.setdefault(split, []).append(rid)
        return record


class _Missing:
    """Type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "<missing>"


#: Pass as the label when the row lacks the cell the label comes from: counted as ``missing_field``.
MISSING: Any = _Missing()


def label_from(mapping: dict[Any, int | None], value: Any) -> Any:
    """Map a source label with ``mapping``: an absent cell (``None``) gives :data:`MISSING` and an unmapped
    value is returned as it is, so :meth:`DatasetBuilder.add` counts it as ``missing_field`` or
    ``unknown_label``."""
    if value is None:
        return MISSING
    return mapping.get(value, value)


def _clip(text: str, n: int = 70) -> str:
    return repr(text if len(text) <= n else text[:n] + "…")
