"""``crestguard check``, ``crestguard export onnx | hf`` and ``crestguard guard calibrate | info``.

Exit codes of ``check`` (for shell pipelines): 0 nothing flagged; 1 at least one text flagged; 2 an error (bad
input, unknown model) or, with ``--file``, items that could not be checked (too large; written with an ``error``).
They are raised as ``SystemExit``: ``crestguard.cli.main`` runs click with ``standalone_mode=False``, which turns a
``typer.Exit`` into a return value that ``main`` does not pass on.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True)
export_app = typer.Typer(help="Export the guard to other runtimes.", no_args_is_help=True)
guard_app = typer.Typer(help="The guard: calibrate thresholds, describe a loaded guard.", no_args_is_help=True)


class Backend(str, Enum):
    torch = "torch"
    onnx = "onnx"


PRECISION_HELP = ("torch: fp32 (default), bf16, int8 (fast, but ~6% of labels differ from fp32; for 8 bits use "
                  "--backend onnx); onnx: int8 (default, 99.5% of fp32's labels), fp32.")
SENTENCES_HELP = ("How sentences are scored: only (inputs over one window sentence by sentence, not in windows), "
                  "long (their sentences besides their windows), all (every input's), off (windows only); default: "
                  "the model's own (crest-me5s: only). See docs/guard.md.")

BACKEND_HELP = ("Inference backend; default: onnx whenever onnxruntime is installed (int8, no torch; the shipped "
                "guard's graph is built once into the cache from its weights), else torch.")
ROWS_HELP = ("onnx: run the rows of a batch on all cores at once, one core each (faster on cores of its own, ~0.1 GB "
             "more memory; --no-rows on a CPU shared with busy work).")


def _load(model: str, backend: Optional[Backend], precision: Optional[str], thresholds: Optional[Path],
          threads: Optional[int] = None, rows: bool = True, **settings):
    from crestguard.guard.guard import load_guard

    with console.status(f"loading guard {model}") as status:
        return load_guard(model, backend=backend.value if backend else None, precision=precision,
                          thresholds=thresholds, threads=threads, rows=rows, progress=status.update, **settings)


def _show(verdict, guard) -> None:
    from rich.table import Table

    from crestguard.languages import get

    colour = "red" if verdict.unsafe else "green"
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row(f"[bold {colour}]{verdict.label.upper()}[/]",
                  f"score {verdict.score:.3f} {'≥' if verdict.score >= verdict.threshold else '<'} threshold "
                  f"{verdict.threshold:.3f}")
    if verdict.categories:
        top = sorted(verdict.categories.items(), key=lambda kv: -kv[1])[:3]
        flagged = ", ".join(f"[bold]{c}[/] {verdict.categories[c]:.2f}" for c in verdict.flagged_categories)
        table.add_row("categories", (flagged or "none over threshold") + " · top: "
                      + ", ".join(f"{c} {v:.2f}" for c, v in top))
    if verdict.language:
        lang = get(verdict.language)
        cluster = f" · cluster {verdict.cluster}" if verdict.cluster is not None else " · no CREST cluster"
        table.add_row("language", f"{lang.code} ({lang.name}){cluster} · confidence {verdict.language_confidence:.2f}"
                      + (" · [yellow]code-mixed[/]" if verdict.code_mixed else ""))
    elif guard.settings.langid:
        table.add_row("language", "undetermined")
    w = verdict.windows[verdict.decisive_window]
    sentences = sum(x.kind == "sentence" for x in verdict.windows)
    windows = len(verdict.windows) - sentences
    scored = " + ".join(f"{n} {kind}{'s' * (n != 1)}" for n, kind in ((windows, "window"), (sentences, "sentence"))
                        if n)
    table.add_row("windows", f"{scored} scored; decisive: {w.kind} #{w.index} (characters {w.start_char}-"
                  f"{w.end_char}, {w.tokens} tokens)")
    if verdict.normalized:
        table.add_row("normalized", ", ".join(f"{k} {v}" for k, v in verdict.normalized.items()))
    table.add_row("guard", f"{guard.name} ({guard.backend} {guard.precision})")
    Console().print(table)


def check(
    text: Optional[str] = typer.Argument(None, help="The text to check ('-' reads it from stdin)."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Check every item of a .txt (one per line), "
                                        ".jsonl or .csv file.", exists=True, dir_okay=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="JSON lines of verdicts (with --file; resumable: "
                                       "ids already in it are skipped)."),
    model: str = typer.Option("crest-me5s", "--model", "-m", help="Guard name under models/ or a model folder."),
    backend: Optional[Backend] = typer.Option(None, "--backend", help=BACKEND_HELP),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help=PRECISION_HELP),
    thresholds: Optional[Path] = typer.Option(None, "--thresholds", help="Threshold policy (YAML/JSON).",
                                              exists=True, dir_okay=False),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict (or the --file summary) as JSON."),
    text_field: str = typer.Option("text", "--text-field", help="Text column/key of .jsonl/.csv input."),
    id_field: str = typer.Option("id", "--id-field", help="Id column/key (default: the line or row number)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Windows per forward pass."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the model."),
    rows: bool = typer.Option(True, "--rows/--no-rows", help=ROWS_HELP),
    max_chars: int = typer.Option(200_000, "--max-chars", help="Refuse longer inputs."),
    sentences: Optional[str] = typer.Option(None, "--sentences", help=SENTENCES_HELP),
    ray: bool = typer.Option(False, "--ray", help="With --file: check on Ray Data, one guard per worker (a local "
                             "cluster, or the one at --ray-address / RAY_ADDRESS; pip install 'crestguard\\[ray]')."),
    ray_workers: Optional[int] = typer.Option(None, "--ray-workers", help="Ray workers, one CPU each (default: "
                                              "this machine's cores)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                              help="A running Ray cluster (default: start a local one)."),
) -> None:
    """Judge a text, or every item of a file. Exit code 1 when anything is flagged (0 when nothing is, 2 on error)."""
    from crestguard.errors import CrestGuardError

    if (text is None) == (file is None):
        raise CrestGuardError("Give either a TEXT or --file (not both).")
    if out is not None and file is None:
        raise CrestGuardError("--out goes with --file.")
    if file is not None and out is None:
        raise CrestGuardError("--file needs --out FILE.jsonl for the verdicts.")
    from crestguard.guard.files import check_file, count_items

    total = count_items(file, text_field, id_field) if file is not None else None  # a bad file fails before loading
    if ray:
        if file is None:
            raise CrestGuardError("--ray goes with --file.")
        from crestguard.guard.backends import available_cores
        from crestguard.guard.bulk import ray_rows
        from crestguard.guard.files import CHUNK

        rows_of = ray_rows(model, ray_workers or available_cores(), ray_address, batch_size=batch_size,
                           texts_per_call=CHUNK,
                           backend=backend.value if backend else None, precision=precision, thresholds=thresholds,
                           max_chars=max_chars, sentences=sentences)
        summary = check_file(None, file, out, text_field=text_field, id_field=id_field, console=console, total=total,
                             rows_of=rows_of)
        _summarize(summary, out, as_json)
    guard = _load(model, backend, precision, thresholds, threads, rows, batch_size=batch_size, max_chars=max_chars,
                  sentences=sentences)
    if text is not None:
        verdict = guard.check(sys.stdin.read() if text == "-" else text)
        if as_json:
            typer.echo(json.dumps(verdict.to_dict(), ensure_ascii=False))
        else:
            _show(verdict, guard)
        raise SystemExit(1 if verdict.unsafe else 0)
    summary = check_file(guard, file, out, text_field=text_field, id_field=id_field, console=console, total=total)
    _summarize(summary, out, as_json)


def _summarize(summary: dict, out: Path, as_json: bool) -> None:
    """Print the summary of a checked file and exit with the file's code."""
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        console.print(f"[bold]{summary['flagged']}[/] of {summary['total']} flagged ({summary['checked']} checked "
                      f"now, {summary['resumed']} already in {out}"
                      + (f", [red]{summary['errors']} could not be checked[/]" if summary["errors"] else "")
                      + (f", {summary['blank_skipped']} blank lines skipped" if summary["blank_skipped"] else "")
                      + ")", highlight=False)
    raise SystemExit(2 if summary["errors"] else 1 if summary["flagged"] else 0)


