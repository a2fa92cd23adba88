"""Tokenized training data: the paper's length filter, truncation counts, and the deterministic batch plan.

The batch plan is what makes a run reproducible, resumable and identical under DDP: for epoch ``e`` the order of
examples depends only on ``(seed, e)``; examples are dealt into *global* micro-batches of
``batch_size x world_size``, and rank ``r`` takes the ``r``-th slice of each. One process with batch ``B x W``
therefore sees exactly the examples that ``W`` processes with batch ``B`` see together.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from crestguard.data.records import Record


@dataclass
class LengthReport:
    """What the length filter and truncation did (never silent).

    Attributes:
        examples: records given.
        dropped_over_filter: records longer than ``length_filter`` tokens, dropped (the paper's rule).
        truncated: records kept but longer than ``max_length``, truncated to it for training.
        length_filter, max_length: the limits applied.
        dropped_by_source: per source, how many were dropped.
    """

    examples: int
    dropped_over_filter: int
    truncated: int
    length_filter: int
    max_length: int
    dropped_by_source: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Encoded:
    """Token ids (truncated), labels and per-example loss weights of the kept records."""

    ids: list[list[int]]
    labels: np.ndarray
    weights: np.ndarray
    records: list[Record]

    def __len__(self) -> int:
        return len(self.ids)


def encode(tokenizer, records: Sequence[Record], weights: Sequence[float], max_length: int,
           length_filter: int) -> tuple[Encoded, LengthReport]:
    """Tokenize (after Unicode NFC), drop records over ``length_filter`` tokens, truncate the rest to ``max_length``.

    Truncation keeps the first ``max_length - 1`` tokens and the closing special token.
    """
    texts = [unicodedata.normalize("NFC", r.text) for r in records]
    all_ids = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"] if texts else []
    kept_ids, kept_recs, kept_w, dropped_by = [], [], [], {}
    truncated = 0
    for ids, rec, w in zip(all_ids, records, weights):
        if len(ids) > length_filter:
            dropped_by[rec.source] = dropped_by.get(rec.source, 0) + 1
            continue
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + ids[-1:]
            truncated += 1
        kept_ids.append(ids)
        kept_recs.append(rec)
        kept_w.append(w)
    enc = Encoded(kept_ids, np.array([r.label for r in kept_recs], dtype=np.int64),
                  np.asarray(kept_w, dtype=np.float32), kept_recs)
    report = LengthReport(len(records), sum(dropped_by.values()), truncated, length_filter, max_length,
                          dict(sorted(dropped_by.items())))
    return enc, report


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Inverse-frequency weights ``n / (2 n_c)`` for classes 0 and 1 (1.0 for an absent class)."""
    counts = np.bincount(labels, minlength=2).astype(float)
    return np.where(counts > 0, len(labels) / (2 * np.maximum(counts, 1)), 1.0)


def epoch_order(n: int, labels: np.ndarray, seed: int, epoch: int, balanced: bool, lengths: Sequence[int] | None,
                global_batch: int, bucket: int = 32) -> np.ndarray:
    """The example order of one epoch, a multiple of ``global_batch`` long (the ragged tail is left out).

    Args:
        balanced: sample with replacement so that both classes are equally likely (``n`` draws).
        lengths: token counts; when given, each run of ``bucket`` global batches is sorted by length so that batches
            hold similar lengths (less padding), and the batches are then shuffled.
    """
    rng = np.random.default_rng([seed, epoch])
    if balanced:
        counts = np.bincount(labels, minlength=2).astype(float)
        p = 1.0 / counts[labels]
        order = rng.choice(n, size=n, replace=True, p=p / p.sum())
    else:
        order = rng.permutation(n)
    usable = (len(order) // global_batch) * global_batch
    order = order[:usable]
    if lengths is not None and usable:
        lengths = np.asarray(lengths)
        chunk = global_batch * bucket
        parts = [sorted(order[i:i + chunk], key=lambda j: lengths[j]) for i in range(0, usable, chunk)]
        batches = np.concatenate(parts).reshape(-1, global_batch)
        order = batches[rng.permutation(len(batches))].reshape(-1)
    return order


def collate(ids: Sequence[list[int]], pad_id: int):
    """Pad a list of token-id lists into ``input_ids`` and ``attention_mask`` tensors."""
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return input_ids, mask
