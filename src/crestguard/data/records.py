"""The one record type every dataset, training mix and evaluation set is made of."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SAFE, UNSAFE = 0, 1


@dataclass(frozen=True, slots=True)
class Record:
    """One text with its safety label.

    Attributes:
        id: unique within its dataset (``source``).
        text: the text exactly as the source has it (no normalization).
        label: 0 safe, 1 unsafe, ``None`` for unlabelled corpora.
        lang: canonical language code of :mod:`crestguard.languages` (e.g. ``"en"``, ``"zh-Hans"``).
        source: dataset name in the registry (e.g. ``"harmbench"``).
        group: shared by all translations of one item; splits never separate a group.
        category: the source's own category, if any.
    """

    id: str
    text: str
    label: int | None
    lang: str
    source: str
    group: str
    category: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Record":
        return cls(
            id=str(d["id"]),
            text=d["text"],
            label=None if d.get("label") is None else int(d["label"]),
            lang=d["lang"],
            source=d["source"],
            group=str(d.get("group") or d["id"]),
            category=d.get("category"),
        )
