"""``crestguard cluster`` and ``crestguard select-languages``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from crestguard.clustering.pipeline import DEFAULT_OUT
from crestguard.errors import CrestGuardError

console = Console()


def _split(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def cluster(
    corpus: str = typer.Option(
        "flores200", help="Parallel corpus: flores200 (91 XLM-R languages) or ntrex128."
    ),
    backbone: str = typer.Option(
        "me5-small-q4", help="Encoder: registry name, Hugging Face id or local folder."
    ),
    layer: int = typer.Option(-1, help="Hidden state to mean-pool (-1 = last layer, 0 = embedding output)."),
    pooling: str = typer.Option("mean", help="mean (Eq. 1, over non-padding tokens) or cls."),
    sentences: int = typer.Option(
        200, help="Parallel sentences per language (the same ids in every language)."
    ),
    seed: int = typer.Option(0, help="Seeds the sentence draw, k-means, the halvings and t-SNE."),
    k: Optional[int] = typer.Option(None, "--k", help="Fix k instead of the elbow rule."),
    k_max: int = typer.Option(20, help="Largest k of the sweep."),
    n_init: int = typer.Option(100, help="k-means++ restarts per fit (each: Lloyd, then Hartigan moves)."),
    bf16: bool = typer.Option(
        True, "--bf16/--fp32", help="bfloat16 autocast (faster on CPUs with bf16 units) or fp32."
    ),
    max_length: int = typer.Option(512, help="Token limit; longer sentences are truncated and counted."),
    langs: Optional[str] = typer.Option(
        None, help="Comma-separated languages (default: every XLM-R language)."
    ),
    stability_seeds: int = typer.Option(10, help="Other k-means seeds to compare with."),
    halvings: int = typer.Option(5, help="Random splits of the sentences into two disjoint halves."),
    tsne_per_lang: int = typer.Option(20, help="Sentences per language in the t-SNE figure."),
    reference: Optional[Path] = typer.Option(None, help="Another run's clusters.json to compare with."),
    out: Path = typer.Option(DEFAULT_OUT, help="Output folder for clusters.json, clusters.md and the PNGs."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNGs."),
    refresh: bool = typer.Option(False, "--refresh", help="Recompute embeddings even if cached."),
    data_dir: Optional[Path] = typer.Option(None, help="Data directory (default: ../shared/data)."),
) -> None:
    """Cluster languages by their centroids in the encoder's space (CREST §3.1) and compare with the paper."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crestguard.clustering.pipeline import ClusterOptions, run_clustering

    opts = ClusterOptions(
        corpus=corpus,
        backbone=backbone,
        layer=layer,
        pooling=pooling,
        sentences=sentences,
        seed=seed,
        k=k,
        k_max=k_max,
        n_init=n_init,
        bf16=bf16,
        max_length=max_length,
        langs=_split(langs),
        stability_seeds=stability_seeds,
        halvings=halvings,
        tsne_per_lang=tsne_per_lang,
        data_dir=str(data_dir) if data_dir else None,
        refresh=refresh,
    )
    if reference is not None and not reference.is_file():
        raise CrestGuardError(f"--reference {reference}: file not found")
    t0 = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("languages", total=None)

        def on_lang(lang: str, done: int, total: int) -> None:
            bar.update(task, description=f"embedded {lang}", completed=done, total=total)

        result = run_clustering(
            opts,
            out,
            reference=reference,
            plots=plots,
            step=lambda s: console.print(f"[dim]{s}[/]"),
            progress=on_lang,
        )
    _print_clusters(result)
    console.print(
        f"wrote {out}/clusters.json, clusters.md{', PNGs' if plots else ''} in "
        f"{time.perf_counter() - t0:.1f} s ({result['embedding']['languages_computed_this_run']} "
        "languages embedded, the rest from the cache)"
    )


def _print_clusters(result: dict) -> None:
    p = result["paper_comparison"]
    table = Table(
        title=f"k = {result['k']['chosen']} ({result['k']['how']}); vs paper: ARI {p['ari']}, NMI {p['nmi']}"
    )
    table.add_column("cluster")
    table.add_column("languages")
    for cid, members in result["clusters"].items():
        table.add_row(cid, " ".join(members))
    console.print(table)


