"""``crestguard cluster`` end to end: corpus -> sentence embeddings -> centroids -> k sweep -> report.

Example:
    >>> from crestguard.clustering.pipeline import ClusterOptions, run_clustering
    >>> result = run_clustering(ClusterOptions(sentences=200), out_dir="reports/clusters")  # doctest: +SKIP
    >>> result["k"]["chosen"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from crestguard.clustering.compare import Comparison, compare_partitions, relabel_like
from crestguard.clustering.corpus import CORPORA, ParallelCorpus, from_records
from crestguard.clustering.embed import EmbedSpec, Progress, SentenceEmbeddings, embed_corpus
from crestguard.clustering.kmeans import ELBOW_RULE, KSweep, l2_normalize, spherical_kmeans, sweep_k
from crestguard.clustering.stability import seed_stability, split_half_stability
from crestguard.data.records import Record
from crestguard.errors import CrestGuardError
from crestguard.paths import REPO_ROOT

#: Where ``crestguard cluster`` writes by default.
DEFAULT_OUT = REPO_ROOT / "reports" / "clusters"
#: Called with a one-line description of the step being started.
Step = Callable[[str], None]


@dataclass(frozen=True)
class ClusterOptions:
    """Options of a clustering run (the ``crestguard cluster`` flags).

    Attributes:
        corpus: a key of :data:`~crestguard.clustering.corpus.CORPORA`.
        backbone: encoder name, hub id or local path.
        layer: hidden state to pool (-1 = last).
        pooling: ``mean`` (Eq. 1) or ``cls``.
        sentences: parallel sentences per language (the same ids in every language).
        seed: draws the sentences, seeds k-means, the halvings and t-SNE.
        k: fixed k (``None``: the elbow rule).
        k_max: the sweep's largest k.
        n_init: k-means++ restarts per fit.
        bf16: bfloat16 autocast for the encoder.
        max_length: token limit (longer sentences are truncated and counted).
        langs: languages to cluster (``None``: every XLM-R language the corpus has).
        stability_seeds: other k-means seeds to compare with.
        halvings: random splits of the sentences into two disjoint halves.
        tsne_per_lang: sentences per language in the t-SNE figure.
        data_dir: the data directory (``None``: the default).
        refresh: recompute embeddings even if cached.
    """

    corpus: str = "flores200"
    backbone: str = "me5-small-q4"
    layer: int = -1
    pooling: str = "mean"
    sentences: int = 200
    seed: int = 0
    k: int | None = None
    k_max: int = 20
    n_init: int = 100
    bf16: bool = True
    max_length: int = 512
    langs: tuple[str, ...] | None = None
    stability_seeds: int = 10
    halvings: int = 5
    tsne_per_lang: int = 20
    data_dir: str | None = None
    refresh: bool = False

    def validate(self) -> None:
        """Raise :class:`CrestGuardError` naming the first option out of range."""
        from crestguard.backbones.pooling import POOLINGS

        checks = [
            (self.corpus in CORPORA, f"unknown corpus {self.corpus!r}; choose one of {', '.join(CORPORA)}"),
            (
                self.pooling in POOLINGS,
                f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}",
            ),
            (self.sentences >= 2, f"--sentences must be at least 2 (two halves), got {self.sentences}"),
            (self.k is None or self.k >= 1, f"--k must be at least 1, got {self.k}"),
            (self.k_max >= 3, f"--k-max must be at least 3, got {self.k_max}"),
            (self.n_init >= 1, f"--n-init must be at least 1, got {self.n_init}"),
            (self.tsne_per_lang >= 2, f"--tsne-per-lang must be at least 2, got {self.tsne_per_lang}"),
        ]
        for ok, message in checks:
            if not ok:
                raise CrestGuardError(message)

    def embed_spec(self) -> EmbedSpec:
        return EmbedSpec(self.backbone, self.layer, self.pooling, self.max_length, self.bf16)


def load_corpus(opts: ClusterOptions) -> ParallelCorpus:
    """The parallel corpus of ``opts`` restricted to XLM-R's languages (or ``opts.langs``), all sentences.

    Raises:
        CrestGuardError: unknown corpus name or language code, or a corpus that is not parallel.
    """
    from crestguard import languages

    opts.validate()
    wanted = (
        [languages.resolve(c) for c in opts.langs]
        if opts.langs
        else [x.code for x in languages.all_languages()]
    )
    return from_records(CORPORA[opts.corpus], _records(CORPORA[opts.corpus], opts.data_dir), wanted)


@cache
def _records(name: str, data_dir: str | None) -> tuple[Record, ...]:
    """The records of a corpus, read once per process (the FLORES-200 loader reads 205 files)."""
    from crestguard.data import load_dataset

    return tuple(load_dataset(name, data_dir).records)


def paper_partition() -> dict[str, int]:
    """The CREST paper's Table 8 as language -> cluster."""
    from crestguard import languages

    return {lang: c for c, members in languages.paper_clusters().items() for lang in members}


