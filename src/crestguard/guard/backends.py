"""The two engines behind the guard: both take padded token ids and return logits ``(batch, 2)`` as numpy.

- :class:`TorchBackend`: the transformers model from :func:`crestguard.modeling.load_classifier`, in ``fp32``,
  ``bf16`` (autocast; about twice as fast on CPUs with AVX512-BF16/AMX) or ``int8`` (``torch.ao`` dynamic
  quantization of the Linear layers).
- :class:`OnnxBackend`: an ``onnxruntime`` session on the exported model (``int8`` or ``fp32``); imports no torch.

Tokenization, windows and scoring are the guard's, identical for both (:mod:`crestguard.guard.guard`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from crestguard.errors import CrestGuardError, require
from crestguard.guard.onnx_export import DISABLED_OPTIMIZERS

PRECISIONS = {"torch": ("fp32", "bf16", "int8"), "onnx": ("int8", "fp32")}


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


class OnnxBackend:
    """An onnxruntime CPU session on an exported classifier (see :mod:`crestguard.guard.onnx_export`).

    With ``threads`` > 1 and ``rows=True`` (the default), a batch of several rows is cut into ``threads`` parts that
    run at the same time, each on one core, in a second, single-threaded session (onnxruntime sessions may run
    concurrently): the small matrices of a ~64-token batch do not split well across cores inside one operator,
    whole rows do (``benchmarks/guard_bench.py``: ``onnx-int8`` against ``onnx-int8-intra``). One row runs in the
    session with ``threads`` intra-operator threads, so a single request keeps its latency. The second session
    costs about 110 MB of memory; ``rows=False`` does without it.
    """

    name = "onnx"

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
        self.session = self._session(threads)
        self.row_session = self._pool = None
        if rows and self.threads > 1:
            self.row_session = self._session(1)
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="crestguard-onnx")

    def _session(self, threads: int | None):
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        # By default idle threads sleep instead of spinning: on a shared CPU spinning doubled single-request latency
        # here. On dedicated cores spinning saves ~2 ms per request (benchmarks/results/int8_recipes.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
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

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        n = len(input_ids)
        if self.row_session is None or n < 2:
            return self._run(self.session, input_ids, attention_mask)
        parts = np.array_split(np.arange(n), min(self.threads, n))
        futures = [self._pool.submit(self._run, self.row_session, input_ids[p], attention_mask[p]) for p in parts[1:]]
        first = self._run(self.row_session, input_ids[parts[0]], attention_mask[parts[0]])
        return np.concatenate([first] + [f.result() for f in futures])
