"""The evaluation harness: suites as data, a reserved-items manifest, metrics, reports, plots and baselines.

Evaluate any classifier (``name``, ``fingerprint``, ``predict_scores(texts)``) on the default suite::

    from crestguard.evaluation import run
    results = run("lr-en", suite="default", out_dir="out/lr-en")   # results.json, report.md, PNG plots

Training code must keep evaluation items out of its mix::

    from crestguard.evaluation import assert_disjoint, load_manifest
    allowed, dropped = load_manifest("default").split(records)    # drop and count, or
    assert_disjoint(records)                                      # refuse (ReservedItemError)
"""

from __future__ import annotations

from crestguard.evaluation.classifiers import Classifier, FlagAll, GuardClassifier, resolve_model
from crestguard.evaluation.errors import EvaluationError, ReservedItemError
from crestguard.evaluation.harness import Settings, evaluate, run
from crestguard.evaluation.manifest import Manifest, assert_disjoint, is_reserved, load_manifest
from crestguard.evaluation.metrics import binary_metrics
from crestguard.evaluation.suite import load_suite, materialize

__all__ = [
    "Classifier", "EvaluationError", "FlagAll", "GuardClassifier", "Manifest", "ReservedItemError", "Settings",
    "assert_disjoint", "binary_metrics", "evaluate", "is_reserved", "load_manifest", "load_suite", "materialize",
    "resolve_model", "run",
]
