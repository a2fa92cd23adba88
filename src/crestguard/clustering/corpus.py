"""A parallel corpus as a table: the same sentence ids in every language, and a fixed subset of them.

Records come from the data registry (:func:`crestguard.data.load_dataset`), where ``group`` is the sentence
index shared by all translations of one sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from crestguard.data.records import Record
from crestguard.errors import DataError

#: Parallel corpora the ``cluster`` command knows: option name -> data registry name.
CORPORA = {"flores200": "flores200", "ntrex128": "ntrex128"}


@dataclass(frozen=True)
class ParallelCorpus:
    """Texts per language over one list of sentence ids.

    Attributes:
        name: the corpus (data registry name).
        groups: sentence ids; ``texts[lang][i]`` is sentence ``groups[i]`` in ``lang``.
        texts: canonical language code -> texts, aligned with ``groups``.
        excluded: language -> why it is not in ``texts`` (counted, never silent).
        missing: language -> how many sentence ids of the corpus it lacks (those ids are left out everywhere).
    """

    name: str
    groups: list[str]
    texts: dict[str, list[str]]
    excluded: dict[str, str] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

    @property
    def langs(self) -> list[str]:
        return list(self.texts)

    def subset(self, n: int, seed: int = 0) -> ParallelCorpus:
        """``n`` sentence ids drawn with ``seed`` (kept in corpus order), the same in every language.

        Raises:
            DataError: if the corpus has fewer than ``n`` sentences.
        """
        if n > len(self.groups):
            raise DataError(f"{self.name} has {len(self.groups)} parallel sentences; {n} were asked for")
        keep = np.sort(np.random.default_rng(seed).choice(len(self.groups), size=n, replace=False))
        return ParallelCorpus(
            self.name,
            [self.groups[i] for i in keep],
            {lang: [t[i] for i in keep] for lang, t in self.texts.items()},
            dict(self.excluded),
            dict(self.missing),
        )


def _group_key(group: str) -> tuple[int, int | str]:
    return (0, int(group)) if group.isdigit() else (1, group)


def from_records(name: str, records: Iterable[Record], langs: list[str] | None = None) -> ParallelCorpus:
    """Build the table from records; keep only the sentence ids present in every kept language
    (``missing`` counts the ids each language lacks).

    Args:
        name: the corpus name, for messages and the cache.
        records: one record per (language, sentence id).
        langs: the languages wanted, in order (default: all present, sorted). Wanted languages the records
            lack go to ``excluded``.

    Raises:
        DataError: a (language, sentence id) pair appears twice, or no sentence id is shared by all languages.
    """
    by_lang: dict[str, dict[str, str]] = {}
    for rec in records:
        table = by_lang.setdefault(rec.lang, {})
        if rec.group in table:
            raise DataError(f"{name}: sentence id {rec.group!r} appears twice in language {rec.lang!r}")
        table[rec.group] = rec.text
    wanted = sorted(by_lang) if langs is None else list(langs)
    excluded = {lang: f"not in {name}" for lang in wanted if lang not in by_lang}
    kept = [lang for lang in wanted if lang in by_lang]
    if not kept:
        raise DataError(f"{name}: none of the {len(wanted)} requested languages is in the corpus")
    common = set.intersection(*(set(by_lang[lang]) for lang in kept))
    if not common:
        raise DataError(
            f"{name}: no sentence id is shared by all {len(kept)} languages; is the corpus parallel?"
        )
    every = set.union(*(set(by_lang[lang]) for lang in kept))
    missing = {lang: len(every) - len(by_lang[lang]) for lang in kept if len(by_lang[lang]) < len(every)}
    groups = sorted(common, key=_group_key)
    return ParallelCorpus(
        name, groups, {lang: [by_lang[lang][g] for g in groups] for lang in kept}, excluded, missing
    )
