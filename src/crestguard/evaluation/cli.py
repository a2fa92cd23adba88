"""``crestguard eval [run] | compare | manifest | baseline | suite``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

eval_app = typer.Typer(
    help="Evaluate a classifier on a suite (per benchmark, language, cluster; FPR; plots), compare results, "
         "maintain the reserved-items manifest, train the frozen-backbone baselines.",
    invoke_without_command=True,
)
console = Console()

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="flag-all, a baseline name (lr-en, lr-all) "
                                                 "or model.json, a guard (NAME or guard:NAME), or py:MODULE:FACTORY.")]
SuiteOpt = Annotated[str, typer.Option("--suite", "-s", help="Suite name (configs/suites/NAME.yaml) or path.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Directory for results.json, report.md, plots.")]
DataOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Data directory (default ../shared/data).")]
ThrOpt = Annotated[Optional[float], typer.Option("--threshold", help="Flag when score >= this (default: the "
                                                 "model's own, else 0.5).")]
LangsOpt = Annotated[Optional[str], typer.Option("--train-langs", help="Comma-separated languages of the unsafe "
                                                 "training data (ID; the rest OOD); default: the model's.")]
SourcesOpt = Annotated[Optional[str], typer.Option("--train-sources", help="Comma-separated training datasets "
                                                   "(seen vs unseen benign sources); default: the model's.")]
BootOpt = Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the 95% intervals.")]


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _run(model, suite, out, data_dir, threshold, train_langs, train_sources, bootstrap) -> None:
    from crestguard.evaluation.harness import Settings, run
    from crestguard.evaluation.report import pct

    _check_manifest_fresh(suite)
    res = run(model, suite, out, data_dir, _split(train_langs), _split(train_sources),
              Settings(threshold=threshold, n_boot=bootstrap))
    t = res["timing"]
    console.print(f"[green]done[/] {res['model']['name']} on {res['suite']['name']}: {t['n_items']} items in "
                  f"{t['seconds']:.0f} s ({t['n_scored_now']} scored now)")
    m = res["macro"]
    console.print(f"macro over {m['f1_balanced']['n_groups']} languages: balanced F1 "
                  f"{pct(m['f1_balanced']['value'])}, FPR {pct(m['fpr']['value'])} "
                  f"(over {m['fpr']['n_groups']} languages)")
    if out is not None:
        console.print(f"wrote {out}/results.json, report.md, per_language.png, cluster_heatmap.png, reliability.png")


def _check_manifest_fresh(suite: str) -> None:
    from crestguard.evaluation.errors import EvaluationError
    from crestguard.evaluation.manifest import manifest_path, read
    from crestguard.evaluation.suite import load_suite

    su = load_suite(suite)
    try:
        m = read(manifest_path(su.name))
    except EvaluationError:
        console.print(f"[yellow]warning:[/] suite {su.name!r} has no committed manifest: "
                      f"run `crestguard eval manifest --suite {suite}`")
        return
    if m.suite_sha256 != su.sha256:
        console.print(f"[yellow]warning:[/] the manifest of suite {su.name!r} was built from another version of "
                      f"{su.path.name}: run `crestguard eval manifest --suite {suite}`")


@eval_app.callback()
def eval_main(
    ctx: typer.Context,
    model: ModelOpt = None,
    suite: SuiteOpt = "default",
    out: OutOpt = None,
    data_dir: DataOpt = None,
    threshold: ThrOpt = None,
    train_langs: LangsOpt = None,
    train_sources: SourcesOpt = None,
    bootstrap: BootOpt = 1000,
) -> None:
    """Evaluate a model on a suite: `crestguard eval --model lr-en --out DIR` (same as `eval run`)."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    _run(model, suite, out, data_dir, threshold, train_langs, train_sources, bootstrap)


@eval_app.command("run")
def run_cmd(
    model: ModelOpt = None,
    suite: SuiteOpt = "default",
    out: OutOpt = None,
    data_dir: DataOpt = None,
    threshold: ThrOpt = None,
    train_langs: LangsOpt = None,
    train_sources: SourcesOpt = None,
    bootstrap: BootOpt = 1000,
) -> None:
    """Evaluate a model on a suite and write results.json, report.md and the plots to --out."""
    if model is None:
        raise typer.BadParameter("--model is required", param_hint="--model")
    _run(model, suite, out, data_dir, threshold, train_langs, train_sources, bootstrap)


