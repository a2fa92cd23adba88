"""``crestguard languages list | show``."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

languages_app = typer.Typer(help="The language table: XLM-R's 100 languages, the paper's clusters, code lookups.",
                            no_args_is_help=True)
console = Console()


def _cell(value) -> str:
    return "" if value is None else str(value)


@languages_app.command("list")
def list_languages(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per language)."),
    cluster: Optional[int] = typer.Option(None, "--cluster", help="Only this cluster of the paper's Table 8 (1-8)."),
    every: bool = typer.Option(False, "--all", help="Also list the languages outside XLM-R found in the data."),
) -> None:
    """List the languages: code, name, script, FLORES-200 code, CC-100 size and the paper's cluster."""
    from crestguard.errors import CrestGuardError
    from crestguard.languages import all_languages, paper_clusters

    if cluster is not None and cluster not in paper_clusters():
        raise CrestGuardError(f"No cluster {cluster} in the paper's Table 8 (clusters: 1-{max(paper_clusters())}).")
    langs = [x for x in all_languages(xlmr_only=not every) if cluster is None or x.cluster == cluster]
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(x) for x in langs], ensure_ascii=False, indent=1))
        return
    title = f"{len(langs)} languages" + (f" in cluster {cluster}" if cluster is not None else "")
    table = Table(title=title)
    for col in ("code", "name", "script", "FLORES-200", "CC-100 GiB", "cluster") + (("XLM-R",) if every else ()):
        table.add_column(col, justify="right" if col in ("CC-100 GiB", "cluster") else "left")
    for x in langs:
        row = [x.code, x.name, x.script, ",".join(x.flores), _cell(x.cc100_gib), _cell(x.cluster)]
        table.add_row(*row, *(["yes" if x.in_xlmr else "no"] if every else []))
    console.print(table)


@languages_app.command("show")
def show(
    code: str = typer.Argument(..., help="Any code the table knows: he, iw, heb, heb_Hebr, he-IL..."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one language and every code that maps to it (locale tags such as he-IL are accepted too)."""
    from crestguard.languages.table import get, table

    lang = get(code)
    keys = table().keys_for(lang)
    if as_json:
        typer.echo(json.dumps({**dataclasses.asdict(lang), "accepted_codes": keys}, ensure_ascii=False, indent=1))
        return
    out = Table(title=f"{code} -> {lang.code}", show_header=False)
    out.add_column(style="bold")
    out.add_column()
    for field, value in dataclasses.asdict(lang).items():
        out.add_row(field, ", ".join(value) if isinstance(value, tuple) else _cell(value))
    out.add_row("accepted codes", ", ".join(keys))
    console.print(out)


def register(app: typer.Typer) -> None:
    """Add ``crestguard languages ...`` to the main app."""
    app.add_typer(languages_app, name="languages")
