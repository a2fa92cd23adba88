"""Group-aware splits: translations of one item (one ``group``) never straddle two splits.

Example:
    >>> from crestguard.data import load_dataset, split_by_group
    >>> parts = split_by_group(load_dataset("multijail").records, {"train": 0.8, "test": 0.2}, seed=0)
    >>> len(parts["train"]), len(parts["test"])
    (2520, 630)
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from crestguard.data.records import Record
from crestguard.errors import DataError


def split_by_group(records: Sequence[Record], fractions: Mapping[str, float],
                   seed: int = 0) -> dict[str, list[Record]]:
    """Split records by ``group``: the groups (sorted, then shuffled with ``seed``) are dealt out so that each
    split gets ``fraction x number of groups`` of them (largest remainders settle the rounding).

    The result depends only on the set of groups and the seed: adding or removing records of existing groups
    (a new translation, say) moves no group, and records keep their input order within each split.

    Args:
        records: the records to split.
        fractions: split name -> fraction of groups (positive, summing to 1), e.g.
            ``{"train": 0.8, "test": 0.2}``.
        seed: the shuffle seed.

    Returns:
        split name -> its records, in the order of ``fractions``.

    Raises:
        DataError: fractions that are not positive or do not sum to 1.
    """
    if not fractions or any(f <= 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise DataError(f"split fractions must be positive and sum to 1, got {dict(fractions)}")
    groups = sorted({r.group for r in records})
    random.Random(seed).shuffle(groups)
    exact = {name: f * len(groups) for name, f in fractions.items()}
    counts = {name: int(x) for name, x in exact.items()}
    order = list(fractions)
    by_remainder = sorted(order, key=lambda name: (counts[name] - exact[name], order.index(name)))
    for name in by_remainder[: len(groups) - sum(counts.values())]:
        counts[name] += 1
    split_of: dict[str, str] = {}
    start = 0
    for name, n in counts.items():
        split_of.update((g, name) for g in groups[start:start + n])
        start += n
    parts: dict[str, list[Record]] = {name: [] for name in fractions}
    for r in records:
        parts[split_of[r.group]].append(r)
    return parts
