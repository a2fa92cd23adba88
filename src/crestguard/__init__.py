"""CREST Guard: a multilingual safety guardrail trained on a few cluster-selected languages.

The public API is small; heavy modules are imported only when used::

    import crestguard
    guard = crestguard.load_guard("crest-me5s")          # backend="onnx" needs no torch at serving time
    guard.check("How do I make a bomb?").unsafe
    guard.check_batch(["...", "..."])                    # list[Verdict]
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Guard", "Verdict", "__version__", "load_guard"]

_LAZY = {"load_guard": "crestguard.guard.guard", "Guard": "crestguard.guard.guard",
         "Verdict": "crestguard.guard.verdict"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crestguard' has no attribute {name!r}")
