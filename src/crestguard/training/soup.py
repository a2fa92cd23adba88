"""Model soups: the trained tensors of several runs of one recipe averaged into one model (Wortsman et al., 2022,
"Model soups"), calibrated on what none of its members trained on.

Runs that start from the same weights (the offline backbone, the same seed) and train the same top layers on
different mixes land in one basin: the average of their weights scores better than either (measured on suite v2,
``reports/experiments/intent``), at the cost and size of one model.

A recipe with ``soup:`` trains its members and averages them (``crestguard train run RECIPE`` does both)::

    soup:                                  # members: the recipe's own fields with these overrides
      - {name: v2, set: {mix: configs/mixes/intent_v2_open.yaml}}
      - {name: v3, set: {mix: configs/mixes/intent_v3_open.yaml}}

Each member trains into ``OUT/members/<name>`` (resumed when it is there already); the soup is written to
``OUT/model`` with ``OUT/summary.json``. ``crestguard train soup OUT RUN...`` averages runs that exist.

Calibration: the threshold is chosen as a member's would be (:func:`crestguard.training.calibrate.calibrate` on the
calibration sources and validation split of the last member's mix), on the records that **no** member trained on:
each member's training split is rebuilt from its mix and seed, and its texts are left out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crestguard.errors import CrestGuardError
from crestguard.training.config import TrainConfig

MEMBERS_DIR = "members"
#: crest_config fields that every member must share (else the tensors do not average into one model).
SAME = ("backbone", "backbone_sha256", "architecture", "train_mode", "train_layers", "format")


class SoupError(CrestGuardError):
    """Members that do not make one model (other backbone, other trained tensors) or a malformed ``soup`` list."""


def member_configs(cfg: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """The members of a soup recipe: the recipe's fields with each member's ``set`` overrides, written to
    ``OUT/members/<name>``."""
    from crestguard.training.config import load_config

    if not isinstance(cfg.soup, list) or len(cfg.soup) < 2:
        raise SoupError(f"recipe {cfg.recipe}: 'soup' must list at least two members ({{name, set}})")
    out = []
    base = {k: v for k, v in cfg.to_dict().items() if k not in ("soup", "recipe")}
    for i, m in enumerate(cfg.soup):
        if not (isinstance(m, dict) and isinstance(m.get("name"), str) and set(m) <= {"name", "set"}
                and isinstance(m.get("set", {}), dict)):
            raise SoupError(f"recipe {cfg.recipe}: soup[{i}] must be {{name: NAME, set: {{field: value}}}}")
        values = {**base, **m.get("set", {}), "out_dir": str(Path(cfg.out_dir) / MEMBERS_DIR / m["name"]),
                  "notes": f"soup member {m['name']}", "soup": None}
        member = load_config(None, values)
        member.recipe = cfg.recipe
        out.append((m["name"], member))
    if len({n for n, _ in out}) != len(out):
        raise SoupError(f"recipe {cfg.recipe}: soup member names must differ")
    return out


def average(model_dirs: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The mean of the members' trained tensors (in float32, stored in the members' dtype) and the last member's
    config with the members' training sources and languages merged."""
    from safetensors.numpy import load_file

    from crestguard.modeling import CONFIG_NAME, DELTA_NAME

    configs = [json.loads((Path(d) / CONFIG_NAME).read_text()) for d in model_dirs]
    for key in SAME:
        if len({json.dumps(c.get(key)) for c in configs}) > 1:
            raise SoupError(f"soup members differ in {key!r}: {[c.get(key) for c in configs]}")
    tensors = [load_file(str(Path(d) / DELTA_NAME)) for d in model_dirs]
    keys = set(tensors[0])
    if any(set(t) != keys for t in tensors):
        raise SoupError("soup members trained different tensors")
    mean = {k: (sum(t[k].astype(np.float32) for t in tensors) / len(tensors)).astype(tensors[0][k].dtype)
            for k in sorted(keys)}
    merged = dict(configs[-1])
    for key in ("train_sources", "train_languages", "unsafe_languages"):
        merged[key] = sorted({x for c in configs for x in c.get(key) or ()})
    merged["mix"] = [c.get("mix") for c in configs]
    return mean, merged


