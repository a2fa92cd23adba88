"""Choose 1-2 training languages per cluster (CREST §3.2): high-resource first, then representative.

The rule (:data:`SELECTION_RULE`) needs only CC-100 sizes and the centroids' cosine matrix:

1. **Eligible** languages of a cluster are those allowed (all, or those with training material) whose CC-100
   size reaches the cluster's floor ``min(high_gib, resource_frac x its largest allowed member)``: training
   languages are high-resource (10 GiB by default) or, in a cluster without any (the African one), among its
   largest. The cap keeps one very large member (Persian next to Indic languages) from shutting out the rest.
2. **Coverage**: the cluster is served by its picks through ``sum_m max_{s in picks} cos(m, s)`` over its
   members ``m``. The gain of a first pick is its mean cosine to the members (its centrality); a second pick
   gains by serving the members the first one serves worst (another script or branch).
3. **Score** of each eligible language in each round: ``resource_weight x rank(log CC-100 size) +
   rank(coverage gain)``, ranks scaled to [0, 1] among the candidates. Resource level weighs twice as much by
   default: the paper picks high-resource languages, and with a sentence-aligned encoder such as mE5 the
   centroids' cosines span only a few hundredths, so centrality separates near-equals rather than leads.
4. A cluster gets a second pick when it has at least ``two_from`` members (11: the paper's four largest
   clusters); ties break by CC-100 size.

Example:
    >>> cos = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.3], [0.2, 0.3, 1.0]])
    >>> sel = select_languages(["a", "b", "c"], cos, {"a": 0, "b": 0, "c": 1}, {"a": 9.0, "b": 1.0, "c": 2.0})
    >>> [p.lang for p in sel.picks]
    ['a', 'c']
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

SELECTION_RULE = (
    "per cluster: eligible = allowed languages with CC-100 size >= min(high_gib, resource_frac x the "
    "cluster's largest allowed language); each pick maximizes resource_weight x rank(log CC-100 size) + "
    "rank(coverage gain), coverage = sum over members of the max cosine to a pick (pick 1: centrality); a "
    "second pick when the cluster has >= two_from members; ties by CC-100 size"
)


@dataclass(frozen=True)
class Pick:
    """One chosen training language and why.

    Attributes:
        lang: canonical code.
        cluster: its cluster id.
        rank: 1 or 2 within the cluster.
        cc100_gib: CC-100 size.
        centrality: mean cosine to the cluster's members (itself included).
        coverage_gain: how much the pick raised the members' mean coverage (pick 1: its centrality).
        reason: one sentence for ``languages.json``.
    """

    lang: str
    cluster: int
    rank: int
    cc100_gib: float
    centrality: float
    coverage_gain: float
    reason: str


@dataclass(frozen=True)
class SelectionParams:
    """Knobs of :data:`SELECTION_RULE`."""

    high_gib: float = 10.0
    resource_frac: float = 0.25
    resource_weight: float = 2.0
    two_from: int = 11
    max_per_cluster: int = 2


@dataclass(frozen=True)
class ClusterDecision:
    """How one cluster's picks were made.

    Attributes:
        members: the cluster's embedded languages.
        largest: the largest allowed member by CC-100 size.
        floor: the CC-100 size an eligible language needs.
        eligible: allowed members at or above the floor.
        rounds: per pick, ``{language: (score, coverage gain)}`` of every candidate, best first.
    """

    members: list[str]
    largest: str
    floor: float
    eligible: list[str]
    rounds: list[dict[str, tuple[float, float]]]


@dataclass
class Selection:
    """The picks, each cluster's decision, clusters without a pick, languages the rule could not score."""

    picks: list[Pick]
    params: SelectionParams
    decisions: dict[int, ClusterDecision] = field(default_factory=dict)
    uncovered: dict[int, str] = field(default_factory=dict)
    unscored: dict[str, str] = field(default_factory=dict)

    @property
    def langs(self) -> list[str]:
        return [p.lang for p in self.picks]

    def why_not(
        self, lang: str, clusters: Mapping[str, int], sizes: Mapping[str, float | None], allowed=None
    ) -> str:
        """One sentence on why ``lang`` was not picked."""
        if lang in self.unscored:
            return f"{lang}: {self.unscored[lang]}"
        if lang not in clusters:
            return f"{lang}: not in any cluster of this partition"
        if allowed is not None and lang not in allowed:
            return f"{lang}: no training material"
        c = clusters[lang]
        d = self.decisions.get(c)
        if d is None:
            return f"{lang}: cluster {c} has no pick ({self.uncovered.get(c, 'no eligible member')})"
        picked = [p.lang for p in self.picks if p.cluster == c]
        if lang not in d.eligible:
            return (
                f"{lang}: CC-100 {sizes[lang]:g} GiB is below cluster {c}'s floor of {d.floor:.1f} GiB "
                f"(min of {self.params.high_gib:g} and {self.params.resource_frac:g} x {d.largest}'s "
                f"{sizes[d.largest]:g}); picked {', '.join(picked)}"
            )
        rounds = "; ".join(
            f"pick {i + 1}: {lang} scores {r[lang][0]:.2f} ({_gain_name(i)} {r[lang][1]:.3f}), "
            f"{picked[i]} {r[picked[i]][0]:.2f} ({_gain_name(i)} {r[picked[i]][1]:.3f})"
            for i, r in enumerate(d.rounds)
        )
        one = "" if len(picked) > 1 else f"; one pick (cluster of {len(d.members)} < {self.params.two_from})"
        return f"{lang}: eligible in cluster {c} ({sizes[lang]:g} GiB) but scores lower: {rounds}{one}"

    def to_dict(self) -> dict:
        return {
            "rule": SELECTION_RULE,
            "params": asdict(self.params),
            "languages": self.langs,
            "picks": [
                {
                    **asdict(p),
                    "centrality": round(p.centrality, 4),
                    "coverage_gain": round(p.coverage_gain, 4),
                }
                for p in self.picks
            ],
            "clusters": {
                str(c): {
                    "members": d.members,
                    "largest": d.largest,
                    "floor_gib": round(d.floor, 3),
                    "eligible": d.eligible,
                    "rounds": [{k: [round(v, 4) for v in sg] for k, sg in r.items()} for r in d.rounds],
                }
                for c, d in sorted(self.decisions.items())
            },
            "uncovered_clusters": {str(k): v for k, v in sorted(self.uncovered.items())},
            "unscored_languages": dict(sorted(self.unscored.items())),
        }


