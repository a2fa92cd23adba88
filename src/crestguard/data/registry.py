"""The dataset registry: one named loader per dataset, ``load_dataset(name)`` and cached summaries.

Loaders register themselves with :func:`register` (see :mod:`crestguard.data.safety`,
:mod:`crestguard.data.multilingual`, :mod:`crestguard.data.hub`). Each receives the dataset's folder and a
:class:`~crestguard.data.validation.DatasetBuilder` and adds every candidate text to it.

Example:
    >>> from crestguard.data import load_dataset
    >>> ds = load_dataset("xstest")
    >>> len(ds.records), ds.label_counts()
    (450, {0: 250, 1: 200})
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable

from crestguard.data.records import Record
from crestguard.data.validation import DatasetBuilder, ValidationReport
from crestguard.errors import DataError

#: Kinds of dataset, in the order ``crestguard data list`` shows them.
KINDS = ("benchmark", "training", "benign", "parallel", "hub", "peer")

Loader = Callable[[Path, DatasetBuilder], None]

#: Licence terms that keep a dataset out of the shipped default model: non-commercial (NC), no-derivatives (ND),
#: research-only or do-not-redistribute terms, and no stated licence (see DATASETS.md, "Licences").
_RESTRICTIVE = re.compile(r"\bNC\b|\bND\b|(?i:non-?commercial|no-?deriv|research (use|purpose)|"
                          r"do not redistribute|none stated|see the hub card)")


def licence_ok_for_default(licence: str) -> bool:
    """Whether a licence string (as a SOURCE.md states it) permits training the shipped default model on the
    dataset: ``False`` for non-commercial, no-derivatives, research-only or do-not-redistribute terms, and for
    no stated licence; ``True`` otherwise (permissive licences: MIT, Apache-2.0, CC BY, CC BY-SA, ODC-By).
    A licence string with several parts is restricted if any part is."""
    return not _RESTRICTIVE.search(licence)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset before loading it.

    Attributes:
        name: registry name (``Record.source``).
        folder: the source folder relative to the data directory (``None`` for hub-only datasets).
        kind: one of :data:`KINDS`.
        description: one line: what the texts are.
        licence: the licence as the SOURCE.md states it.
        labels: the label rule in one line.
        choice: the open choice this loader makes (details in the loader module's docstring and DATASETS.md).
        loader: the function that fills a :class:`DatasetBuilder`.
        hub_id: the Hugging Face dataset id, for hub loaders.
        eval_leak: the evaluation set(s) this dataset's texts are built on (e.g. JailbreakBench artifacts on
            the JBB goals): such a dataset is registered for evaluation but never :attr:`trainable`.
    """

    name: str
    folder: str | None
    kind: str
    description: str
    licence: str
    labels: str
    loader: Loader
    choice: str = ""
    hub_id: str | None = None
    eval_leak: str = ""

    @property
    def trainable(self) -> bool:
        """False for a dataset built on an evaluation set (:attr:`eval_leak`): no training mix may use it."""
        return not self.eval_leak

    @property
    def licence_ok_for_default(self) -> bool:
        """:func:`licence_ok_for_default` of :attr:`licence`."""
        return licence_ok_for_default(self.licence)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "folder": self.folder, "hub_id": self.hub_id,
                "description": self.description, "licence": self.licence, "labels": self.labels,
                "choice": self.choice, "eval_leak": self.eval_leak, "trainable": self.trainable,
                "licence_ok_for_default": self.licence_ok_for_default}


@dataclass
class LoadedDataset:
    """A loaded dataset: its records, the validation report and its metadata.

    Attributes:
        info: the registry entry.
        path: the folder it was read from (``None`` for hub datasets).
        records: the kept records, in source order.
        report: what validation counted.
        splits: the source's own splits (e.g. HarmBench test/val): split name -> record ids.
    """

    info: DatasetInfo
    path: Path | None
    records: list[Record]
    report: ValidationReport
    splits: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def metadata(self) -> dict[str, Any]:
        """Licence, source folder, description, label rule and choice made."""
        return {**self.info.metadata(), "path": str(self.path) if self.path else None}

    def label_counts(self) -> dict[int | None, int]:
        """Records per label (0, 1, ``None``), only labels that occur, in that order."""
        counts = Counter(r.label for r in self.records)
        return {k: counts[k] for k in (0, 1, None) if counts[k]}

    def languages(self) -> dict[str, int]:
        """Records per language, most frequent first."""
        return dict(Counter(r.lang for r in self.records).most_common())

    def split(self, name: str) -> list[Record]:
        """The records of the source's split ``name``.

        Raises:
            DataError: the dataset has no such split.
        """
        if name not in self.splits:
            raise DataError(f"dataset '{self.name}' has no split {name!r} "
                            f"(has: {', '.join(self.splits) or 'none'})")
        ids = set(self.splits[name])
        return [r for r in self.records if r.id in ids]

    def summary(self) -> dict[str, Any]:
        """Counts for ``crestguard data list``: rows, label balance, languages, licence, report summary."""
        return {
            "name": self.name, "kind": self.info.kind, "rows": len(self.records),
            "labels": {("none" if k is None else str(k)): v for k, v in self.label_counts().items()},
            "languages": self.languages(), "licence": self.info.licence,
            "items_read": self.report.items_read, "dropped": self.report.dropped,
            "issues": {k: i.count for k, i in self.report.issues.items()},
            "splits": {k: len(v) for k, v in self.splits.items()},
        }