def _k_table(sweep: KSweep, vs_paper: Callable[[np.ndarray], Comparison]) -> list[dict]:
    """One row per k: inertia, gap below the chord, silhouette, and agreement with the paper's clusters."""
    rows = []
    for k, fit, sil, gap in zip(sweep.ks, sweep.fits, sweep.silhouettes, sweep.gaps):
        cmp = vs_paper(fit.labels) if k > 1 else None
        rows.append(
            {
                "k": k,
                "inertia": round(fit.inertia, 5),
                "chord_gap": round(gap, 4),
                "silhouette": None if sil is None else round(sil, 4),
                "ari_paper": None if cmp is None else round(cmp.ari, 4),
                "nmi_paper": None if cmp is None else round(cmp.nmi, 4),
            }
        )
    return rows


def _tsne(emb: SentenceEmbeddings, opts: ClusterOptions, step: Step) -> dict[str, np.ndarray]:
    """t-SNE coordinates for a fixed subsample of sentences, cached beside the embeddings."""
    from crestguard.clustering.plots import tsne_coordinates

    per = min(opts.tsne_per_lang, len(emb.groups))
    idx = np.sort(np.random.default_rng(opts.seed).choice(len(emb.groups), size=per, replace=False))
    path = emb.folder / f"tsne-n{per}-s{opts.seed}-{len(emb.langs)}langs.npz"
    if path.exists() and not opts.refresh:
        with np.load(path) as z:
            if z["langs"].tolist() == emb.langs:
                return {"raw": z["raw"], "residual": z["residual"]}
    step(f"t-SNE of {len(emb.langs)} x {per} sentences")
    coords = tsne_coordinates(emb.vectors[:, idx], seed=opts.seed)
    np.savez(path, langs=np.array(emb.langs), **coords)
    return coords


