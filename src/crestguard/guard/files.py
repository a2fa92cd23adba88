"""Files in and out of the guard: streaming ``.txt``/``.jsonl``/``.csv`` input, resumable JSON-lines output, and
labelled sets for threshold calibration.

Input items get an id: the ``id`` key/column when present, else the line number (``.txt``, ``.jsonl``) or the data
row number (``.csv``, header excluded), counted from 1. Blank lines of a ``.txt`` file are skipped and counted.
Ids must be unique: the output is resumed by id.

The output holds one JSON object per item: ``{"id", "unsafe", "label", "score", "threshold", "language", ...}``
(:meth:`crestguard.guard.Verdict.to_dict`), or ``{"id", "error"}`` for an item that could not be checked (too
large). Each line is flushed when written; a run that is interrupted and started again skips the ids already in
the output (a torn last line is cut off first) and counts them in the totals.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, Sequence

from crestguard.errors import DataError

SUFFIXES = (".txt", ".jsonl", ".csv")
#: Texts per check_batch call when streaming a file.
CHUNK = 64


def _suffix(path: Path) -> str:
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unsupported input type {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    return path.suffix.lower()


def iter_items(path: Path, text_field: str = "text", id_field: str = "id",
               skipped: Counter | None = None) -> Iterator[tuple[str, dict]]:
    """Yield ``(id, row)`` for every item of ``path``; ``row[text_field]`` is the text (a string).

    Raises:
        DataError: not UTF-8, unreadable JSON, a missing text field, a non-string text, a duplicate id (naming the
            line).
    """
    try:
        yield from _items(path, _suffix(path), text_field, id_field, skipped if skipped is not None else Counter())
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _items(path: Path, kind: str, text_field: str, id_field: str, skipped: Counter) -> Iterator[tuple[str, dict]]:
    seen: set[str] = set()
    with open(path, encoding="utf-8", newline="" if kind == ".csv" else None) as fh:
        if kind == ".csv":
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or text_field not in reader.fieldnames:
                raise DataError(f"{path}: no column {text_field!r} (columns: {reader.fieldnames}); "
                                "choose one with --text-field")
            rows = ((n, row) for n, row in enumerate(reader, 1))
        else:
            rows = _text_rows(path, fh, kind, text_field, skipped)
        for n, row in rows:
            if not isinstance(row.get(text_field), str):
                raise DataError(f"{path}, item {n}: {text_field!r} is missing or not a string")
            item_id = str(row[id_field]) if row.get(id_field) not in (None, "") else str(n)
            if item_id in seen:
                raise DataError(f"{path}, item {n}: duplicate id {item_id!r} (ids must be unique to resume)")
            seen.add(item_id)
            yield item_id, row


def _text_rows(path: Path, fh, kind: str, text_field: str, skipped: Counter) -> Iterator[tuple[int, dict]]:
    for n, line in enumerate(fh, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            skipped["blank"] += 1
            continue
        if kind == ".txt":
            yield n, {text_field: line}
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}, line {n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


def count_items(path: Path, text_field: str = "text", id_field: str = "id") -> int:
    """Read ``path`` once without keeping it: the number of items, or the first problem as a :class:`DataError`
    (so that a bad file fails before a model is loaded)."""
    return sum(1 for _ in iter_items(path, text_field, id_field))


def read_done(out: Path) -> dict[str, dict]:
    """The items already in an output file, by id; a torn last line (interrupted write) is cut off.

    Raises:
        DataError: a malformed line before the last one (the file is not ours or was edited).
    """
    done: dict[str, dict] = {}
    if not out.is_file():
        return done
    data = out.read_bytes()
    complete, newline, torn = data.rpartition(b"\n")
    for n, raw in enumerate(complete.split(b"\n") if newline else [], 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            done[str(row["id"])] = row
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{out}, line {n}: not a verdict line; refusing to append to it") from None
    if torn:
        with open(out, "r+b") as fh:
            fh.truncate(len(complete) + len(newline))
    return done


def verdict_rows(guard, items: Sequence[tuple[str, str]]) -> list[dict]:
    """The output rows of ``(id, text)`` items: ``{"id", **verdict}``, or ``{"id", "error"}`` for a text over the
    guard's size limits."""
    from crestguard.guard.guard import InputTooLargeError

    try:
        results = list(zip(items, guard.check_batch([t for _, t in items])))
    except InputTooLargeError:  # find the oversized ones, check the others
        results = []
        for item in items:
            try:
                results.append((item, guard.check(item[1])))
            except InputTooLargeError as exc:
                results.append((item, exc))
    return [{"id": item_id, "error": str(v)} if isinstance(v, Exception) else {"id": item_id, **v.to_dict()}
            for (item_id, _), v in results]


