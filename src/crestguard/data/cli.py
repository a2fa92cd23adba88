"""``crestguard data list | show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

data_app = typer.Typer(help="Datasets: list the registry, show one dataset with its validation report.",
                       no_args_is_help=True)
console = Console()

DATA_DIR = typer.Option(None, "--data-dir", help="Data directory (default: $CRESTGUARD_DATA or "
                                                  "../shared/data).")


def _labels(labels: dict[str, int]) -> str:
    return " ".join(f"{k}:{v:,}" for k, v in labels.items())


def _langs(langs: dict[str, int], n: int = 3) -> str:
    if len(langs) <= n:
        return ",".join(langs)
    return f"{len(langs)} ({','.join(list(langs)[:n])}…)"


def _markdown(rows: list[dict]) -> str:
    from crestguard.data.registry import get_info

    lines = ["| name | kind | rows | labels | languages | licence | choice made |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        info = get_info(r["name"])
        size = f"{r['rows']:,}" if r["rows"] is not None else f"hub: `{info.hub_id}`"
        labels = _labels(r["labels"]) or info.labels
        cells = [r["name"], r["kind"], size, labels, _langs(r["languages"], 10), r["licence"],
                 info.choice or info.labels]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


@data_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per dataset)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the Markdown table of DATASETS.md."),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only one kind: benchmark, training, benign, "
                                                            "parallel or hub."),
    data_dir: Optional[Path] = DATA_DIR,
    refresh: bool = typer.Option(False, "--refresh", help="Reload every dataset, ignoring cached counts."),
) -> None:
    """Every dataset: rows, label balance, languages, licence (counts cached per folder state)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from crestguard.data.registry import KINDS, get_info, list_datasets, summarize
    from crestguard.errors import CrestGuardError

    if kind is not None and kind not in KINDS:
        raise CrestGuardError(f"Unknown kind {kind!r} (kinds: {', '.join(KINDS)}).")
    names = list_datasets(kind)
    rows = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("loading datasets", total=len(names))
        for name in names:
            bar.update(task, description=f"loading {name}")
            info = get_info(name)
            if info.kind == "hub":
                rows.append({"name": name, "kind": "hub", "rows": None, "labels": {}, "languages": {},
                             "licence": info.licence, "hub_id": info.hub_id})
            else:
                rows.append(summarize(name, data_dir, refresh=refresh))
            bar.advance(task)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if markdown:
        typer.echo(_markdown(rows))
        return
    table = Table(title=f"{len(rows)} datasets")
    for col in ("name", "kind", "rows", "labels", "languages", "licence"):
        table.add_column(col, justify="right" if col == "rows" else "left", overflow="fold",
                         no_wrap=col in ("name", "kind", "rows"))
    for r in rows:
        if r["rows"] is None:
            table.add_row(r["name"], "hub", "-", "", "", f"{r['licence']} [dim]{r['hub_id']}[/]")
        else:
            table.add_row(r["name"], r["kind"], f"{r['rows']:,}", _labels(r["labels"]),
                          _langs(r["languages"]), r["licence"])
    console.print(table)


@data_app.command("show")
def show(
    name: str = typer.Argument(..., help="A dataset name from `crestguard data list`."),
    examples: int = typer.Option(3, "--examples", "-n", help="Example rows per label."),
    data_dir: Optional[Path] = DATA_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (metadata, summary, report)."),
) -> None:
    """One dataset: metadata, validation report (every issue with examples) and a few example rows."""
    from crestguard.data.registry import load_dataset

    with console.status(f"loading {name}"):
        ds = load_dataset(name, data_dir)
    summary = ds.summary()
    if as_json:
        typer.echo(json.dumps({"metadata": ds.metadata, "summary": summary, "report": ds.report.to_dict()},
                              ensure_ascii=False))
        return
    meta = Table(title=f"dataset {name}", show_header=False)
    meta.add_column(style="bold")
    meta.add_column(overflow="fold")
    counts = {"rows": f"{len(ds.records):,}", "labels": _labels(summary["labels"]),
              "languages": ", ".join(f"{k} {v:,}" for k, v in summary["languages"].items()),
              "splits": ", ".join(f"{k} {v:,}" for k, v in summary["splits"].items())}
    for key, value in {**ds.metadata, **counts}.items():
        if value:
            meta.add_row(key, str(value))
    console.print(meta)

    if ds.report.issues:
        report = Table(title=f"validation: {ds.report.summary()}")
        for col in ("issue", "count", "dropped", "examples"):
            report.add_column(col, overflow="fold")
        for issue in ds.report.issues.values():
            report.add_row(issue.kind, f"{issue.count:,}", "yes" if issue.dropped else "no (kept)",
                           "\n".join(issue.examples))
        console.print(report)
    else:
        console.print(f"[green]validation: {ds.report.summary()}, no issues[/]")

    sample = Table(title="examples")
    for col in ("id", "label", "lang", "group", "category", "text"):
        sample.add_column(col, overflow="fold")
    for label in ds.label_counts():
        for r in [r for r in ds.records if r.label == label][:examples]:
            text = r.text if len(r.text) <= 160 else r.text[:160] + "…"
            sample.add_row(r.id, str(r.label), r.lang, r.group, r.category or "", text)
    console.print(sample)


def register(app: typer.Typer) -> None:
    """Add ``crestguard data ...`` to the main app."""
    app.add_typer(data_app, name="data")