@export_app.command("onnx")
def export_onnx_cmd(
    model: str = typer.Option("crest-me5s", "--model", "-m", help="Guard name under models/ or a model folder."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the cache has it."),
) -> None:
    """Build the classifier's ONNX graphs (fp32 + int8) into the cache, keyed by the model's hash (models on the
    offline backbone with onnx and numpy alone; Hugging Face folders with torch)."""
    from crestguard.guard.guard import resolve_model_dir
    from crestguard.guard.onnx.export import META_NAME, export_onnx

    model_dir = resolve_model_dir(model)
    with console.status(f"exporting {model_dir.name}") as status:
        folder = export_onnx(model_dir, force=force, progress=status.update)
    meta = json.loads((folder / META_NAME).read_text())
    console.print(f"[green]ready[/] {folder}")
    for kind, info in meta["files"].items():
        console.print(f"  {kind:5s} {info['name']:18s} {info['bytes'] / 1e6:8.1f} MB")


@export_app.command("hf")
def export_hf_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (config.json, model.safetensors, "
                             "tokenizer, README.md model card)."),
    model: str = typer.Option("crest-me5s", "--model", "-m", help="Guard name or model folder."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that is not empty."),
) -> None:
    """Export the classifier as a Hugging Face folder: AutoModelForSequenceClassification and
    pipeline("text-classification") load it and give the guard's scores (needs torch)."""
    from crestguard.guard.export_hf import export_hf

    with console.status(f"exporting {model} to {out}"):
        folder = export_hf(model, out, force=force)
    console.print(f"[green]ready[/] {folder}: " + ", ".join(sorted(p.name for p in folder.iterdir())),
                  highlight=False)


@guard_app.command("info")
def info(
    model: str = typer.Option("crest-me5s", "--model", "-m"),
    backend: Optional[Backend] = typer.Option(None, "--backend", help=BACKEND_HELP),
    precision: Optional[str] = typer.Option(None, "--precision"),
    thresholds: Optional[Path] = typer.Option(None, "--thresholds", exists=True, dir_okay=False),
) -> None:
    """Describe a loaded guard as JSON: model hash, fingerprint, policy, windows, cost per 1k tokens."""
    guard = _load(model, backend, precision, thresholds)
    typer.echo(json.dumps(guard.describe(), indent=2, ensure_ascii=False))


@guard_app.command("calibrate")
def calibrate(
    out: Path = typer.Option(..., "--out", "-o", help="Threshold policy to write (.yaml or .json)."),
    model: str = typer.Option("crest-me5s", "--model", "-m"),
    dataset: list[str] = typer.Option([], "--dataset", "-d", help="Labelled dataset of the registry (repeatable; "
                                      "items reserved by the default evaluation suite are left out and counted)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Labelled .jsonl/.csv with text, label (0/1) and "
                                        "optionally lang.", exists=True, dir_okay=False),
    max_fpr: Optional[float] = typer.Option(None, "--max-fpr", help="Thresholds for this false-positive-rate "
                                            "ceiling instead of maximal F1."),
    min_per_class: int = typer.Option(20, "--min-per-class", help="Items of each class a language/cluster needs "
                                      "for its own threshold."),
    fit_temperature: bool = typer.Option(True, "--temperature/--no-temperature", help="Fit the temperature."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use at most this many items per dataset."),
) -> None:
    """Fit the temperature and global / per-language / per-cluster thresholds on a labelled set."""
    from rich.table import Table

    from crestguard.guard.files import load_labelled
    from crestguard.guard.thresholds import calibrate_thresholds

    items, notes = load_labelled(dataset, data, limit)
    for note in notes:
        console.print(f"[yellow]note[/] {note}", highlight=False)
    guard = _load(model, Backend.torch, None, None, langid=False)
    from rich.progress import track

    texts = [t for t, _, _ in items]
    chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    margins = [m for chunk in track(chunks, description=f"scoring {len(texts)} texts", console=console,
                                    transient=True) for m in guard.margins(chunk)]
    langs = [lang for _, _, lang in items]
    from crestguard.languages import get

    clusters = [get(lang).cluster if lang else None for lang in langs]
    policy = calibrate_thresholds(margins, [y for _, y, _ in items], langs, clusters, base=guard.policy,
                                  fit_t=fit_temperature, max_fpr=max_fpr, min_per_class=min_per_class)
    policy.save(out)
    table = Table(title=f"policy for {guard.name} -> {out}")
    table.add_column("scope")
    table.add_column("threshold", justify="right")
    table.add_row("temperature", f"{policy.temperature:.3f}")
    table.add_row("global", f"{policy.threshold:.3f}")
    for k, v in policy.languages.items():
        table.add_row(f"language {k}", f"{v:.3f}")
    for k, v in policy.clusters.items():
        table.add_row(f"cluster {k}", f"{v:.3f}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.add_typer(export_app, name="export")
    app.add_typer(guard_app, name="guard")
