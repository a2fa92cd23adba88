"""The row loop shared by the loaders of :mod:`crestguard.data.prompts`, :mod:`~crestguard.data.harmful`,
:mod:`~crestguard.data.hate` and :mod:`~crestguard.data.injection`: read one file by its format, then hand every
row to :meth:`DatasetBuilder.add <crestguard.data.validation.DatasetBuilder.add>`.

A *field* says where a value comes from: a column name (``"question"``), a function of the row
(``lambda row: row["turns"][0]["content"]``) or ``None`` (no value). Labels and languages are constants or
functions of the row (a plain string there is a language code, never a column).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crestguard.data.readers import read_json, read_jsonl, read_table, require_columns
from crestguard.data.validation import DatasetBuilder
from crestguard.errors import DataError

Row = dict[str, Any]
Field = str | Callable[[Row], Any] | None
#: ``drop(row)`` returns ``(issue kind, note)`` for a row to leave out (counted), else ``None``.
Drop = Callable[[Row], tuple[str, str] | None]


def read_rows(path: Path, dataset: str, required: Sequence[str] = (), fmt: str | None = None,
              fallback: str | None = None) -> list[Row]:
    """The rows of a CSV, TSV, JSON Lines or JSON-array file (``fmt``, default from the suffix; ``.json`` is an
    array), each checked for the ``required`` columns. ``fallback``: the encoding of CSV/TSV lines that are not
    valid UTF-8 (:func:`~crestguard.data.readers.read_text`).

    Raises:
        DataError: the file is missing or malformed, or a required column is missing.
    """
    fmt = fmt or {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json"}.get(path.suffix, "")
    if fmt in ("csv", "tsv"):
        return read_table(path, dataset, required, delimiter="\t" if fmt == "tsv" else ",", fallback=fallback)
    if fmt == "jsonl":
        rows = read_jsonl(path, dataset)
    elif fmt == "json":
        rows = read_json(path, dataset)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DataError(f"dataset '{dataset}': {path} is not a JSON array of objects")
    else:
        raise DataError(f"dataset '{dataset}': {path}: unknown file format {fmt!r}")
    for i, row in enumerate(rows):
        require_columns(row, required, dataset, f"{path}, record {i + 1}")
    return rows


def value(field: Field, row: Row) -> Any:
    """The value ``field`` names in ``row`` (``None`` for a ``None`` field)."""
    if field is None:
        return None
    return field(row) if callable(field) else row[field]


def add_rows(builder: DatasetBuilder, path: Path, rows: Sequence[Row], *, text: Field, label: Any,
             lang: str | Callable[[Row], str], key: Field = None, group: Field = None, category: Field = None,
             split: Field = None, drop: Drop | None = None, prefix: str = "") -> None:
    """Add every row of ``path`` to ``builder``.

    Args:
        text, key, group, category, split: fields (see the module docstring); ``key`` ``None`` = the row number
            (0-based), ``group`` ``None`` = the key.
        label: 0, 1, ``None`` or a function of the row (an unmapped value is counted by the builder).
        lang: a language code or a function of the row.
        drop: rows it names are counted under its issue kind and not added.
        prefix: put before every key (``"train:"``), for datasets read from several files; an explicit
            ``group`` is not prefixed (it is the parallel key shared across files).
    """
    for i, row in enumerate(rows):
        where = f"{path.name} row {i + 1}"
        if drop is not None and (reason := drop(row)) is not None:
            builder.issue(reason[0], f"{where}: {reason[1]}")
            continue
        k = str(i) if key is None else str(value(key, row))
        g = value(group, row)
        builder.add(prefix + k, value(text, row), label(row) if callable(label) else label,
                    lang(row) if callable(lang) else lang, group=None if g is None else str(g),
                    category=value(category, row), split=value(split, row), where=where)


def load_file(builder: DatasetBuilder, path: Path, required: Sequence[str] = (), fmt: str | None = None,
              fallback: str | None = None, **fields: Any) -> None:
    """:func:`read_rows` then :func:`add_rows` (``fields`` are its keyword arguments)."""
    add_rows(builder, path, read_rows(path, builder.name, required, fmt, fallback), **fields)


def eval_overlap(column: str = "exact_match_eval") -> Drop:
    """A ``drop`` rule: rows whose ``column`` names evaluation sets holding the same text (issue
    ``eval_overlap``)."""
    def drop(row: Row) -> tuple[str, str] | None:
        match = row.get(column)
        return ("eval_overlap", f"{column}={match}") if match else None

    return drop


def mapped(column: str, mapping: dict[Any, int | None]) -> Callable[[Row], Any]:
    """A label function: ``mapping`` applied to ``column`` (empty or absent cell -> ``missing_field``, a value
    outside the mapping -> ``unknown_label``)."""
    from crestguard.data.validation import label_from

    return lambda row: label_from(mapping, None if row.get(column) == "" else row.get(column))


def joined(*columns: str, sep: str = "|") -> Callable[[Row], str | None]:
    """A category field: the non-empty cells of ``columns`` joined with ``sep`` (``None`` if all are empty)."""
    def field(row: Row) -> str | None:
        parts = [str(row[c]) for c in columns if row.get(c) not in (None, "")]
        return sep.join(parts) or None

    return field


def add_parallel(builder: DatasetBuilder, path: Path, rows: Sequence[Row], columns: dict[str, str],
                 group: Field = None, **fields: Any) -> None:
    """Add each row once per language, ``columns`` mapping a language code to the column that holds the row's
    text in it (a source text and its translation); ids are ``<row>:<lang>`` and ``group`` defaults to the row
    number, so a row's versions share a group. ``fields``: the other keywords of :func:`add_rows`."""
    numbered = [{**row, "_row": i} for i, row in enumerate(rows)]
    for lang, column in columns.items():
        add_rows(builder, path, numbered, text=column, lang=lang, key=lambda r, lang=lang: f"{r['_row']}:{lang}",
                 group="_row" if group is None else group, **fields)


def load_splits(builder: DatasetBuilder, files: dict[str, Path], required: Sequence[str] = (),
                fmt: str | None = None, **fields: Any) -> None:
    """:func:`load_file` for a dataset stored as one file per source split (``files``: split -> path): each row
    gets that split and the key prefix ``<split>:`` (unless ``fields`` give their own ``split``)."""
    for split, path in files.items():
        load_file(builder, path, required, fmt, **{"split": lambda r, s=split: s, **fields, "prefix": f"{split}:"})


def flags(columns: Sequence[str], on: Any = "1") -> Callable[[Row], str | None]:
    """A category field for multi-label sources: the names of the ``columns`` whose cell is ``on``,
    comma-joined (``None`` if none is set)."""
    return lambda row: ",".join(c for c in columns if row.get(c) == on) or None
