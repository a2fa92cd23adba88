"""Errors of the evaluation harness (both are :class:`crestguard.errors.CrestGuardError`: the CLI prints them)."""

from __future__ import annotations

from crestguard.errors import CrestGuardError


class EvaluationError(CrestGuardError):
    """A suite, model, result file or classifier output that the harness cannot use."""


class ReservedItemError(CrestGuardError):
    """A training mix contains items reserved for evaluation by the suite manifest."""