@eval_app.command("compare")
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="results.json (or its directory) of model A.")],
    b: Annotated[Path, typer.Argument(help="results.json (or its directory) of model B.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the Markdown here.")] = None,
) -> None:
    """Two results side by side: per benchmark, macro, ID/OOD, cluster and FPR by form (B − A)."""
    from rich.markdown import Markdown

    from crestguard.evaluation.report import read_results, render_compare

    text = render_compare(read_results(a), read_results(b))
    console.print(Markdown(text))
    if out is not None:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@eval_app.command("report")
def report_cmd(
    results: Annotated[Path, typer.Argument(help="results.json (or its directory).")],
) -> None:
    """Re-render report.md and the plots beside an existing results.json (no scoring)."""
    from crestguard.evaluation.report import read_results, write_all

    path = results if results.is_dir() else results.parent
    write_all(read_results(results), path, write_json=False)
    console.print(f"wrote {path}/report.md and the plots")


@eval_app.command("manifest")
def manifest_cmd(
    suite: SuiteOpt = "default",
    data_dir: DataOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Verify the committed manifest instead of writing.")] = False,
) -> None:
    """Build the reserved-items manifest of a suite (configs/suites/NAME.manifest.jsonl.gz)."""
    from crestguard.evaluation import manifest as mf
    from crestguard.evaluation.errors import EvaluationError
    from crestguard.evaluation.suite import default_loader, load_suite, materialize_reserved

    su = load_suite(suite)
    with console.status(f"loading the {len(su.datasets)} datasets of suite {su.name!r} (and {su.also_reserve})"):
        m = mf.build(su, materialize_reserved(su, default_loader(data_dir)))
    path = mf.manifest_path(su.name)
    summary = (f"{len(m.datasets)} whole datasets, {len(m.groups)} groups of {len({d for d, _ in m.groups})} "
               f"sampled datasets, {len(m.texts)} text keys")
    if check:
        if not path.is_file() or path.read_bytes() != mf.to_bytes(m):
            raise EvaluationError(f"{path} is out of date with suite {su.name!r} and the data: "
                                  f"run `crestguard eval manifest --suite {suite}`")
        console.print(f"[green]up to date[/] {path} ({summary})")
        return
    mf.write(m, path)
    console.print(f"wrote {path} ({summary})")


@eval_app.command("peers")
def peers_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="The model (a guard NAME, guard:NAME, or any model spec "
                                       "of `crestguard eval`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for peers.{json,md}, results.json, report.md.")],
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only this many groups per language of each set: a "
                                                 "test run, marked as not comparable.")] = None,
    sets: Annotated[Optional[str], typer.Option("--sets", help="Comma-separated set names of the peer suite.")] = None,
    data_dir: DataOpt = None,
) -> None:
    """Score the peer suite (once per release) and write our figure beside every published peer figure on the same
    items, same metric (../shared/peer_eval/peer_figures/peer_figures.csv): peers.json and peers.md."""
    from crestguard.evaluation.peers import run

    doc = run(model, out, limit, _split(sets), data_dir)
    n = sum(r["ours"] is not None for r in doc["rows"])
    console.print(f"[green]done[/] {doc['model']['name']}: {n} of {len(doc['rows'])} published figures with ours "
                  f"beside them; wrote {out}/peers.md, peers.json, results.json, report.md")


@eval_app.command("curve")
def curve_cmd(
    results: Annotated[list[Path], typer.Argument(help="results.json files (or their directories) of one or more "
                                                  "models on suite v2.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The PNG to write.")] = Path("tradeoff.png"),
) -> None:
    """One plot of recall on the unsafe sets against FPR on real user prompts, for several results."""
    from crestguard.evaluation.plots import tradeoff
    from crestguard.evaluation.report import read_results

    tradeoff([read_results(r) for r in results], out)
    console.print(f"wrote {out}")


