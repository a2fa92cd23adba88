"""Loaders for the benign multilingual sets (``benign_multilingual/``, all label 0) and the parallel corpora
(``parallel/``, label ``None``).

These folders hold one file per language. The file's code goes through :func:`crestguard.languages.resolve`;
when several files of one dataset resolve to the same language, one is kept and the others' rows are counted
as ``duplicate_language``. The kept file is, in order of preference: one the dataset names explicitly; one
whose code is the language's own code (canonical, ISO 639-1/3, ISO 639-3 + main script, or main FLORES-200
code); else the first by name. This gives:

- **multiq**: the near-duplicate Google codes of the README (``iw``/``he``, ``jw``/``jv``, ``zh``/``zh-CN``)
  and ``fil``/``tl`` (193/200 identical): ``he``, ``jv``, ``zh-CN`` (explicitly Simplified) and ``tl`` are
  kept; 800 rows counted as ``duplicate_language``. ``category`` = ``domain``.
- **flores200** (FLORES-200 via SIB-200): languages written in two scripts (``ace``, ``bjn``, ``kas``,
  ``knc``, ``min``, ``taq``) keep their main FLORES-200 script; ``category`` = the SIB-200 topic; splits
  train/dev/test.
- **ntrex128**: ``eng.src`` (the English source) for English; ``fra``/``por``/``spa`` over the regional
  ``fra-CA``/``por-BR``/``spa-MX`` and the second Spanish reference ``spa.ref-2``; ``srp-Cyrl`` over
  ``srp-Latn``.

Ids are ``<dataset>:<file code>:<source id or line>``; ``group`` is the parallel key (the source id, the
FLORES index, the NTREX line number, the MT-Bench question id so both turns stay together); TyDi QA and
Tatoeba are not parallel, so each of their items is its own group.

**tatoeba** (LASER's Tatoeba test set, 112 languages): ``text`` is the non-English sentence (the English side
differs per language pair, so it is not emitted); the 574 rows whose English side matches the SOURCE.md's
violence/sex/drugs regex get ``category = "eng_kw"`` (``None`` otherwise), so strict negatives are
``[r for r in ds.records if r.category != "eng_kw"]``. **tatoeba_pairs** (``parallel/tatoeba_laser``: br,
fy, la) emits both sides of each pair, sharing a group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from crestguard.data.readers import read_lines, read_table
from crestguard.data.registry import register
from crestguard.data.validation import DatasetBuilder
from crestguard.errors import DataError


def _own_codes(canonical: str) -> set[str]:
    from crestguard.languages import get
    from crestguard.languages.table import normalize

    lang = get(canonical)
    codes = {lang.code, lang.iso639_1, lang.iso639_3, f"{lang.iso639_3}-{lang.script}", lang.flores_code}
    return {normalize(c) for c in codes if c}


def per_language_files(builder: DatasetBuilder, folder: Path, suffix: str, read: Callable[[Path], list[Any]],
                       prefer: Sequence[str] = ()) -> Iterator[tuple[str, str, list[Any]]]:
    """Yield ``(code, file name, rows)`` for one file per language of ``folder/*<suffix>`` (names starting with
    ``_`` are metadata), counting the rows of duplicate-language files (the rule is in the module docstring).

    The code is the file name up to its first dot (``eng.src.txt`` -> ``eng``). Files whose code the language
    table does not know are yielded too, so their rows are counted as ``unknown_language``.

    Raises:
        DataError: the folder has no such file.
    """
    from crestguard.languages.table import normalize

    paths = sorted(p for p in folder.glob(f"*{suffix}") if not p.name.startswith("_"))
    files = {p.name[: -len(suffix)]: p for p in paths}
    if not files:
        raise DataError(f"dataset '{builder.name}': no *{suffix} files in {folder}")
    by_lang: dict[str, list[str]] = {}
    for stem in files:
        canonical = builder.language(stem.split(".")[0])
        if canonical is not None:
            by_lang.setdefault(canonical, []).append(stem)

    def rank(stem: str, canonical: str) -> tuple[int, str]:
        own = normalize(stem) in _own_codes(canonical)
        return (0 if stem in prefer else 1 if own else 2), stem

    kept = {canonical: min(stems, key=lambda s: rank(s, canonical)) for canonical, stems in by_lang.items()}
    for stem, path in files.items():
        canonical = builder.language(stem.split(".")[0])
        rows = read(path)
        if canonical is None or kept[canonical] == stem:
            yield stem.split(".")[0], path.name, rows
        else:
            builder.issue("duplicate_language", f"{path.name}: {canonical} already read from "
                          f"{files[kept[canonical]].name} ({len(rows)} rows)", n=len(rows))


def _tsv(builder: DatasetBuilder, columns: Sequence[str]) -> Callable[[Path], list[dict[str, Any]]]:
    """A reader for the dataset's TSV files that requires ``columns``."""
    return partial(read_table, dataset=builder.name, required=columns, delimiter="\t")


def _benign(folder: Path, builder: DatasetBuilder, columns: Sequence[str] = (), group: str | None = "id",
            category: str | None = None, split: str | None = None, prefer: Sequence[str] = ()) -> None:
    """A benign folder of ``<lang>.tsv`` files with at least ``id`` and ``text``; every text label 0.

    Args:
        columns: further required columns.
        group: the column holding the parallel key, or ``None`` when items are not parallel (one group each).
        category: the column that becomes ``Record.category``.
        split: the column that holds the source's split.
        prefer: file codes to keep when several files share a language.
    """
    read = _tsv(builder, ["id", "text", *columns])
    for code, file, rows in per_language_files(builder, folder, ".tsv", read, prefer):
        for i, row in enumerate(rows):
            builder.add(f"{code}:{row['id']}", row["text"], 0, code,
                        group=row[group] if group else f"{code}:{row['id']}",
                        category=row[category] if category else None,
                        split=row[split] if split else None, where=f"{file} row {i + 1}")


@register("multiq", folder="benign_multilingual/multiq", kind="benign",
          description="MultiQ factual questions, 137 Google-Translate codes", licence="CC BY 4.0",
          labels="all 0",
          choice="iw/jw/zh/fil duplicates dropped (he, jv, zh-CN, tl kept); group = question id")
def _multiq(folder: Path, builder: DatasetBuilder) -> None:
    _benign(folder, builder, ["domain"], category="domain", prefer=["zh-CN"])


@register("xquad", folder="benign_multilingual/xquad", kind="benign",
          description="XQuAD questions, 12 languages, parallel", licence="CC BY-SA 4.0", labels="all 0",
          choice="questions only; group = SQuAD id")
def _xquad(folder: Path, builder: DatasetBuilder) -> None:
    _benign(folder, builder)


@register("tydiqa", folder="benign_multilingual/tydiqa_goldp", kind="benign",
          description="TyDi QA GoldP questions, 9 languages, written natively", licence="Apache-2.0",
          labels="all 0", choice="not parallel: one group per question; splits dev/train")
def _tydiqa(folder: Path, builder: DatasetBuilder) -> None:
    _benign(folder, builder, ["split"], group=None, split="split")


@register("mgsm", folder="benign_multilingual/mgsm", kind="benign",
          description="MGSM grade-school math problems, 11 languages, parallel", licence="CC BY 4.0",
          labels="all 0", choice="group = problem id")
def _mgsm(folder: Path, builder: DatasetBuilder) -> None:
    _benign(folder, builder)


@register("mt_bench", folder="benign_multilingual/mt_bench_m2lingual", kind="benign",
          description="Multilingual MT-Bench user turns, 14 languages", licence="Apache-2.0 (repo)",
          labels="all 0", choice="group = question id (both turns); category = MT-Bench category")
def _mt_bench(folder: Path, builder: DatasetBuilder) -> None:
    _benign(folder, builder, ["question_id", "category"], group="question_id", category="category")


@register("xcopa", folder="benign_multilingual/xcopa", kind="benign",
          description="XCOPA premises, 11 languages, parallel", licence="CC BY 4.0", labels="all 0",
          choice="premise only; group = item id; splits val/test")
def _xcopa(folder: Path, builder: DatasetBuilder) -> None:
    _benign(folder, builder, ["split"], split="split")


@register("tatoeba", folder="benign_multilingual/tatoeba_laser", kind="benign",
          description="Tatoeba sentences (LASER test set), 112 languages", licence="CC BY 2.0 FR (Tatoeba)",
          labels="all 0", choice="non-English side only; eng_kw_flag rows -> category eng_kw")
def _tatoeba(folder: Path, builder: DatasetBuilder) -> None:
    read = _tsv(builder, ["id", "text", "eng_kw_flag"])
    for code, file, rows in per_language_files(builder, folder, ".tsv", read):
        for i, row in enumerate(rows):
            builder.add(f"{code}:{row['id']}", row["text"], 0, code, where=f"{file} row {i + 1}",
                        category="eng_kw" if row["eng_kw_flag"] == "1" else None)


# --- parallel corpora ---------------------------------------------------------------------------------------

@register("flores200", folder="parallel/flores200_sib200", kind="parallel",
          description="FLORES-200 sentences via SIB-200, 205 varieties, multi-parallel",
          licence="CC BY-SA 4.0 (FLORES-200); Apache-2.0 (SIB-200)", labels="none",
          choice="one file per language (main FLORES script); category = SIB-200 topic; "
                 "splits train/dev/test")
def _flores200(folder: Path, builder: DatasetBuilder) -> None:
    topics = {r["index_id"]: r["sib200_category"]
              for r in _tsv(builder, ["index_id", "sib200_category"])(folder / "_topic_labels.tsv")}
    read = _tsv(builder, ["index_id", "text", "split"])
    for code, file, rows in per_language_files(builder, folder, ".tsv", read):
        for i, row in enumerate(rows):
            idx = row["index_id"]
            builder.add(f"{code}:{idx}", row["text"], None, code, group=idx, category=topics.get(idx),
                        split=row["split"], where=f"{file} row {i + 1}")


@register("ntrex128", folder="parallel/ntrex128", kind="parallel",
          description="NTREX-128 news sentences, 128 languages + English source, multi-parallel",
          licence="CC BY-SA 4.0", labels="none",
          choice="eng.src for English; regional variants and the second Spanish reference dropped")
def _ntrex128(folder: Path, builder: DatasetBuilder) -> None:
    read = partial(read_lines, dataset=builder.name)
    for code, file, lines in per_language_files(builder, folder, ".txt", read, prefer=["eng.src"]):
        stem = file.removesuffix(".txt")
        for i, line in enumerate(lines):
            builder.add(f"{stem}:{i}", line, None, code, group=str(i), where=f"{file} line {i + 1}")


@register("tatoeba_pairs", folder="parallel/tatoeba_laser", kind="parallel",
          description="Tatoeba pairs for br, fy, la with English (bilingual, not multi-parallel)",
          licence="CC BY 2.0 FR (Tatoeba)", labels="none", choice="both sides emitted; a pair is a group")
def _tatoeba_pairs(folder: Path, builder: DatasetBuilder) -> None:
    paths = sorted(folder.glob("*-eng.tsv"))
    if not paths:
        raise DataError(f"dataset '{builder.name}': no *-eng.tsv files in {folder}")
    for path in paths:
        code = path.name.split("-")[0]
        for i, row in enumerate(_tsv(builder, [code, "eng"])(path)):
            where = f"{path.name} row {i + 1}"
            for side in (code, "eng"):
                builder.add(f"{code}-{i}:{side}", row[side], None, side, group=f"{code}-{i}", where=where)