def check_file(guard, path: Path, out: Path, text_field: str = "text", id_field: str = "id",
               console=None, total: int | None = None, rows_of: Callable | None = None) -> dict:
    """Check every item of ``path`` into ``out`` (see the module docstring), with a progress bar.

    Args:
        total: the number of items when already counted (:func:`count_items`), for the progress bar.
        rows_of: turns an iterator of chunks of ``(id, text)`` items into an iterator of lists of output rows
            (default: :func:`verdict_rows` of ``guard``, chunk by chunk; :mod:`crestguard.guard.bulk` runs the
            chunks on a Ray cluster instead).

    Returns:
        Counts: ``total`` items in the output, ``checked`` now, ``resumed`` (already there), ``flagged`` (in the whole
        output), ``errors`` (in the whole output), ``blank_skipped``.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done = read_done(out)
    flagged = sum(1 for r in done.values() if r.get("unsafe"))
    errors = sum(1 for r in done.values() if "error" in r)
    skipped: Counter = Counter()
    checked = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    total = total if total is not None else count_items(path, text_field, id_field)
    rows_of = rows_of or (lambda chunks: (verdict_rows(guard, chunk) for chunk in chunks))
    columns = (TextColumn("checking {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with open(out, "a", encoding="utf-8") as sink, Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(path.name, total=total, completed=len(done))

        def chunks() -> Iterator[list[tuple[str, str]]]:
            pending: list[tuple[str, str]] = []
            for item_id, row in iter_items(path, text_field, id_field, skipped):
                if item_id not in done:
                    pending.append((item_id, row[text_field]))
                if len(pending) >= CHUNK:
                    yield pending
                    pending = []
            if pending:
                yield pending

        for rows in rows_of(chunks()):
            for row in rows:
                flagged += bool(row.get("unsafe"))
                errors += "error" in row
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            checked += len(rows)
            bar.advance(task, len(rows))
    return {"total": len(done) + checked, "checked": checked, "resumed": len(done), "flagged": flagged,
            "errors": errors, "blank_skipped": skipped["blank"], "out": str(out)}


def load_labelled(datasets: Sequence[str], data: Path | None, limit: int | None = None
                  ) -> tuple[list[tuple[str, int, str | None]], list[str]]:
    """Labelled ``(text, label, canonical language)`` items from registry datasets and/or a file.

    Registry items reserved by the default evaluation suite are left out (and counted in the notes), so that a
    policy is never fit on evaluation items.

    Raises:
        DataError: no items, a label other than 0/1, an unknown language code.
    """
    from crestguard.languages import resolve

    items: list[tuple[str, int, str | None]] = []
    notes: list[str] = []
    if datasets:
        from crestguard.data import load_dataset
        from crestguard.errors import CrestGuardError

        try:
            from crestguard.evaluation.manifest import load_manifest

            manifest = load_manifest("default")
        except (CrestGuardError, ImportError) as exc:
            manifest = None
            notes.append(f"no evaluation manifest ({exc}); evaluation items are not excluded")
        for name in datasets:
            records = [r for r in load_dataset(name).records if r.label is not None]
            if manifest is not None:
                records, dropped = manifest.split(records)
                if sum(dropped.values()):
                    notes.append(f"{name}: {sum(dropped.values())} items reserved for evaluation left out")
            if limit is not None and len(records) > limit:
                notes.append(f"{name}: using {limit} of {len(records)} items (--limit)")
                records = records[:limit]
            items += [(r.text, int(r.label), resolve(r.lang) if r.lang else None) for r in records]
    if data is not None:
        for item_id, row in iter_items(data):
            label = row.get("label")
            if str(label) not in ("0", "1"):
                raise DataError(f"{data}, item {item_id}: label must be 0 or 1, got {label!r}")
            lang = row.get("lang") or None
            items.append((row["text"], int(label), resolve(lang) if lang else None))
    if not items:
        raise DataError("No labelled items: give --dataset NAME and/or --data FILE")
    return items, notes
