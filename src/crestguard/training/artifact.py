"""The shipped model folder: install a trained model (the default into the package, ``src/crestguard/models/``),
within the size limit.

``src/crestguard/models/crest-me5s/`` (package data) holds ``crest_config.json`` + ``delta.safetensors`` (see
:mod:`crestguard.modeling`) and a ``MODEL_CARD.md`` that installing leaves in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from crestguard.errors import CrestGuardError
from crestguard.modeling import CONFIG_NAME, DELTA_NAME

#: The committed default guard may take at most this many bytes (issue 7).
MAX_ARTIFACT_BYTES = 25 * 1000 * 1000
CARD_NAME = "MODEL_CARD.md"


def folder_size(path: Path) -> int:
    """Total bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def install_model(model_dir: Path, dest: Path, limit: int = MAX_ARTIFACT_BYTES) -> int:
    """Copy a delta-format model into ``dest`` (replacing its model files, keeping its model card).

    Returns:
        The size of ``dest`` in bytes after installing.

    Raises:
        CrestGuardError: ``model_dir`` is not a delta-format model, or the result would exceed ``limit`` bytes.
    """
    model_dir, dest = Path(model_dir), Path(dest)
    files = [model_dir / CONFIG_NAME, model_dir / DELTA_NAME]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise CrestGuardError(f"{model_dir}: not a delta-format model (missing {', '.join(missing)})")
    card = dest / CARD_NAME
    total = sum(f.stat().st_size for f in files) + (card.stat().st_size if card.is_file() else 0)
    if total > limit:
        raise CrestGuardError(f"{model_dir}: the model takes {total / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB "
                              "limit of a committed artifact; train fewer layers (train_layers) or use LoRA")
    dest.mkdir(parents=True, exist_ok=True)
    from crestguard.guard.guard import THRESHOLDS_NAME

    policy = model_dir / THRESHOLDS_NAME  # the model's own threshold policy, or none: never another model's
    if policy.is_file():
        files.append(policy)
    else:
        (dest / THRESHOLDS_NAME).unlink(missing_ok=True)
    for f in files:
        tmp = dest / (f.name + ".tmp")
        shutil.copyfile(f, tmp)
        tmp.replace(dest / f.name)
    return folder_size(dest)