@eval_app.command("baseline")
def baseline_cmd(
    name: Annotated[str, typer.Argument(help="Baseline folder under reports/baselines/ (lr-en, lr-all) or a "
                                       "recipe.yaml path.")],
    data_dir: DataOpt = None,
) -> None:
    """Train a frozen-backbone logistic-regression baseline from its recipe; writes model.json beside it."""
    from crestguard.evaluation.baselines import train_baseline
    from crestguard.evaluation.classifiers import BASELINES_DIR
    from crestguard.evaluation.suite import default_loader

    recipe = Path(name) if Path(name).exists() else BASELINES_DIR / name / "recipe.yaml"
    path = train_baseline(recipe, default_loader(data_dir))
    console.print(f"wrote {path}")


@eval_app.command("suite")
def suite_cmd(suite: SuiteOpt = "default", data_dir: DataOpt = None) -> None:
    """List a suite's sets: items, labels, languages and what was left out."""
    from rich.table import Table

    from crestguard.evaluation.suite import default_loader, load_suite, materialize

    su = load_suite(suite)
    with console.status(f"loading suite {su.name!r}"):
        sets = materialize(su, default_loader(data_dir))
    table = Table(title=f"suite {su.name} v{su.version} ({sum(len(s.records) for s in sets)} items)")
    table.add_column("set", no_wrap=True)
    for col in ("section", "items", "unsafe", "benign", "languages", "reserve", "left out"):
        table.add_column(col, justify="left" if col in ("section", "reserve") else "right")
    for s in sets:
        n_unsafe = sum(r.label == 1 for r in s.records)
        table.add_row(s.name, s.spec.section, str(len(s.records)), str(n_unsafe), str(len(s.records) - n_unsafe),
                      str(len({r.lang for r in s.records})), s.spec.reserve, str(sum(s.dropped.values())))
    console.print(table)
    for s in sets:
        if s.dropped:
            console.print(f"{s.name} left out: " + "; ".join(f"{k}: {v}" for k, v in s.dropped.items()))


@eval_app.command("robustness")
def robustness_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Guard model (name under models/ or a folder).")] =
    "crest-me5s",
    backend: Annotated[str, typer.Option(help="Guard backend: onnx (fast on CPUs) or torch.")] = "onnx",
    suite: SuiteOpt = "default",
    out: OutOpt = None,
    per_set: Annotated[int, typer.Option(help="Items sampled per set, spread over its languages.")] = 40,
    long_docs: Annotated[int, typer.Option(help="Long documents: buried MultiJail requests, benign news.")] = 30,
    normalizer_from: Annotated[Optional[str], typer.Option(help="Score with guard/normalize.py of this commit "
                                                           "and no payload decoding (a 'before').")] = None,
    sets: Annotated[Optional[str], typer.Option(help="Comma-separated sets of the suite (default: all).")] = None,
    before: Annotated[Optional[Path], typer.Option(help="results.json (or its folder) of an earlier run, shown "
                                                   "beside this one in report.md.")] = None,
    render_only: Annotated[bool, typer.Option(help="Re-render --out's report.md and plot from its results.json "
                                              "(with --before: add the earlier run).")] = False,
    data_dir: DataOpt = None,
) -> None:
    """Recall under obfuscation, encoding, romanization, code-switching, wrappers and long documents, and the FPR
    of the same variants of benign texts: results.json, report.md, robustness.png (crestguard.evaluation.robustness)."""
    from crestguard.evaluation.robustness import read_results, run, write

    if render_only:
        if out is None:
            raise typer.BadParameter("--render-only needs --out DIR (a folder with results.json)", param_hint="--out")
        write(read_results(out), out, before)
        console.print(f"wrote {out}/report.md, robustness.png")
        return
    res = run(model, backend, suite, out, per_set, long_docs, data_dir, normalizer_from, _split(sets), before,
              say=console.print)
    console.print(f"[green]done[/] in {res['seconds']:.0f} s" + (f": wrote {out}/report.md" if out else ""))


def register(app: typer.Typer) -> None:
    """Add ``crestguard eval`` to the root app."""
    app.add_typer(eval_app, name="eval")