def run_clustering(
    opts: ClusterOptions,
    out_dir: str | Path,
    reference: str | Path | None = None,
    plots: bool = True,
    step: Step = lambda _: None,
    progress: Progress | None = None,
    backbone=None,
    cache_root: Path | None = None,
) -> dict:
    """Run the whole clustering and write ``clusters.json``, ``clusters.md`` and the PNGs into ``out_dir``.

    Args:
        opts: the run's options.
        out_dir: where the report goes (created).
        reference: another run's ``clusters.json`` to compare with (e.g. fp32 against bf16, another layer).
        plots: write the PNGs.
        step: called with the name of each step.
        progress: called after each embedded language.
        backbone: an already loaded backbone named ``opts.backbone`` (default: loaded if a language is not
            cached).
        cache_root: the cache root for embeddings and t-SNE (default: :func:`crestguard.paths.cache_dir`).

    Returns:
        The content of ``clusters.json``.
    """
    from crestguard import languages
    from crestguard.clustering import report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step(f"reading {opts.corpus}")
    full = load_corpus(opts)
    corpus = full.subset(opts.sentences, opts.seed)
    step(f"embedding {len(corpus.langs)} languages x {len(corpus.groups)} sentences with {opts.backbone}")
    emb = embed_corpus(corpus, opts.embed_spec(), opts.refresh, progress, backbone, cache_root)
    x = l2_normalize(emb.centroids())
    langs = emb.langs

    step(f"k-means for k = 1..{opts.k_max}")
    paper = paper_partition()

    def vs_paper(labels):
        return compare_partitions(dict(zip(langs, labels.tolist())), paper)

    from threadpoolctl import threadpool_limits

    # Thousands of fits on a ~100 x 100 Gram matrix: BLAS threads only add overhead (much more on a busy CPU).
    with threadpool_limits(1):
        sweep = sweep_k(x, opts.k_max, seed=opts.seed, n_init=opts.n_init)
        k = opts.k or sweep.elbow_k
        fit = sweep.fit(k) if k <= opts.k_max else spherical_kmeans(x, k, seed=opts.seed, n_init=opts.n_init)
        ours = relabel_like(dict(zip(langs, fit.labels.tolist())), paper)
        labels = np.array([ours[lang] for lang in langs])

        step("stability across seeds and halves")
        stab_seeds = list(range(opts.seed + 1, opts.seed + 1 + opts.stability_seeds))
        stability = {
            "seeds": seed_stability(x, k, labels, stab_seeds, opts.n_init),
            "halves": split_half_stability(
                emb.vectors, k, labels, opts.k_max, opts.halvings, opts.seed, opts.n_init
            ),
        }
    cosine = np.round(x @ x.T, 5)
    ref_cmp = None
    if reference:
        ref = json.loads(Path(reference).read_text(encoding="utf-8"))
        ref_part = {row["code"]: row["cluster"] for row in ref["languages"]}
        ref_cmp = {"path": report.display_path(reference), **compare_partitions(ours, ref_part).to_dict()}
        ref_cos = ref["centroid_cosine"]
        common = [lang for lang in langs if lang in ref_cos["languages"]]
        ia = [langs.index(lang) for lang in common]
        ib = [ref_cos["languages"].index(lang) for lang in common]
        diff = np.abs(cosine[np.ix_(ia, ia)] - np.asarray(ref_cos["matrix"])[np.ix_(ib, ib)])
        ref_cmp["max_abs_cosine_difference"] = round(float(diff.max()), 5)

    result = {
        "command": report.command_line(opts, out, reference),
        "options": {**asdict(opts), "langs": list(opts.langs) if opts.langs else None},
        "corpus": {
            "name": corpus.name,
            "languages": len(langs),
            "parallel_sentences_available": len(full.groups),
            "sentences_per_language": len(corpus.groups),
            "sentence_ids": corpus.groups,
            "excluded_languages": corpus.excluded,
            "sentence_ids_missing_per_language": corpus.missing,
            "truncated_sentences": sum(emb.truncated.values()),
        },
        "embedding": {
            "backbone": opts.backbone,
            "layer": opts.layer,
            "pooling": opts.pooling,
            "precision": "bf16" if opts.bf16 else "fp32",
            "cache": "/".join(emb.folder.parts[-4:]),
            "seconds_when_computed": round(sum(emb.seconds.values()), 1),
            "sentences_per_second_when_computed": round(
                len(langs) * len(corpus.groups) / sum(emb.seconds.values()), 1
            ),
            "languages_computed_this_run": len(emb.computed),
        },
        "k": {
            "chosen": k,
            "how": "fixed by --k" if opts.k else "elbow rule",
            "elbow_rule": ELBOW_RULE,
            "elbow_k": sweep.elbow_k,
            "best_silhouette_k": max(
                (r for r in zip(sweep.ks, sweep.silhouettes) if r[1] is not None), key=lambda r: r[1]
            )[0],
            "table": _k_table(sweep, vs_paper),
        },
        "languages": [
            {
                "code": lang,
                "name": languages.get(lang).name,
                "cluster": int(c),
                "paper_cluster": paper.get(lang),
                "centrality": round(float(cosine[i, labels == c].mean()), 4),
            }
            for i, (lang, c) in enumerate(zip(langs, labels))
        ],
        "clusters": {
            str(c): [lang for lang in langs if ours[lang] == c] for c in sorted(set(labels.tolist()))
        },
        "cluster_profiles": _profiles(ours),
        "inertia": round(fit.inertia, 5),
        "silhouette": None if k < 2 else round(_silhouette(x, labels), 4),
        "paper_comparison": compare_partitions(ours, paper).to_dict(),
        "reference_comparison": ref_cmp,
        "stability": stability,
        "centroid_cosine": {"languages": langs, "matrix": cosine.tolist()},
    }
    if plots:
        from crestguard.clustering import plots as P

        step("plots")
        P.plot_k_curve(result["k"]["table"], k, out / "k_curve.png")
        P.plot_heatmap(cosine, langs, labels.tolist(), out / "centroid_similarity.png")
        coords = _tsne(emb, opts, step)
        P.plot_tsne(coords, langs, labels.tolist(), len(coords["raw"]) // len(langs), out / "tsne.png")
    report.write_cluster_report(result, out)
    return result


def _profiles(partition: dict[str, int]) -> dict[str, dict]:
    """Per cluster: size, median CC-100 GiB and scripts (what clusters follow besides language families)."""
    from collections import Counter

    from crestguard import languages

    out = {}
    for c in sorted(set(partition.values())):
        rows = [languages.get(lang) for lang, cc in partition.items() if cc == c]
        sizes = [r.cc100_gib for r in rows if r.cc100_gib is not None]
        out[str(c)] = {
            "size": len(rows),
            "median_cc100_gib": round(float(np.median(sizes)), 2) if sizes else None,
            "scripts": dict(Counter(r.script for r in rows).most_common()),
        }
    return out


def _silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(x, labels, metric="cosine"))
