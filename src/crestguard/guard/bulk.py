"""Bulk moderation on Ray Data: one guard per worker, many workers on one machine or a cluster.

Filtering a corpus or a log of millions of prompts is embarrassingly parallel: every Ray worker (an actor) loads
the guard once (ONNX by default, one core each) and checks the batches it is given with ``map_batches``::

    import ray
    from crestguard.guard.bulk import moderate

    ds = ray.data.read_json("prompts.jsonl")               # any Ray Dataset with a text column
    ds = moderate(ds, workers=8)                           # + unsafe, score, threshold, language, verdict
    ds.filter(lambda row: not row["unsafe"]).write_json("clean/")

Each output row gains ``unsafe`` (bool; null for a text over the size limits), ``score``, ``threshold``,
``language`` and ``verdict`` (the full verdict as JSON, :meth:`crestguard.guard.Verdict.to_dict`, or
``{"error": ...}``). The workers use the very guard of the single-process path, so the verdicts are the same
(``tests/test_bulk.py``). ``crestguard check --file IN --out OUT --ray`` does this for a file, resumably, with the
output format of the single-process path; ``RAY_ADDRESS`` (or ``--ray-address``) points it at a running cluster,
else it starts a local one. Throughput of both paths: ``benchmarks/ray_bulk.py``.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from crestguard.errors import require


class GuardWorker:
    """The ``map_batches`` callable: loads one guard per worker, checks a batch of texts."""

    def __init__(self, model: str = "crest-me5s", text_column: str = "text", id_column: str | None = None,
                 **load: Any):
        from crestguard.guard.guard import load_guard

        load = {"backend": "onnx", "threads": 1, "rows": False, **load}
        self.guard = load_guard(model, **load)
        self.text_column, self.id_column = text_column, id_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from crestguard.guard.files import verdict_rows

        texts = [str(t) for t in batch[self.text_column]]
        ids = [str(i) for i in batch[self.id_column]] if self.id_column else [""] * len(texts)
        rows = verdict_rows(self.guard, list(zip(ids, texts)))
        out = dict(batch)
        out["unsafe"] = np.array([r.get("unsafe") for r in rows], dtype=object)
        out["score"] = np.array([r.get("score", np.nan) for r in rows], dtype=np.float64)
        out["threshold"] = np.array([r.get("threshold", np.nan) for r in rows], dtype=np.float64)
        out["language"] = np.array([r.get("language") for r in rows], dtype=object)
        out["verdict"] = np.array([json.dumps({k: v for k, v in r.items() if k != "id"}, ensure_ascii=False)
                                   for r in rows], dtype=object)
        return out


def moderate(ds, model: str = "crest-me5s", text_column: str = "text", workers: int = 2, texts_per_call: int = 64,
             id_column: str | None = None, **load: Any):
    """``ds`` (a ``ray.data.Dataset``) with the guard's verdict columns added, checked by ``workers`` actors of
    one CPU each, ``texts_per_call`` texts at a time; ``load``: arguments of :func:`crestguard.load_guard` (default
    ``backend="onnx"``, one thread)."""
    return ds.map_batches(GuardWorker, fn_constructor_kwargs={"model": model, "text_column": text_column,
                                                              "id_column": id_column, **load},
                          batch_size=texts_per_call, batch_format="numpy", concurrency=workers, num_cpus=1)


def ray_rows(model: str, workers: int, address: str | None = None, texts_per_call: int = 64,
             **load: Any) -> Callable[[Iterable[list[tuple[str, str]]]], Iterator[list[dict]]]:
    """A ``rows_of`` for :func:`crestguard.guard.files.check_file` that checks the items on Ray: connects to
    ``address`` (or ``RAY_ADDRESS``), else starts a local cluster of ``workers`` CPUs, and shuts it down after.
    Each worker call gets ``texts_per_call`` texts (the single-process path's chunk); ``load`` goes to
    :func:`crestguard.load_guard` (``batch_size`` there: windows per forward pass)."""
    ray = require("ray", "ray", "bulk moderation on Ray")

    def rows_of(chunks: Iterable[list[tuple[str, str]]]) -> Iterator[list[dict]]:
        items = [{"id": i, "text": t} for chunk in chunks for i, t in chunk]
        if not items:
            return
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
        try:
            ray.data.DataContext.get_current().execution_options.preserve_order = True
            ray.data.DataContext.get_current().enable_progress_bars = False
            ds = moderate(ray.data.from_items(items), model, workers=workers, texts_per_call=texts_per_call,
                          id_column="id", **load)
            for batch in ds.iter_batches(batch_size=texts_per_call, batch_format="numpy"):
                yield [{"id": str(i), **json.loads(v)} for i, v in zip(batch["id"], batch["verdict"])]
        finally:
            if started:
                ray.shutdown()

    return rows_of
