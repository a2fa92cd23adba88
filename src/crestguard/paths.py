"""Where things live: the data directory, the cache, the repository's own folders.

- Data: ``--data-dir`` > ``$CRESTGUARD_DATA`` > ``../shared/data`` beside the repository (when it exists).
- Peer evaluation sets: ``$CRESTGUARD_PEER_EVAL`` > ``peer_eval`` beside the data directory (``../shared/peer_eval``).
- Cache: ``$CRESTGUARD_HOME`` > ``$XDG_CACHE_HOME/crestguard`` > ``~/.cache/crestguard``.
"""

from __future__ import annotations

import os
from pathlib import Path

from crestguard.errors import DataError

PACKAGE_DIR = Path(__file__).resolve().parent
#: The source checkout (``src/crestguard`` -> repository root). Only meaningful for editable installs.
REPO_ROOT = PACKAGE_DIR.parent.parent


def cache_dir(create: bool = True) -> Path:
    """Root of everything CREST Guard builds or caches (backbones, embeddings, predictions)."""
    env = os.environ.get("CRESTGUARD_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "crestguard"
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def _default_data_candidates() -> list[Path]:
    cands = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return [c for c in cands]


def data_dir(override: str | os.PathLike | None = None, must_exist: bool = True) -> Path:
    """Resolve the data directory; raise :class:`DataError` with the places tried if none exists."""
    tried: list[Path] = []
    if override:
        tried.append(Path(override).expanduser())
    elif os.environ.get("CRESTGUARD_DATA"):
        tried.append(Path(os.environ["CRESTGUARD_DATA"]).expanduser())
    else:
        tried.extend(_default_data_candidates())
    for cand in tried:
        if cand.is_dir():
            return cand.resolve()
    if not must_exist:
        return tried[0]
    raise DataError(
        "No data directory found (tried: " + ", ".join(str(t) for t in tried) + "). "
        "Pass --data-dir or set CRESTGUARD_DATA."
    )


def peer_eval_dir(override: str | os.PathLike | None = None, must_exist: bool = True) -> Path:
    """The folder of the peer evaluation sets: ``override`` > ``$CRESTGUARD_PEER_EVAL`` > ``peer_eval`` beside
    the data directory. Raises :class:`DataError` naming the path when it does not exist."""
    if override:
        cand = Path(override).expanduser()
    elif os.environ.get("CRESTGUARD_PEER_EVAL"):
        cand = Path(os.environ["CRESTGUARD_PEER_EVAL"]).expanduser()
    else:
        cand = data_dir(must_exist=False).parent / "peer_eval"
    if cand.is_dir():
        return cand.resolve()
    if not must_exist:
        return cand
    raise DataError(f"No peer evaluation folder at {cand}. Set CRESTGUARD_PEER_EVAL.")
