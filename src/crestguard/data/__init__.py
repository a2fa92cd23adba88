"""Datasets: one record type, a registry of named loaders (one per ``../shared/data`` folder, plus the paper's
Hugging Face datasets), validation on load, and group-aware splits.

Example:
    >>> from crestguard.data import load_dataset, list_datasets, split_by_group
    >>> ds = load_dataset("multijail")
    >>> ds.report.summary()
    '3150 read, 3150 kept, 0 dropped (duplicate_text 2)'
    >>> parts = split_by_group(ds.records, {"train": 0.8, "test": 0.2}, seed=0)

Every label rule and open choice is documented in the loader modules (:mod:`crestguard.data.safety`,
:mod:`crestguard.data.multilingual`, :mod:`crestguard.data.hub`) and summarized in ``DATASETS.md``.
"""

from __future__ import annotations

from crestguard.data.records import SAFE, UNSAFE, Record
from crestguard.data.registry import (
    DATASETS,
    DatasetInfo,
    LoadedDataset,
    get_info,
    list_datasets,
    load_dataset,
    summarize,
)
from crestguard.data.splits import split_by_group
from crestguard.data.validation import DatasetBuilder, ValidationReport

# Importing the loader modules registers their datasets.
from crestguard.data import hub, multilingual, safety  # noqa: E402,F401  isort: skip
from crestguard.data import harmful, hate, injection, prompts  # noqa: E402,F401  isort: skip  (H1 sources)
from crestguard.data import peer  # noqa: E402,F401  isort: skip  (../shared/peer_eval, evaluation only)

__all__ = ["DATASETS", "SAFE", "UNSAFE", "DatasetBuilder", "DatasetInfo", "LoadedDataset", "Record",
           "ValidationReport", "get_info", "list_datasets", "load_dataset", "split_by_group", "summarize"]
