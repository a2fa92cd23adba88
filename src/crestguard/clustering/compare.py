"""Compare two partitions of languages: ARI, NMI, and which languages land elsewhere.

Cluster ids of two partitions are arbitrary, so ours are matched to the reference's by the Hungarian
assignment on the contingency table (the pairing of cluster ids that puts the most languages in agreeing
clusters); clusters left over when the two k differ stay unmatched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Comparison:
    """Our partition against a reference over the languages both cover.

    Attributes:
        n_common: languages in both partitions.
        ari: adjusted Rand index over the common languages.
        nmi: normalized mutual information (arithmetic mean normalization) over the common languages.
        mapping: our cluster id -> the matched reference cluster id (absent: unmatched).
        agree: common languages whose (matched) cluster equals the reference's.
        differences: ``(lang, our cluster, its matched reference id or None, reference cluster)`` for every
            common language whose matched cluster differs, sorted by reference cluster then language.
        only_ours: languages in our partition only.
        only_reference: languages in the reference only.
    """

    n_common: int
    ari: float
    nmi: float
    mapping: dict[int, int]
    agree: int
    differences: list[tuple[str, int, int | None, int]]
    only_ours: list[str]
    only_reference: list[str]

    def to_dict(self) -> dict:
        return {
            "n_common": self.n_common,
            "ari": round(self.ari, 4),
            "nmi": round(self.nmi, 4),
            "agree": self.agree,
            "mapping": {str(k): v for k, v in sorted(self.mapping.items())},
            "differences": [
                {"lang": lang, "ours": ours, "ours_matched": matched, "reference": ref}
                for lang, ours, matched, ref in self.differences
            ],
            "only_ours": self.only_ours,
            "only_reference": self.only_reference,
        }


def match_clusters(ours: list[int], ref: list[int]) -> dict[int, int]:
    """Hungarian matching of our cluster ids to reference ids, maximizing the languages placed alike.

    Args:
        ours: our cluster of each language.
        ref: the reference cluster of the same languages, in the same order.

    Returns:
        our id -> reference id, for ``min(k_ours, k_ref)`` pairs; among equally good pairings the one that
        pairs the most equal ids, so a partition already numbered like the reference keeps its numbers.
    """
    from scipy.optimize import linear_sum_assignment

    a_ids, b_ids = sorted(set(ours)), sorted(set(ref))
    table = np.zeros((len(a_ids), len(b_ids)))
    for a, b in zip(ours, ref):
        table[a_ids.index(a), b_ids.index(b)] += 1
    # Among equally good pairings prefer equal ids: the bonus sums to less than one language.
    bonus = 0.5 / (min(table.shape) + 1)
    table += bonus * (np.asarray(a_ids)[:, None] == np.asarray(b_ids)[None, :])
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {a_ids[r]: b_ids[c] for r, c in zip(rows, cols)}


def compare_partitions(ours: Mapping[str, int], reference: Mapping[str, int]) -> Comparison:
    """Score ``ours`` against ``reference`` (both: language -> cluster id) over their common languages.

    Raises:
        ValueError: if the two partitions share fewer than two languages.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    common = sorted(set(ours) & set(reference))
    if len(common) < 2:
        raise ValueError(
            f"the partitions share {len(common)} language(s); at least 2 are needed to compare them"
        )
    a = [ours[lang] for lang in common]
    b = [reference[lang] for lang in common]
    mapping = match_clusters(a, b)
    diffs = [(lang, x, mapping.get(x), y) for lang, x, y in zip(common, a, b) if mapping.get(x) != y]
    diffs.sort(key=lambda d: (d[3], d[0]))
    return Comparison(
        n_common=len(common),
        ari=float(adjusted_rand_score(b, a)),
        nmi=float(normalized_mutual_info_score(b, a)),
        mapping=mapping,
        agree=len(common) - len(diffs),
        differences=diffs,
        only_ours=sorted(set(ours) - set(reference)),
        only_reference=sorted(set(reference) - set(ours)),
    )


def relabel_like(ours: Mapping[str, int], reference: Mapping[str, int], first: int = 1) -> dict[str, int]:
    """Renumber our clusters to the matched reference ids; unmatched clusters get the next free ids.

    Makes a report readable: our "cluster 4" is the one that best corresponds to the reference's cluster 4.
    Unmatched clusters are numbered after ``max(reference ids)`` in order of their smallest language code.
    """
    common = sorted(set(ours) & set(reference))
    mapping = (
        match_clusters([ours[c] for c in common], [reference[c] for c in common]) if len(common) >= 2 else {}
    )
    next_id = max([*reference.values(), first - 1]) + 1
    members: dict[int, list[str]] = {}
    for lang, c in ours.items():
        members.setdefault(c, []).append(lang)
    for c in sorted(set(ours.values()) - set(mapping), key=lambda c: min(members[c])):
        mapping[c] = next_id
        next_id += 1
    return {lang: mapping[c] for lang, c in ours.items()}
