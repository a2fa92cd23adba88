"""The cross-lingual transfer experiments (issue 7): train several mixes at an equal budget, evaluate each with the
harness, and compare in-domain vs out-of-domain languages per cluster.

A spec (``configs/experiments/transfer.yaml``)::

    base_recipe: configs/crest-me5s.yaml      # every run starts from this recipe ...
    set: {train_layers: 2, max_steps: 150}    # ... with these overrides (the equal budget)
    suite: default
    runs_dir: runs/experiments                # models and training logs (not committed)
    reports_dir: reports/experiments          # results.json / report.md / plots per run + the comparison
    runs:
      - {name: a_english, mix: configs/mixes/paper_faithful.yaml, languages: [en], group: transfer}
      - {name: x_hi, mix: configs/mixes/paper_faithful.yaml, languages: [hi], group: cross_cluster}

All runs share the persistent store of frozen-bottom states (:class:`~crestguard.training.frozen.BottomStore`), so
a text's frozen layers are computed once for every run and every evaluation (and for the shipped guard's, when it
trains the same number of layers). Runs already trained or evaluated are not repeated (``force`` redoes them).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from crestguard.errors import CrestGuardError
from crestguard.paths import REPO_ROOT

_RUN_KEYS = {"name", "mix", "languages", "group", "description", "set"}


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check an experiments spec.

    Raises:
        CrestGuardError: missing file, missing keys, unknown run keys or duplicate run names.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CrestGuardError(f"experiments spec not found: {path}")
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not spec.get("runs") or not spec.get("base_recipe"):
        raise CrestGuardError(f"{path}: needs 'base_recipe' and a non-empty 'runs' list")
    names = [r.get("name") for r in spec["runs"]]
    if len(set(names)) != len(names) or not all(names):
        raise CrestGuardError(f"{path}: every run needs a unique name")
    for run in spec["runs"]:
        if set(run) - _RUN_KEYS or "mix" not in run:
            raise CrestGuardError(f"{path}: run {run['name']!r}: keys among {sorted(_RUN_KEYS)}, 'mix' required")
    spec["path"] = str(path)
    return spec


def run_experiments(spec_path: str | Path, only: list[str] | None = None, force: bool = False,
                    console=None) -> list[dict[str, Any]]:
    """Train every run of the spec (or ``only`` these), then evaluate each, then write the comparison report.

    Training comes first for all runs, evaluation second, so the evaluations share the suite's frozen-bottom states
    (computed once). A run that already has a trained model (``summary.json``) is not retrained and one that has
    ``results.json`` is not re-evaluated, unless ``force``.

    Returns:
        One entry per run: name, model folder, results path.
    """
    from crestguard.training.config import load_config
    from crestguard.training.evaluate import evaluate_model
    from crestguard.training.mix import load_mix
    from crestguard.training.report import write_experiments_report
    from crestguard.training.trainer import SUMMARY_NAME, train

    spec = load_spec(spec_path)
    reports = REPO_ROOT / spec.get("reports_dir", "reports/experiments")
    runs_dir = REPO_ROOT / spec.get("runs_dir", "runs/experiments")
    runs = [r for r in spec["runs"] if not only or r["name"] in only]
    for run in runs:
        summary_path = runs_dir / run["name"] / SUMMARY_NAME
        if summary_path.is_file() and not force:
            continue
        overrides = {**spec.get("set", {}), **run.get("set", {}), "mix": run["mix"],
                     "out_dir": str(runs_dir / run["name"]), "notes": f"experiment {run['name']}"}
        cfg = load_config(REPO_ROOT / spec["base_recipe"], overrides)
        langs = run.get("languages")
        mix = load_mix(REPO_ROOT / run["mix"], languages=_selected() if langs == "selected" else langs)
        if console:
            console.rule(f"experiment {run['name']}: {len(mix.records)} rows, languages {', '.join(mix.languages)}")
        train(cfg, mix=mix, console=console)
    done = []
    for run in runs:
        out = reports / run["name"]
        model_dir = runs_dir / run["name"] / "model"
        if force or not (out / "results.json").is_file():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(runs_dir / run["name"] / SUMMARY_NAME, out / "training_summary.json")
            evaluate_model(model_dir, out, suite=spec.get("suite", "default"), name=run["name"])
        done.append({"name": run["name"], "model": str(model_dir), "results": str(out / "results.json")})
    write_experiments_report(spec, reports)
    return done


def _selected() -> list[str]:
    from crestguard.training.mix import selected_languages

    return selected_languages()
