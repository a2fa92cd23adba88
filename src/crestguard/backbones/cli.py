"""``crestguard backbone prepare | info | check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

backbone_app = typer.Typer(help="Encoders: build the offline backbone, describe it, check it against the reference.",
                           no_args_is_help=True)
console = Console()


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _load_with_progress(name: str):
    """Load a backbone; building the offline one shows a progress bar."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from crestguard.backbones import load_backbone

    _quiet_transformers()
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"loading {name}", total=1.0)

        def report(stage: str, fraction: float) -> None:
            bar.update(task, description=stage, completed=fraction)

        return load_backbone(name, progress=report)


@backbone_app.command("prepare")
def prepare(
    name: str = typer.Argument("me5-small-q4", help="Backbone to build/download into the cache."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the cache has it."),
) -> None:
    """Build the backbone once (the offline one is dequantized into the cache; hub ids are downloaded)."""
    from crestguard.backbones import offline

    if force and name in ("me5-small-q4", "me5-small"):
        offline.materialize(force=True)
    bb = _load_with_progress(name)
    console.print(f"[green]ready[/] {bb.name} at {bb.info.path}")


@backbone_app.command("info")
def info(
    name: str = typer.Argument("me5-small-q4"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Describe a backbone: source files, hashes, cache folder, dimensions, parameters."""
    bb = _load_with_progress(name)
    data = bb.info.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"backbone {bb.name}", show_header=False)
    for key, value in data.items():
        if key == "extra":
            for k, v in value.items():
                if k not in data:
                    table.add_row(k, str(v))
        else:
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


@backbone_app.command("check")
def check(
    name: str = typer.Option("me5-small-q4", "--backbone", help="Backbone to check."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Reference JSON (default: ../shared/reference)."),
    as_json: bool = typer.Option(False, "--json", help="Last line: the summary as JSON."),
    min_cosine: float = typer.Option(0.9998, help="Fail (exit 1) below this cosine or on any id mismatch."),
) -> None:
    """Compare token ids and mean-pooled embeddings with the reference file."""
    from crestguard.backbones.check import check_backbone

    bb = _load_with_progress(name)
    result = check_backbone(bb, reference)
    table = Table(title=f"{bb.name} vs reference")
    for col in ("item", "ids", "cosine"):
        table.add_column(col)
    for row in result.rows:
        ok = "[green]equal[/]" if row["ids_equal"] else "[red]differ[/]"
        table.add_row(str(row["key"]), ok, f"{row['cosine']:.6f}")
    if not as_json:
        console.print(table)
    summary = result.summary()
    passed = result.ids_equal == result.items and result.min_cosine >= min_cosine
    console.print(f"{'[green]PASS' if passed else '[red]FAIL'}[/] {result.ids_equal}/{result.items} identical token ids, "
                  f"cosine min {result.min_cosine:.6f} mean {result.mean_cosine:.6f}", highlight=False)
    if as_json:
        typer.echo(json.dumps(summary))
    if not passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(backbone_app, name="backbone")
