"""Plain readers for the files in ``../shared/data``: CSV/TSV, JSON, JSON lines (gzip), text lines.

Every reader raises :class:`~crestguard.errors.DataError` naming the dataset and the path when a file or a
column is missing or a file cannot be parsed. Bytes that are not valid UTF-8 are not an error here: they are
kept as lone surrogates (``errors="surrogateescape"``) so that
:class:`~crestguard.data.validation.DatasetBuilder` can count the rows that hold them and show examples.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from pathlib import Path
from typing import Any, Sequence

from crestguard.errors import DataError

#: Lone surrogates left by ``surrogateescape`` decoding: the marks of undecodable bytes.
UNDECODABLE = re.compile("[\udc80-\udcff]")


def _raw(path: Path, dataset: str) -> bytes:
    if not path.is_file():
        raise DataError(f"dataset '{dataset}': file not found: {path}")
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"dataset '{dataset}': {path} is not a valid gzip file ({exc})") from exc
    return data


def read_text(path: Path, dataset: str, fallback: str | None = None) -> str:
    """The whole file as text: UTF-8 without a BOM, undecodable bytes kept as lone surrogates; with
    ``fallback`` (e.g. ``"latin-1"``), a line that is not valid UTF-8 is decoded with that encoding instead."""
    data = _raw(path, dataset)
    if fallback is None:
        text = data.decode("utf-8", errors="surrogateescape")
    else:
        text = "\n".join(_decode_line(line, fallback) for line in data.split(b"\n"))
    return text.removeprefix("\ufeff")


def _decode_line(line: bytes, fallback: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode(fallback, errors="surrogateescape")


def read_table(path: Path, dataset: str, required: Sequence[str],
               delimiter: str = ",", fallback: str | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV (quoted, RFC 4180) or, with ``delimiter="\\t"``, a TSV without quoting.

    A row shorter than the header has ``None`` in its missing cells (counted later as ``missing_field``).
    ``fallback``: the encoding of lines that are not valid UTF-8 (see :func:`read_text`).

    Raises:
        DataError: the file or one of the ``required`` columns is missing, or the CSV is malformed.
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    text = io.StringIO(read_text(path, dataset, fallback), newline="")
    reader = csv.DictReader(text, delimiter=delimiter, quoting=quoting)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise DataError(f"dataset '{dataset}': {path} is not valid CSV "
                        f"(line {reader.line_num}: {exc})") from exc
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"dataset '{dataset}': {path} lacks column(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(reader.fieldnames or []) or 'no header'})")
    return rows


def read_json(path: Path, dataset: str) -> Any:
    """A JSON document.

    Raises:
        DataError: the file is missing or not valid JSON.
    """
    try:
        return json.loads(read_text(path, dataset))
    except json.JSONDecodeError as exc:
        raise DataError(f"dataset '{dataset}': {path} is not valid JSON ({exc})") from exc


def read_jsonl(path: Path, dataset: str) -> list[dict[str, Any]]:
    """JSON lines (gzip-compressed when the name ends in ``.gz``); blank lines are skipped.

    Raises:
        DataError: the file is missing or a line is not a JSON object.
    """
    rows = []
    for n, line in enumerate(read_text(path, dataset).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"dataset '{dataset}': {path}, line {n} is not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise DataError(f"dataset '{dataset}': {path}, line {n} is not a JSON object")
        rows.append(row)
    return rows


def read_lines(path: Path, dataset: str) -> list[str]:
    """One item per line (``\\n`` or ``\\r\\n``); a final newline does not make an extra empty item."""
    text = read_text(path, dataset)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def require_columns(row: dict[str, Any], required: Sequence[str], dataset: str, where: str) -> None:
    """Raise :class:`DataError` if a JSON record lacks one of ``required`` keys."""
    missing = [c for c in required if c not in row]
    if missing:
        raise DataError(f"dataset '{dataset}': {where} lacks field(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(row) or 'none'})")
