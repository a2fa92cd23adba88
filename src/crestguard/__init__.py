"""CREST Guard: a multilingual safety guardrail trained on a few cluster-selected languages.

The public API is small; heavy modules are imported only when used::

    import crestguard
    guard = crestguard.load_guard("crest-me5s")
    guard.check("How do I make a bomb?").unsafe
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
