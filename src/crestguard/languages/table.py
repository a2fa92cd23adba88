"""The language table: one row per language, and lookups from any code used in the data to a row.

The rows live in ``languages.tsv`` beside this file (XLM-R's 100 languages plus the other languages found in
``../shared/data``). A code is matched case-insensitively, with ``-`` and ``_`` alike, in this order:

1. an explicit key of a row: its canonical code, its aliases, its FLORES-200 codes;
2. a derived key: ISO 639-1, ISO 639-3, and either joined to the row's script (``srp-Cyrl``, ``hi-Latn``);
   when two rows share a derived key, the row whose canonical code *is* that ISO code wins (``bn`` over ``bn_rom``);
3. a locale tag ``lang[-Script]-REGION`` (``ko-KR``, ``en_US``, ``por-BR``): the region is dropped and the rest
   looked up by rules 1-2, except for languages split by script (``zh-Hans``/``zh-Hant``), where a region the table
   does not list says nothing certain about the script.

Anything else raises :class:`~crestguard.errors.UnknownLanguageError`: codes are never guessed.

Example:
    >>> from crestguard import languages
    >>> languages.resolve("iw"), languages.resolve("zho-TW"), languages.resolve("en_US")
    ('he', 'zh-Hant', 'en')
    >>> languages.get("fil").cluster
    8
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from crestguard.errors import DataError, UnknownLanguageError

TABLE_PATH = Path(__file__).with_name("languages.tsv")

_COLUMNS = ["code", "iso639_1", "iso639_3", "name", "script", "flores", "cc100_gib", "cluster", "in_xlmr", "aliases",
            "note"]
_SCRIPT = re.compile(r"[a-z]{4}")
_REGION = re.compile(r"[a-z]{2}|[0-9]{3}")


@dataclass(frozen=True)
class Language:
    """One row of the language table.

    Attributes:
        code: canonical code (XLM-R's code for its languages, e.g. ``zh-Hans``, ``bn_rom``; else ISO 639-1 or 639-3).
        iso639_1: ISO 639-1 code, or ``""`` when the language has none.
        iso639_3: ISO 639-3 code (the macrolanguage code where one exists, e.g. ``ara``, ``fas``).
        name: English name.
        script: ISO 15924 code of the main script (``Latn``, ``Cyrl``, ``Hans``...).
        flores: FLORES-200 codes, the main one first; empty when FLORES-200 lacks the language.
        cc100_gib: CC-100 size in GiB from the XLM-R paper's Table 6 (``None`` outside XLM-R).
        cluster: the CREST paper's Table 8 cluster (1-8), or ``None`` when Table 8 omits the language.
        in_xlmr: whether the language is one of XLM-R's 100 pre-training languages.
        aliases: other codes that name this row (``iw`` for Hebrew, ``fil`` for Tagalog...).
        note: why a mapping is what it is.
    """

    code: str
    iso639_1: str
    iso639_3: str
    name: str
    script: str
    flores: tuple[str, ...]
    cc100_gib: float | None
    cluster: int | None
    in_xlmr: bool
    aliases: tuple[str, ...]
    note: str

    @property
    def flores_code(self) -> str | None:
        """The main FLORES-200 code, or ``None`` when FLORES-200 lacks the language."""
        return self.flores[0] if self.flores else None

    @property
    def is_variant(self) -> bool:
        """True for rows whose code is not their ISO code: romanized/Zawgyi variants and ``zh-Hans``/``zh-Hant``."""
        return self.code not in (self.iso639_1, self.iso639_3)


def normalize(code: str) -> str:
    """The lookup key of a code: stripped, lower-case, ``_`` turned into ``-``."""
    return code.strip().lower().replace("_", "-")


class LanguageTable:
    """The parsed table and its index from every accepted key to a row.

    Args:
        path: the TSV file (``#`` lines are comments, then a header row with the columns of :class:`Language`).

    Raises:
        DataError: a malformed row, or two rows claiming the same code.
    """

    def __init__(self, path: Path = TABLE_PATH):
        self.path = Path(path)
        self.rows: list[Language] = []
        self._index: dict[str, Language] = {}
        self._parse()
        self._build_index()

    def _error(self, line: int, what: str) -> DataError:
        return DataError(f"{self.path}, line {line}: {what}")

    def _parse(self) -> None:
        with self.path.open(encoding="utf-8", newline="") as fh:
            lines = [(n, text) for n, text in enumerate(fh, 1) if not text.startswith("#")]
        reader = csv.reader((text for _, text in lines), delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != _COLUMNS:
            raise self._error(lines[0][0] if lines else 1, f"header must be {_COLUMNS}, got {header}")
        for (line, _), cells in zip(lines[1:], reader):
            if len(cells) != len(_COLUMNS):
                raise self._error(line, f"expected {len(_COLUMNS)} tab-separated cells, got {len(cells)}")
            row = dict(zip(_COLUMNS, cells))
            try:
                lang = Language(
                    code=row["code"], iso639_1=row["iso639_1"], iso639_3=row["iso639_3"], name=row["name"],
                    script=row["script"], flores=_split(row["flores"]),
                    cc100_gib=float(row["cc100_gib"]) if row["cc100_gib"] else None,
                    cluster=int(row["cluster"]) if row["cluster"] else None,
                    in_xlmr={"true": True, "false": False}[row["in_xlmr"]],
                    aliases=_split(row["aliases"]), note=row["note"],
                )
            except (ValueError, KeyError) as exc:
                raise self._error(line, f"bad value ({exc})") from exc
            if not (lang.code and lang.iso639_3 and lang.name and _SCRIPT.fullmatch(lang.script.lower())):
                raise self._error(line, "code, iso639_3, name and a 4-letter script are required")
            if any(lang.code == seen.code for seen in self.rows):
                raise self._error(line, f"duplicate code {lang.code!r}")
            self.rows.append(lang)

    def _build_index(self) -> None:
        explicit: dict[str, Language] = {}
        for lang in self.rows:
            for key in map(normalize, (lang.code, *lang.aliases, *lang.flores)):
                if key in explicit and explicit[key] is not lang:
                    raise DataError(f"{self.path}: code {key!r} names both {explicit[key].code} and {lang.code}")
                explicit[key] = lang
        derived: dict[str, list[Language]] = {}
        for lang in self.rows:
            isos = [c for c in (lang.iso639_1, lang.iso639_3) if c]
            for key in dict.fromkeys(normalize(k) for iso in isos for k in (iso, f"{iso}-{lang.script}")):
                derived.setdefault(key, []).append(lang)
        for key, langs in derived.items():
            if key in explicit:
                continue
            main = [lang for lang in langs if not lang.is_variant] if len(langs) > 1 else langs
            if len(main) != 1:
                raise DataError(f"{self.path}: code {key!r} is shared by {[x.code for x in langs]}; "
                                "give it to one of them as an alias")
            explicit[key] = main[0]
        self._index = explicit

    def lookup(self, code: str) -> Language:
        """The row that ``code`` names (see the module docstring for the rules).

        Raises:
            UnknownLanguageError: the code is empty, unknown, or a region tag that does not settle the script.
        """
        if not isinstance(code, str) or not code.strip():
            raise UnknownLanguageError(f"Empty or non-text language code {code!r}.")
        key = normalize(code)
        if key in self._index:
            return self._index[key]
        parts = key.split("-")
        if len(parts) >= 2 and _REGION.fullmatch(parts[-1]) and (len(parts) == 2 or _SCRIPT.fullmatch(parts[-2])):
            base = self._index.get("-".join(parts[:-1]))
            if base is not None and not (len(parts) == 2 and base.is_variant):
                return base
            if base is not None:
                raise UnknownLanguageError(
                    f"Language code {code!r}: the region {parts[-1].upper()!r} does not say which script of "
                    f"{base.name.split(' (')[0]} is meant; use a script tag (e.g. {base.code!r}) or add an alias "
                    f"to {self.path.name}.")
        raise UnknownLanguageError(
            f"Unknown language code {code!r}: not in the language table ({self.path.name}). "
            "If it is a real language, add a row or an alias there; codes are never guessed.")

    def keys_for(self, lang: Language) -> list[str]:
        """Every normalized key that resolves to ``lang`` (without region tags), sorted."""
        return sorted(k for k, v in self._index.items() if v is lang)


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(",") if part.strip())


@cache
def table() -> LanguageTable:
    """The packaged table, parsed once on first use."""
    return LanguageTable()


def get(code: str) -> Language:
    """The :class:`Language` that any known code names (canonical, ISO 639-1/3, FLORES, Google, NTREX, locale...).

    Raises:
        UnknownLanguageError: the code is not in the table.
    """
    return table().lookup(code)


def resolve(code: str) -> str:
    """The canonical code of ``code`` (``"iw"`` -> ``"he"``, ``"zho_Hant"`` -> ``"zh-Hant"``, ``"ko-KR"`` -> ``"ko"``).

    Raises:
        UnknownLanguageError: the code is not in the table.
    """
    return table().lookup(code).code


def try_resolve(code: str) -> str | None:
    """Like :func:`resolve`, but ``None`` for an unknown code."""
    try:
        return resolve(code)
    except UnknownLanguageError:
        return None


def all_languages(xlmr_only: bool = True) -> list[Language]:
    """The rows of the table in code order: XLM-R's 100 languages, or every row with ``xlmr_only=False``."""
    return [lang for lang in table().rows if lang.in_xlmr or not xlmr_only]


def paper_clusters() -> dict[int, list[str]]:
    """The CREST paper's Table 8: cluster number -> canonical codes (both Chinese scripts under ``zh``'s cluster)."""
    clusters: dict[int, list[str]] = {}
    for lang in table().rows:
        if lang.cluster is not None:
            clusters.setdefault(lang.cluster, []).append(lang.code)
    return dict(sorted(clusters.items()))


def flores_code(code: str) -> str | None:
    """The main FLORES-200 code of the language ``code`` names, or ``None`` if FLORES-200 lacks it.

    Raises:
        UnknownLanguageError: the code is not in the table.
    """
    return get(code).flores_code
