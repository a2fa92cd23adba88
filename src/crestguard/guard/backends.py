"""The two engines behind the guard: both take padded token ids and return logits ``(batch, 2)`` as numpy.

- :class:`TorchBackend`: the transformers model from :func:`crestguard.modeling.load_classifier`, in ``fp32``,
  ``bf16`` (autocast; about twice as fast on CPUs with AVX512-BF16/AMX) or ``int8`` (``torch.ao`` dynamic
  quantization of the Linear layers).
- :class:`OnnxBackend`: an ``onnxruntime`` session on the exported model (``int8`` or ``fp32``); imports no torch.

Tokenization, windows and scoring are the guard's, identical for both (:mod:`crestguard.guard.guard`).
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from crestguard.errors import CrestGuardError, require
from crestguard.guard.onnx.export import DISABLED_OPTIMIZERS, builder_for

PRECISIONS = {"torch": ("fp32", "bf16", "int8"), "onnx": ("int8", "fp32")}


def default_backend(model_dir: str | Path, precision: str | None = None) -> str:
    """The backend a guard gets when none is asked for: ``"onnx"`` whenever onnxruntime is installed and the model's
    graph builds without torch (a delta model on the offline backbone, the shipped default included), unless
    ``precision`` is one only torch offers; else ``"torch"`` (a Hugging Face folder needs torch to export)."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None or precision in set(PRECISIONS["torch"]) - \
            set(PRECISIONS["onnx"]):
        return "torch"
    return "onnx" if builder_for(model_dir) == "numpy" else "torch"


def check_precision(backend: str, precision: str | None) -> str:
    """The precision to use (the backend's default when ``None``).

    Raises:
        CrestGuardError: unknown backend or a precision the backend does not offer.
    """
    if backend not in PRECISIONS:
        raise CrestGuardError(f"Unknown backend {backend!r}: choose one of {', '.join(PRECISIONS)}")
    precision = precision or PRECISIONS[backend][0]
    if precision not in PRECISIONS[backend]:
        raise CrestGuardError(f"Backend {backend!r} offers precision {', '.join(PRECISIONS[backend])}, "
                              f"not {precision!r}")
    return precision


class TorchBackend:
    """A transformers sequence classifier run with torch on the CPU."""

    name = "torch"

    def __init__(self, model, precision: str = "fp32", threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.precision = check_precision("torch", precision)
        model = model.eval()
        if self.precision == "int8":
            import warnings

            with warnings.catch_warnings():  # torch.ao's eager quantization is deprecated in favour of torchao
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        self._torch = torch

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.logits.float().numpy()


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _LazySession:
    """An onnxruntime session made on its first ``run``: loading one costs about a second of CPU, and a guard that
    never runs a batch of several rows (one ``crestguard check``) or whose engine is wrapped needs fewer."""

    def __init__(self, make):
        self._make, self._session, self._lock = make, None, threading.Lock()

    def run(self, *args, **kwargs):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._make()
        return self._session.run(*args, **kwargs)


class OnnxBackend:
    """An onnxruntime CPU session on an exported classifier (see :mod:`crestguard.guard.onnx.export`).

    With ``threads`` > 1 and ``rows=True`` (the default), a batch of several rows is cut into runs of consecutive rows
    with about as many tokens each (``parts_per_thread`` per thread), which ``threads`` threads take one after the
    other, each running them on one core in a second, single-threaded session (onnxruntime sessions may run
    concurrently). The small matrices of a ~64-token batch split poorly across cores inside one operator; whole
    rows split well. On dedicated cores this is 1.10-1.26x faster than one multi-threaded session; beside another
    busy process it is 0.88-0.96x as fast (``benchmarks/row_parallel.py``). One row runs in the session with
    ``threads`` intra-operator threads, so a single request keeps its latency. The second session costs about
    110-140 MB of memory; ``rows=False`` does without it.
    """

    name = "onnx"
    parts_per_thread = 2

    def __init__(self, path: str | Path, precision: str = "int8", threads: int | None = None, spin: bool = False,
                 rows: bool = True):
        self._ort = require("onnxruntime", "onnx", "the ONNX backend")
        self.precision = check_precision("onnx", precision)
        path = Path(path)
        if not path.is_file():
            raise CrestGuardError(f"ONNX model not found: {path} (run: crestguard export onnx)")
        self.path = path
        self.threads = threads or available_cores()
        self.spin = spin
        self.session = _LazySession(lambda: self._session(threads))
        self.row_session = self._pool = None
        if rows and self.threads > 1:
            self.row_session = _LazySession(lambda: self._session(1))
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="crestguard-onnx")

    def _session(self, threads: int | None):
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        # By default idle threads sleep instead of spinning: on a shared CPU spinning doubled single-request latency
        # here. On dedicated cores spinning saves ~2 ms per request (benchmarks/results/int8_recipes.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        options.add_session_config_entry("session.force_spinning_stop", "1")  # when spinning: within a run only
        if threads:
            options.intra_op_num_threads = threads
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=list(DISABLED_OPTIMIZERS))

    @staticmethod
    def _run(session, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        width = int(attention_mask.sum(axis=1).max()) if attention_mask.size else input_ids.shape[1]
        width = max(width, 1)  # a part's rows may all be shorter than the batch: drop the padding they share
        feed = {"input_ids": np.ascontiguousarray(input_ids[:, :width], dtype=np.int64),
                "attention_mask": np.ascontiguousarray(attention_mask[:, :width], dtype=np.int64)}
        return session.run(["logits"], feed)[0]

    @staticmethod
    def _parts(lengths: np.ndarray, k: int) -> list[np.ndarray]:
        """Up to ``k`` runs of consecutive rows with about the same number of real tokens each (rows come sorted
        by length, so each run also keeps its padding small)."""
        lengths = np.maximum(lengths.astype(np.float64), 1.0)
        centers = np.cumsum(lengths) - lengths / 2
        part = np.minimum((centers * k / lengths.sum()).astype(np.int64), k - 1)
        return [p for p in np.split(np.arange(len(lengths)), np.flatnonzero(np.diff(part)) + 1)]

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        n = len(input_ids)
        if self.row_session is None or n < 2:
            return self._run(self.session, input_ids, attention_mask)
        parts = self._parts(attention_mask.sum(axis=1), min(self.threads * self.parts_per_thread, n))
        out: list[np.ndarray | None] = [None] * len(parts)
        take = itertools.count()  # each thread takes the next part when it is done: a slower core takes fewer

        def work() -> None:
            while (k := next(take)) < len(parts):
                out[k] = self._run(self.row_session, input_ids[parts[k]], attention_mask[parts[k]])

        helpers = [self._pool.submit(work) for _ in range(min(self.threads, len(parts)) - 1)]
        work()
        for h in helpers:
            h.result()
        return np.concatenate(out)