#: Every registered dataset, by name.
DATASETS: dict[str, DatasetInfo] = {}


def register(name: str, folder: str | None, kind: str, description: str, licence: str, labels: str,
             choice: str = "", hub_id: str | None = None, eval_leak: str = "") -> Callable[[Loader], Loader]:
    """Decorator: register ``loader`` under ``name`` (see :class:`DatasetInfo` for the fields)."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}")

    def wrap(loader: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = DatasetInfo(name=name, folder=folder, kind=kind, description=description,
                                     licence=licence, labels=labels, loader=loader, choice=choice,
                                     hub_id=hub_id, eval_leak=eval_leak)
        return loader

    return wrap


def list_datasets(kind: str | None = None, include_hub: bool = True) -> list[str]:
    """Registered names, grouped by :data:`KINDS` (optionally one kind; hub datasets optional)."""
    infos = [i for i in DATASETS.values()
             if (kind is None or i.kind == kind) and (include_hub or i.kind != "hub")]
    return [i.name for i in sorted(infos, key=lambda i: KINDS.index(i.kind))]


def get_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``.

    Raises:
        DataError: no dataset has that name.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}. Known: {', '.join(list_datasets())}")
    return DATASETS[name]


def dataset_path(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of a local dataset under the data directory.

    Raises:
        DataError: the dataset is hub-only, or its folder does not exist (the message names the path).
    """
    from crestguard.paths import data_dir as resolve_data_dir

    info = get_info(name)
    if info.folder is None:
        raise DataError(f"dataset '{name}' is read from the Hugging Face hub ({info.hub_id}), "
                        "not from a folder")
    if info.kind == "peer":  # evaluation-only sets with published peer figures: ../shared/peer_eval
        from crestguard.paths import peer_eval_dir

        path = peer_eval_dir() / info.folder
    else:
        path = resolve_data_dir(data_dir) / info.folder
    if not path.is_dir():
        raise DataError(f"dataset '{name}': folder not found: {path}")
    return path


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> LoadedDataset:
    """Load a registered dataset with validation.

    Args:
        name: a name from :func:`list_datasets`.
        data_dir: the data directory (default: ``$CRESTGUARD_DATA`` or ``../shared/data``); unused by hub
            datasets.

    Raises:
        DataError: unknown name, missing folder/file/column, or a file that cannot be parsed.
    """
    info = get_info(name)
    path = None if info.kind == "hub" else dataset_path(name, data_dir)
    builder = DatasetBuilder(name)
    info.loader(path, builder)
    return LoadedDataset(info=info, path=path, records=builder.records, report=builder.report,
                         splits=builder.splits)


# --- cached summaries -------------------------------------------------------------------------------------

@cache
def _code_fingerprint() -> str:
    """Hash of this package's loader sources: a code change invalidates cached summaries."""
    h = hashlib.sha256()
    for src in sorted(Path(__file__).parent.glob("*.py")):
        h.update(src.read_bytes())
    from crestguard.languages import TABLE_PATH

    h.update(TABLE_PATH.read_bytes())
    return h.hexdigest()


def _folder_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            rel = os.path.relpath(os.path.join(root, f), path)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def summarize(name: str, data_dir: str | os.PathLike | None = None, refresh: bool = False) -> dict[str, Any]:
    """:meth:`LoadedDataset.summary` of a local dataset, cached in ``cache_dir()/data``.

    The cache key covers the folder's file names, sizes and mtimes and the loader code, so a changed file or
    loader reloads the dataset, and ``crestguard data list`` is fast after a first run.
    """
    from crestguard.paths import cache_dir

    path = dataset_path(name, data_dir)
    state = f"{name}\0{path}\0{_folder_fingerprint(path)}\0{_code_fingerprint()}"
    key = hashlib.sha256(state.encode()).hexdigest()
    cache = cache_dir() / "data" / f"summary-{name}.json"
    if not refresh and cache.is_file():
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if cached.get("key") == key:
                return cached["summary"]
        except (OSError, json.JSONDecodeError):
            pass  # an unreadable cache entry is rebuilt below
    summary = load_dataset(name, data_dir).summary()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "summary": summary}), encoding="utf-8")
    os.replace(tmp, cache)
    return summary