def select_languages(
    clusters: Path = typer.Option(
        DEFAULT_OUT / "clusters.json", help="A clusters.json from `crestguard cluster`."
    ),
    paper_clusters: bool = typer.Option(False, "--paper-clusters", help="Use the paper's Table 8 partition."),
    only: Optional[str] = typer.Option(None, help="Comma-separated languages that may be picked."),
    only_dataset: Optional[list[str]] = typer.Option(
        None, help="Only languages with labelled records in this dataset (repeatable; unions with --only)."
    ),
    high_gib: float = typer.Option(10.0, help="CC-100 GiB that makes a language high-resource."),
    resource_frac: float = typer.Option(
        0.25, help="Eligible: CC-100 size >= min(--high-gib, this x the cluster's largest)."
    ),
    resource_weight: float = typer.Option(
        2.0, help="Weight of the CC-100 size rank against the coverage rank."
    ),
    two_from: int = typer.Option(11, help="Clusters with at least this many members get a second pick."),
    max_per_cluster: int = typer.Option(2, help="Picks per cluster at most."),
    out: Optional[Path] = typer.Option(
        None,
        help="Output JSON (default: languages.json, or languages_paper.json "
        "with --paper-clusters, beside the clusters file).",
    ),
    data_dir: Optional[Path] = typer.Option(None, help="Data directory, for --only-dataset."),
) -> None:
    """Choose 1-2 training languages per cluster from CC-100 size and centrality; write languages.json."""
    from crestguard import languages
    from crestguard.clustering.report import display_path, write_selection_report
    from crestguard.clustering.selection import SelectionParams, selection_report

    if not clusters.is_file():
        raise CrestGuardError(f"{clusters} not found: run `crestguard cluster` first or pass --clusters")
    allowed = None
    if only or only_dataset:
        allowed = {languages.resolve(c) for c in _split(only) or ()}
        for name in only_dataset or []:
            from crestguard.data import load_dataset

            allowed |= {r.lang for r in load_dataset(name, data_dir).records if r.label is not None}
    params = SelectionParams(
        high_gib=high_gib,
        resource_frac=resource_frac,
        resource_weight=resource_weight,
        two_from=two_from,
        max_per_cluster=max_per_cluster,
    )
    doc = selection_report(json.loads(clusters.read_text(encoding="utf-8")), paper_clusters, allowed, params)
    default_out = clusters.with_name("languages_paper.json" if paper_clusters else "languages.json")
    out = out or default_out
    cmd = ["crestguard select-languages"]
    cmd += (
        [f"--clusters {display_path(clusters)}"]
        if clusters.resolve() != DEFAULT_OUT / "clusters.json"
        else []
    )
    cmd += ["--paper-clusters"] if paper_clusters else []
    cmd += [f"--only {only}"] if only else []
    cmd += [f"--only-dataset {d}" for d in only_dataset or []]
    cmd += [
        f"--{f.replace('_', '-')} {getattr(params, f)}"
        for f in ("high_gib", "resource_frac", "resource_weight", "two_from", "max_per_cluster")
        if getattr(params, f) != getattr(SelectionParams(), f)
    ]
    cmd += [f"--out {display_path(out)}"] if out.resolve() != default_out.resolve() else []
    write_selection_report({"command": " ".join(cmd), **doc}, out)

    table = Table(title=f"{len(doc['languages'])} training languages")
    for col in ("cluster", "pick", "language", "CC-100 GiB", "centrality"):
        table.add_column(col)
    for p in doc["picks"]:
        table.add_row(
            str(p["cluster"]), str(p["rank"]), p["lang"], f"{p['cc100_gib']:g}", f"{p['centrality']:.3f}"
        )
    console.print(table)
    cmp = doc["paper_selection_comparison"]
    console.print(
        f"vs the paper's 13: same {len(cmp['same'])}, only ours {cmp['only_ours']}, "
        f"only the paper {cmp['only_paper']}"
    )
    console.print(f"wrote {out} and {out.with_suffix('.md')}")


def register(app: typer.Typer) -> None:
    """Add ``cluster`` and ``select-languages`` to the ``crestguard`` app."""
    app.command("cluster")(cluster)
    app.command("select-languages")(select_languages)
