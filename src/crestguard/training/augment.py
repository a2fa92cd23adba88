"""Training augmentations: pure functions that take records and return new, transformed records.

Every output record keeps its input's ``label``, ``lang``, ``group`` (so splits never separate it from the item it
comes from) and ``category`` (the source's raw category); its ``id`` is ``<kind>:<input id>`` and its ``source`` is
``<input source>+<kind>``, so the transform shows in every mix table. The transforms themselves are the variant
families of :mod:`crestguard.data.variants`, the same ones the robustness report measures.

Kinds (:data:`KINDS`):

- ``romanize``: non-Latin-script text transliterated to ASCII (``anyascii``; Devanagari, Arabic, Cyrillic, CJK...);
  Latin-script records are skipped;
- ``code_switch``: two translations of one item (records of one ``group`` in different languages: XSafety rows,
  CatQA en/zh/vi...) mixed clause by clause; English is the partner of every other language when the group has it;
- ``roleplay``: the text inside a role-play, fiction or school-project frame of its language;
- ``obfuscate``: one of letter spacing, punctuation-separated letters, lookalikes or leetspeak per record
  (``families`` to choose others).

A fraction ``frac`` of the applicable records is transformed, chosen by ``sha256(seed|kind|id)``: deterministic.
Evaluation-only data is refused (MultiJail: a mix never reaches it, the manifest refuses it, and so does this module).

In a training mix (:mod:`crestguard.training.mix`), ``augment: {kind: romanize, frac: 0.3}`` on a source adds the
transformed copies to that source's records.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, Iterable, Sequence

from crestguard.data import variants as V
from crestguard.data.records import Record

KINDS = ("romanize", "code_switch", "roleplay", "obfuscate")
OBFUSCATE_FAMILIES = ("letter_spacing", "punctuation_letters", "lookalikes", "leetspeak")
#: Datasets that are evaluation sets: never augmented into training data.
EVAL_ONLY = frozenset({"multijail"})


class AugmentError(ValueError):
    """An unknown kind or family, a bad fraction, or evaluation-only records."""


def _rank(*parts: Any) -> float:
    """A number in [0, 1) from the parts, stable across runs."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:15], 16) / 16 ** 15


def _new(r: Record, kind: str, text: str) -> Record:
    return Record(f"{kind}:{r.id}", text, r.label, r.lang, f"{r.source}+{kind}", r.group, r.category)


def _check(records: Sequence[Record], frac: float) -> None:
    if not 0 < frac <= 1:
        raise AugmentError(f"frac must be in (0, 1], got {frac}")
    bad = sorted({r.source for r in records if r.source.split("+")[0] in EVAL_ONLY})
    if bad:
        raise AugmentError(f"records of {bad} are evaluation-only and cannot be augmented for training")


def _chosen(records: Iterable[Record], kind: str, frac: float, seed: int) -> list[Record]:
    return [r for r in records if _rank(seed, kind, r.id) < frac]


def romanized(records: Sequence[Record], frac: float = 1.0, seed: int = 0) -> list[Record]:
    """Romanized copies of the non-Latin-script records (a ``frac`` of them)."""
    _check(records, frac)
    out = []
    for r in _chosen(records, "romanize", frac, seed):
        text = V.romanize(r.text, r.lang)
        if text:
            out.append(_new(r, "romanize", text))
    return out


def code_switched(records: Sequence[Record], frac: float = 1.0, seed: int = 0) -> list[Record]:
    """Each chosen record mixed with a translation of its item (same group, another language): English when the
    group has it (and the record is not English), else the first other language by rank."""
    _check(records, frac)
    by_group: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_group[r.group].append(r)
    out = []
    for r in _chosen(records, "code_switch", frac, seed):
        others = [o for o in by_group[r.group] if o.lang != r.lang and o.text.strip()]
        if not others:
            continue
        en = [o for o in others if o.lang == "en"]
        partner = en[0] if en else min(others, key=lambda o: _rank(seed, "partner", r.id, o.id))
        out.append(_new(r, "code_switch", V.code_switch(r.text, partner.text, seed)))
    return out


def roleplay(records: Sequence[Record], frac: float = 1.0, seed: int = 0) -> list[Record]:
    """Copies wrapped in a role-play, fiction or school-project frame of their language."""
    _check(records, frac)
    return [_new(r, "roleplay", V.roleplay(r.text, r.lang, seed)) for r in _chosen(records, "roleplay", frac, seed)]


def obfuscated(records: Sequence[Record], frac: float = 1.0, seed: int = 0,
               families: Sequence[str] = OBFUSCATE_FAMILIES) -> list[Record]:
    """Copies disguised by one of ``families`` of :data:`crestguard.data.variants.FAMILIES` each (by rank)."""
    _check(records, frac)
    unknown = set(families) - set(V.FAMILIES)
    if unknown or not families:
        raise AugmentError(f"unknown obfuscation families {sorted(unknown)}; known: {sorted(V.FAMILIES)}")
    out = []
    for r in _chosen(records, "obfuscate", frac, seed):
        family = families[int(_rank(seed, "family", r.id) * len(families))]
        text = V.FAMILIES[family](r.text, r.lang)
        if text and text != r.text:
            out.append(_new(r, "obfuscate", text))
    return out


_BY_KIND = {"romanize": romanized, "code_switch": code_switched, "roleplay": roleplay, "obfuscate": obfuscated}


def augment(records: Sequence[Record], kind: str, frac: float = 1.0, seed: int = 0, **options: Any) -> list[Record]:
    """The transformed copies of ``records`` by ``kind`` (one of :data:`KINDS`); ``options``: ``families`` for
    ``obfuscate``.

    Raises:
        AugmentError: unknown kind or option, ``frac`` outside (0, 1], evaluation-only records.
    """
    if kind not in _BY_KIND:
        raise AugmentError(f"unknown augmentation kind {kind!r}; known: {', '.join(KINDS)}")
    if options and (kind != "obfuscate" or set(options) - {"families"}):
        raise AugmentError(f"augmentation {kind!r} takes no options {sorted(options)}")
    if "families" in options:
        options["families"] = tuple(options["families"])
    return _BY_KIND[kind](records, frac, seed, **options)
