"""``crestguard train run | mix | config``: fine-tune a classifier from a YAML recipe, print a mix, show a config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

train_app = typer.Typer(help="Fine-tune safety classifiers from YAML recipes (CREST §3.2, Table 10).",
                        no_args_is_help=True)
console = Console()


@train_app.command("run")
def run_cmd(
    recipe: Optional[Path] = typer.Argument(None, help="Recipe YAML (configs/*.yaml); omitted = the paper's defaults."),
    set_: List[str] = typer.Option([], "--set", help="Override a field: --set epochs=1 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (overrides out_dir)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint after an interruption."),
    install: Optional[Path] = typer.Option(None, "--install", help="Copy the trained model here (e.g. "
                                           "src/crestguard/models/crest-me5s; at most 25 MB)."),
    report: Optional[Path] = typer.Option(None, "--report", help="With --install: evaluate the installed model "
                                          "with the harness into this folder and write its MODEL_CARD.md."),
) -> None:
    """Train a classifier; writes OUT/model, OUT/log.jsonl, OUT/summary.json, OUT/checkpoint.

    Works alone and under `torchrun --nproc_per_node=N -m crestguard.training RECIPE` or `accelerate launch`.
    The default guard, from a fresh clone:
    `crestguard train run configs/crest-me5s.yaml --install src/crestguard/models/crest-me5s --report reports/training/crest-me5s`
    """
    from crestguard.training.config import load_config
    from crestguard.training.soup import train_soup
    from crestguard.training.trainer import train

    _quiet()
    overrides = list(set_) + ([f"out_dir={out}"] if out else [])
    cfg = load_config(recipe, overrides)
    summary = (train_soup if cfg.soup else train)(cfg, resume=resume, console=console)
    if not summary or not install:
        return
    from crestguard.training.artifact import install_model

    size = install_model(Path(summary["model_dir"]), install)
    console.print(f"installed into {install} ({size / 1e6:.1f} MB)")
    if report:
        from crestguard.evaluation import run
        from crestguard.evaluation.classifiers import GuardClassifier
        from crestguard.training.report import write_model_card

        # through the guard API, as served: one inference path for the CLI, the server and the evaluation
        clf = GuardClassifier(str(install))
        clf.name = f"guard:{install.name}"
        run(clf, suite="default", out_dir=report)
        (Path(report) / "training_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        command = " ".join(["crestguard train run", str(recipe or "")] + [f"--set {o}" for o in set_]
                           + ([f"--out {out}"] if out else []) + [f"--install {install}", f"--report {report}"])
        card = write_model_card(install, Path(cfg.out_dir) / "summary.json", report, command)
        console.print(f"wrote {report}/report.md and {card}")


@train_app.command("soup")
def soup_cmd(
    out: Path = typer.Argument(..., help="Output folder: OUT/model and OUT/summary.json."),
    runs: List[Path] = typer.Argument(..., help="Finished runs (folders with model/ and summary.json), two or more."),
) -> None:
    """Average the trained weights of finished runs into one model (a model soup), calibrated on what none of
    them trained on. A recipe with `soup:` does this itself (`crestguard train run RECIPE`)."""
    from crestguard.training.soup import build

    _quiet()
    build(runs, out, say=console.print)


@train_app.command("mix")
def mix_cmd(
    mix: Path = typer.Argument(..., help="Mix YAML (configs/mixes/*.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    languages: Optional[str] = typer.Option(None, help="Comma-separated languages replacing the file's `languages`."),
) -> None:
    """Build a training mix and print it: rows by source, language and label; what was refused and dropped."""
    from crestguard.training.mix import load_mix, print_mix

    m = load_mix(mix, languages=languages.split(",") if languages else None)
    if as_json:
        console.print_json(json.dumps(m.summary(), default=str))
    else:
        print_mix(m, console)


@train_app.command("evaluate")
def evaluate_cmd(
    model_dir: Path = typer.Argument(..., help="A trained model folder (e.g. src/crestguard/models/crest-me5s or RUN/model)."),
    out: Path = typer.Option(..., "--out", help="Where results.json, report.md and the plots go."),
    suite: str = typer.Option("default", help="Evaluation suite name or path."),
    name: Optional[str] = typer.Option(None, help="Model name in the report (default: the folder name)."),
) -> None:
    """Evaluate a trained model folder with the harness (in-process; the guard API's `crestguard eval` does the same
    through the runtime)."""
    from crestguard.training.evaluate import evaluate_model

    _quiet()
    evaluate_model(model_dir, out, suite=suite, name=name)
    console.print(f"wrote {out}/results.json, report.md and plots")


@train_app.command("experiments")
def experiments_cmd(
    spec: Path = typer.Argument(Path("configs/experiments/transfer.yaml"), help="Experiments spec YAML."),
    only: Optional[str] = typer.Option(None, help="Comma-separated run names (default: all)."),
    force: bool = typer.Option(False, "--force", help="Redo runs that already have results."),
    report_only: bool = typer.Option(False, "--report-only", help="Only rewrite the comparison from existing results."),
) -> None:
    """Train and evaluate the transfer experiments at an equal budget; write reports/experiments/README.md + plots."""
    from crestguard.training.experiments import load_spec, run_experiments
    from crestguard.training.report import write_experiments_report

    _quiet()
    if report_only:
        sp = load_spec(spec)
        from crestguard.paths import REPO_ROOT

        out = write_experiments_report(sp, REPO_ROOT / sp.get("reports_dir", "reports/experiments"))
    else:
        run_experiments(spec, only=only.split(",") if only else None, force=force, console=console)
        out = "reports/experiments/README.md"
    console.print(f"wrote {out}")


@train_app.command("config")
def config_cmd(recipe: Optional[Path] = typer.Argument(None), set_: List[str] = typer.Option([], "--set")) -> None:
    """Print the full config a recipe resolves to (every default filled in)."""
    from crestguard.training.config import load_config

    console.print_json(json.dumps(load_config(recipe, list(set_)).to_dict()))


def _quiet() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def register(app: typer.Typer) -> None:
    """Add ``crestguard train ...``."""
    app.add_typer(train_app, name="train")
