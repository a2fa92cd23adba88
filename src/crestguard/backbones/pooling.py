"""Pooling of token states into one vector per text."""

from __future__ import annotations

POOLINGS = ("mean", "cls")


def mean_pool(hidden, attention_mask):
    """Mean of ``hidden`` (batch, seq, dim) over the tokens where ``attention_mask`` is 1 (CREST Eq. 1).

    Padding never contributes; a row with no tokens at all gives zeros rather than NaN.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1.0)
    return summed / counts


def pool(hidden, attention_mask, how: str = "mean"):
    """Pool with ``how`` in :data:`POOLINGS` (``cls`` = the first token, ``<s>``)."""
    if how == "mean":
        return mean_pool(hidden, attention_mask)
    if how == "cls":
        return hidden[:, 0]
    raise ValueError(f"unknown pooling {how!r}; choose one of {', '.join(POOLINGS)}")
