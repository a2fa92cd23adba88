"""The guard: one inference path for the API, CLI, server and evaluation harness.

Example:
    >>> import crestguard
    >>> guard = crestguard.load_guard("crest-me5s")              # or backend="onnx"
    >>> v = guard.check("How do I make a bomb?")
    >>> v.unsafe, round(v.score, 2), v.language, v.cluster

Submodules: :mod:`~crestguard.guard.normalize` (obfuscation), :mod:`~crestguard.guard.langid` (language ID),
:mod:`~crestguard.guard.thresholds` (temperature and thresholds), :mod:`~crestguard.guard.backends` (torch/ONNX),
:mod:`~crestguard.guard.onnx_export` (with :mod:`~crestguard.guard.graph_passes`, exact graph rewrites, and
:mod:`~crestguard.guard.int8_rows`, the int8 recipe),
:mod:`~crestguard.guard.verdict` (the shared result types).
Heavy modules load on first use.
"""

from __future__ import annotations

from crestguard.guard.verdict import Verdict, Window

__all__ = ["Guard", "GuardError", "GuardSettings", "InputTooLargeError", "ThresholdPolicy", "Verdict", "Window",
           "calibrate_thresholds", "load_guard"]

_LAZY = {
    "Guard": "crestguard.guard.guard",
    "GuardError": "crestguard.guard.guard",
    "GuardSettings": "crestguard.guard.guard",
    "InputTooLargeError": "crestguard.guard.guard",
    "load_guard": "crestguard.guard.guard",
    "ThresholdPolicy": "crestguard.guard.thresholds",
    "calibrate_thresholds": "crestguard.guard.thresholds",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crestguard.guard' has no attribute {name!r}")