def _trained_texts(summary: dict[str, Any]) -> set[str]:
    """The texts of a member's training split, rebuilt from its mix and seed."""
    from crestguard.data.splits import split_by_group
    from crestguard.training.mix import load_mix

    cfg = summary["config"]
    mix = load_mix(cfg["mix"])
    parts = split_by_group(mix.records, {"train": 1 - cfg["val_fraction"], "val": cfg["val_fraction"]},
                           seed=cfg["seed"])
    return {r.text for r in parts["train"]}


def build(members: Sequence[Path], out: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Average the models of the member runs (folders with ``model/`` and ``summary.json``) into ``out/model``,
    calibrate it on what no member trained on, and write ``out/summary.json``; return the summary."""
    from safetensors.numpy import save_file

    from crestguard.data.splits import split_by_group
    from crestguard.modeling import CONFIG_NAME, DELTA_NAME
    from crestguard.training.calibrate import calibrate
    from crestguard.training.evaluate import TrainedClassifier
    from crestguard.training.mix import load_mix
    from crestguard.training.trainer import MODEL_DIR, SUMMARY_NAME, calibration_records, write_threshold_policy

    t0 = time.monotonic()
    members = [Path(m) for m in members]
    if len(members) < 2:
        raise SoupError("a soup needs at least two member runs")
    summaries = []
    for m in members:
        if not (m / SUMMARY_NAME).is_file() or not (m / MODEL_DIR / DELTA_NAME).is_file():
            raise SoupError(f"{m}: not a finished run (no {SUMMARY_NAME} or {MODEL_DIR}/{DELTA_NAME})")
        summaries.append(json.loads((m / SUMMARY_NAME).read_text()))
    tensors, config = average([m / MODEL_DIR for m in members])
    model_dir = Path(out) / MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(model_dir / DELTA_NAME))
    config["notes"] = "soup of " + ", ".join(m.name for m in members)
    config["soup_of"] = [{"run": m.name, "mix": s["config"]["mix"], "steps": s.get("steps")}
                         for m, s in zip(members, summaries)]
    (model_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False))

    last = summaries[-1]["config"]
    mix = load_mix(last["mix"])
    parts = split_by_group(mix.records, {"train": 1 - last["val_fraction"], "val": last["val_fraction"]},
                           seed=last["seed"])
    trained = set().union(*(_trained_texts(s) for s in summaries))
    records = calibration_records(mix, parts["val"])
    kept = [r for r in records if r.text not in trained]
    say(f"soup of {len(members)} runs: calibrating on {len(kept)} of {len(records)} calibration records "
        f"({len(records) - len(kept)} left out: a member trained on them)")
    calib = calibrate(TrainedClassifier(model_dir), kept, mix.calibration_method)
    calib["left_out_trained_by_a_member"] = len(records) - len(kept)
    config["threshold"] = calib["threshold"]
    (model_dir / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False))
    write_threshold_policy(model_dir, calib)
    summary = {**summaries[-1], "soup": config["soup_of"], "calibration": calib, "model_dir": str(model_dir),
               "train_minutes": round(sum(s.get("train_minutes") or 0 for s in summaries), 2),
               "soup_minutes": round((time.monotonic() - t0) / 60, 2)}
    (Path(out) / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    say(f"saved {model_dir} (soup of {len(members)}; threshold {calib['threshold']:.3f})")
    return summary


def train_soup(cfg: TrainConfig, resume: bool = False, console=None) -> dict[str, Any]:
    """Train the members of a soup recipe and average them; a member whose finished run is there with the same
    training fields is reused, one that stopped part-way resumes from its checkpoint."""
    from crestguard.training.trainer import SUMMARY_NAME, _training_fields, train

    runs = []
    for name, member in member_configs(cfg):
        done = Path(member.out_dir) / SUMMARY_NAME
        finished = done.is_file() and (_training_fields(json.loads(done.read_text())["config"])
                                       == _training_fields(member.to_dict()))
        if not finished:  # a member that stopped part-way resumes from its checkpoint
            train(member, resume=resume or (Path(member.out_dir) / "checkpoint").exists(), console=console)
        runs.append(Path(member.out_dir))
    say = console.print if console is not None else print
    summary = build(runs, Path(cfg.out_dir), say=say)
    summary["config"] = {**summary["config"], "soup": cfg.soup, "recipe": cfg.recipe, "out_dir": cfg.out_dir}
    (Path(cfg.out_dir) / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return summary