def _gain_name(rank0: int) -> str:
    return "centrality" if rank0 == 0 else "coverage gain"


def _rank01(values: list[float]) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties share their mean rank); a single value ranks 1."""
    from scipy.stats import rankdata

    if len(values) == 1:
        return np.ones(1)
    return (rankdata(values) - 1) / (len(values) - 1)


def select_languages(
    langs: list[str],
    cosine: np.ndarray,
    clusters: Mapping[str, int],
    cc100_gib: Mapping[str, float | None],
    allowed: Collection[str] | None = None,
    params: SelectionParams | None = None,
) -> Selection:
    """Apply :data:`SELECTION_RULE`.

    Args:
        langs: the languages of ``cosine``'s rows and columns.
        cosine: ``(n, n)`` cosine similarities of the L2-normalized language centroids.
        clusters: language -> cluster id; languages missing from ``langs`` are reported in ``unscored``.
        cc100_gib: CC-100 size per language (``None`` or missing: not eligible, reported in ``unscored``).
        allowed: if given, only these languages may be picked (e.g. those with training material).
        params: the rule's parameters (default: :class:`SelectionParams`).

    Raises:
        ValueError: if ``cosine`` does not match ``langs``.
    """
    params = params or SelectionParams()
    cosine = np.asarray(cosine, dtype=float)
    if cosine.shape != (len(langs), len(langs)):
        raise ValueError(
            f"cosine matrix is {cosine.shape}, expected {(len(langs),) * 2} for {len(langs)} languages"
        )
    index = {lang: i for i, lang in enumerate(langs)}
    sel = Selection([], params)
    by_cluster: dict[int, list[str]] = {}
    for lang, c in clusters.items():
        if lang not in index:
            sel.unscored[lang] = "no embedding in this run"
            continue
        if cc100_gib.get(lang) is None:
            sel.unscored[lang] = "no CC-100 size"
        by_cluster.setdefault(c, []).append(lang)

    for c, members in sorted(by_cluster.items()):
        pool = [m for m in members if cc100_gib.get(m) is not None and (allowed is None or m in allowed)]
        if not pool:
            sel.uncovered[c] = "no member has training material" if allowed is not None else "no CC-100 sizes"
            continue
        largest = max(pool, key=lambda m: cc100_gib[m])
        floor = min(params.high_gib, params.resource_frac * cc100_gib[largest])
        eligible = [m for m in pool if cc100_gib[m] >= floor]
        sims = cosine[np.ix_([index[e] for e in eligible], [index[m] for m in members])]  # eligible x members
        covered = np.full(len(members), -np.inf)
        rounds: list[dict[str, tuple[float, float]]] = []
        n_picks = min(params.max_per_cluster if len(members) >= params.two_from else 1, len(eligible))
        for rank in range(1, n_picks + 1):
            base = covered.mean() if rounds else 0.0
            cand = [e for e in eligible if e not in sel.langs]
            gain = {e: float(np.maximum(sims[eligible.index(e)], covered).mean() - base) for e in cand}
            size_rank = _rank01([np.log(cc100_gib[e]) for e in cand])
            score = params.resource_weight * size_rank + _rank01([gain[e] for e in cand])
            order = sorted(zip(cand, score), key=lambda t: (-round(t[1], 9), -cc100_gib[t[0]]))
            rounds.append({e: (float(sc), gain[e]) for e, sc in order})
            lang, best = order[0]
            alt = ", ".join(f"{e} {sc:.2f}" for e, sc in order[1:3]) or "no other eligible"
            reason = (
                f"cluster {c} ({len(members)} members, {len(eligible)} eligible at >= {floor:g} GiB), "
                f"pick {rank}: CC-100 {cc100_gib[lang]:g} GiB, {_gain_name(rank - 1)} "
                f"{gain[lang]:.3f}, best score {best:.2f} (next: {alt})"
            )
            row = sims[eligible.index(lang)]
            sel.picks.append(
                Pick(lang, c, rank, float(cc100_gib[lang]), float(row.mean()), gain[lang], reason)
            )
            covered = np.maximum(covered, row)
        sel.decisions[c] = ClusterDecision(members, largest, floor, eligible, rounds)
    return sel


#: The paper's 13 training languages (§3.2), as canonical codes ("zh" = zh-Hans, "fil" = tl).
PAPER_PICKS = ("es", "en", "de", "ru", "cs", "fi", "hi", "ta", "zh-Hans", "vi", "ar", "sw", "tl")


def selection_report(
    clusters_json: dict,
    use_paper_clusters: bool = False,
    allowed: Collection[str] | None = None,
    params: SelectionParams | None = None,
) -> dict:
    """Run :func:`select_languages` on a ``clusters.json`` and compare with the paper's 13.

    Args:
        clusters_json: the content of a ``crestguard cluster`` report (languages, clusters, centroid cosines).
        use_paper_clusters: partition by the paper's Table 8 instead of the run's clusters (centralities
            still come from the run's centroids).
        allowed: only these languages may be picked.
        params: the rule's parameters.

    Returns:
        The ``languages.json`` document (without ``command``).
    """
    from crestguard import languages
    from crestguard.clustering.pipeline import paper_partition

    cos = clusters_json["centroid_cosine"]
    partition = (
        paper_partition()
        if use_paper_clusters
        else {r["code"]: r["cluster"] for r in clusters_json["languages"]}
    )
    sizes = {lang: languages.get(lang).cc100_gib for lang in partition}
    sel = select_languages(cos["languages"], np.asarray(cos["matrix"]), partition, sizes, allowed, params)
    ours = set(sel.langs)
    why = [f"{p.lang} (not in the paper's 13): {p.reason}" for p in sel.picks if p.lang not in PAPER_PICKS]
    why += [sel.why_not(lang, partition, sizes, allowed) for lang in PAPER_PICKS if lang not in ours]
    return {
        "clusters_source": "the paper's Table 8" if use_paper_clusters else clusters_json["command"],
        **sel.to_dict(),
        "allowed": sorted(allowed) if allowed is not None else None,
        "paper_selection_comparison": {
            "paper": list(PAPER_PICKS),
            "same": [lang for lang in sel.langs if lang in PAPER_PICKS],
            "only_ours": [lang for lang in sel.langs if lang not in PAPER_PICKS],
            "only_paper": [lang for lang in PAPER_PICKS if lang not in ours],
        },
        "differences_explained": why,
    }
