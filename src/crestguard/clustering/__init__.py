"""Language clustering and training-language selection (CREST §3.1-3.2, appendix A).

The flow: a parallel corpus (:mod:`.corpus`) -> mean-pooled sentence embeddings per language, cached
(:mod:`.embed`, Eq. 1) -> language centroids (Eq. 2), L2-normalized -> spherical k-means with k from the
elbow of the inertia curve (:mod:`.kmeans`) -> stability (:mod:`.stability`) and agreement with the paper's
Table 8 (:mod:`.compare`) -> 1-2 training languages per cluster (:mod:`.selection`). :mod:`.pipeline` runs it
end to end; :mod:`.report` and :mod:`.plots` write ``clusters.json``, ``clusters.md``, ``languages.json`` and
the figures.

Example:
    >>> from crestguard.clustering import ClusterOptions, run_clustering
    >>> result = run_clustering(ClusterOptions(), "reports/clusters")  # doctest: +SKIP
    >>> result["k"]["chosen"], result["paper_comparison"]["ari"]  # doctest: +SKIP
"""

from __future__ import annotations

from crestguard.clustering.compare import Comparison, compare_partitions
from crestguard.clustering.corpus import ParallelCorpus
from crestguard.clustering.embed import EmbedSpec, SentenceEmbeddings, embed_corpus
from crestguard.clustering.kmeans import elbow, spherical_kmeans, sweep_k
from crestguard.clustering.pipeline import ClusterOptions, run_clustering
from crestguard.clustering.selection import SelectionParams, select_languages, selection_report

__all__ = [
    "ClusterOptions",
    "Comparison",
    "EmbedSpec",
    "ParallelCorpus",
    "SelectionParams",
    "SentenceEmbeddings",
    "compare_partitions",
    "elbow",
    "embed_corpus",
    "run_clustering",
    "select_languages",
    "selection_report",
    "spherical_kmeans",
    "sweep_k",
]
