"""Loaders for the prompt-injection sets in ``../shared/data`` (filled in below)."""

from __future__ import annotations
