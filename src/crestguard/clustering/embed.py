"""Sentence embeddings of a parallel corpus per language (Eq. 1), cached, and language centroids (Eq. 2).

The cache holds one ``<lang>.npz`` per language under
``$CRESTGUARD_HOME/embeddings/<backbone>/<corpus>/<layer, pooling, sentences, precision, ids hash>/``:
an interrupted run keeps the languages already done; a re-run loads everything without the backbone.
``meta.json`` in each folder records the spec and the sentence ids, for whoever inspects the cache.
Vectors are stored as pooled (not normalized), exactly Eq. 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crestguard.clustering.corpus import ParallelCorpus
from crestguard.errors import CrestGuardError
from crestguard.paths import cache_dir

#: Called after each language with (language, languages done, languages in all).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EmbedSpec:
    """Everything that changes the sentence vectors, hence the cache key.

    Attributes:
        backbone: registry name, hub id or local path of the encoder.
        layer: hidden state to pool (-1 = last layer, 0 = embedding output).
        pooling: ``"mean"`` (Eq. 1) or ``"cls"``.
        max_length: token limit; longer sentences are counted as truncated.
        bf16: bfloat16 autocast (about 2x faster on CPU); fp32 otherwise.
        batch_size: sentences per forward pass (does not change the vectors beyond float noise).
    """

    backbone: str
    layer: int = -1
    pooling: str = "mean"
    max_length: int = 512
    bf16: bool = True
    batch_size: int = 32

    def cache_dir(self, corpus: ParallelCorpus, root: Path | None = None) -> Path:
        """The cache folder of this spec and the corpus's sentence ids under ``root`` (default: the cache)."""
        ids = hashlib.sha256("\n".join(corpus.groups).encode()).hexdigest()[:10]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.backbone.strip("/"))
        precision = "bf16" if self.bf16 else "fp32"
        leaf = f"L{self.layer}-{self.pooling}-n{len(corpus.groups)}-m{self.max_length}-{precision}-{ids}"
        return Path(root or cache_dir()) / "embeddings" / slug / corpus.name / leaf


@dataclass
class SentenceEmbeddings:
    """Pooled sentence vectors per language over the same sentence ids.

    Attributes:
        langs: canonical language codes, one per row of ``vectors``.
        groups: sentence ids, one per column of ``vectors`` (the same sentence in every language).
        vectors: ``(languages, sentences, hidden)`` float32, Eq. 1 (not normalized).
        truncated: per language, sentences longer than ``max_length`` tokens.
        computed: languages embedded in this run (the rest came from the cache).
        seconds: encoding time per language when it was computed (also for cached ones).
        folder: the cache folder.
    """

    langs: list[str]
    groups: list[str]
    vectors: np.ndarray
    truncated: dict[str, int]
    computed: list[str]
    seconds: dict[str, float]
    folder: Path

    def centroids(self, sentences: np.ndarray | None = None) -> np.ndarray:
        """Eq. 2: the mean sentence vector per language, ``(languages, hidden)``, over all or these ids."""
        return centroids(self.vectors if sentences is None else self.vectors[:, sentences])


def centroids(vectors: np.ndarray) -> np.ndarray:
    """Eq. 2 on a ``(languages, sentences, hidden)`` array: mean over sentences."""
    return np.asarray(vectors, dtype=np.float64).mean(axis=1)


def _save(path: Path, vectors: np.ndarray, truncated: int, seconds: float) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, vectors=vectors, truncated=truncated, seconds=seconds)
    os.replace(tmp, path)


def _load(path: Path, n: int) -> tuple[np.ndarray, int, float] | None:
    """A cached language, or ``None`` when the file is unreadable or has the wrong number of sentences."""
    try:
        with np.load(path) as z:
            vec, trunc, sec = z["vectors"], int(z["truncated"]), float(z["seconds"])
    except (OSError, KeyError, ValueError):
        return None
    return (vec, trunc, sec) if vec.ndim == 2 and vec.shape[0] == n else None


def embed_corpus(
    corpus: ParallelCorpus,
    spec: EmbedSpec,
    refresh: bool = False,
    progress: Progress | None = None,
    backbone=None,
    cache_root: Path | None = None,
) -> SentenceEmbeddings:
    """Embed every language of ``corpus`` with ``spec``, reading and filling the cache.

    The backbone is loaded only if some language is not cached. Sentence order inside a language is sorted by
    length by the backbone for batching; the vectors come back in corpus order.

    Args:
        corpus: the texts (usually a :meth:`~ParallelCorpus.subset`).
        spec: encoder settings; with the corpus's sentence ids they name the cache folder.
        refresh: recompute (and overwrite) cached languages.
        progress: called after each language.
        backbone: an already loaded backbone named ``spec.backbone`` (default: loaded when needed).
        cache_root: the cache root (default: :func:`crestguard.paths.cache_dir`).

    Raises:
        CrestGuardError: from the backbone (unknown name, missing package) or a corrupt cache folder.
    """
    folder = spec.cache_dir(corpus, cache_root)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "meta.json"
    if not meta.exists():
        meta.write_text(
            json.dumps({"spec": asdict(spec), "corpus": corpus.name, "groups": corpus.groups}, indent=1)
        )
    n = len(corpus.groups)
    rows, truncated, computed, seconds = [], {}, [], {}
    for i, lang in enumerate(corpus.langs):
        path = folder / f"{lang}.npz"
        hit = None if refresh else _load(path, n)
        if hit is None:
            if backbone is None:
                from transformers.utils import logging as hf_logging

                from crestguard.backbones import load_backbone

                hf_logging.disable_progress_bar()
                backbone = load_backbone(spec.backbone)
            layers = backbone.info.num_layers
            if not -layers - 1 <= spec.layer <= layers:
                raise CrestGuardError(
                    f"layer {spec.layer} is not in {spec.backbone}: hidden states 0..{layers}, -1 = last"
                )
            texts = corpus.texts[lang]
            t0 = time.perf_counter()
            vec = backbone.encode(
                texts,
                batch_size=spec.batch_size,
                max_length=spec.max_length,
                layer=spec.layer,
                pooling=spec.pooling,
                normalize=False,
                bf16=spec.bf16,
            )
            sec = time.perf_counter() - t0
            trunc = sum(k > spec.max_length for k in backbone.token_counts(texts))
            _save(path, vec, trunc, sec)
            hit = (vec, trunc, sec)
            computed.append(lang)
        rows.append(hit[0])
        truncated[lang], seconds[lang] = hit[1], hit[2]
        if progress:
            progress(lang, i + 1, len(corpus.langs))
    dims = {r.shape[1] for r in rows}
    if len(dims) != 1:
        raise CrestGuardError(
            f"cached embeddings in {folder} have mixed widths {sorted(dims)}; rerun with --refresh"
        )
    return SentenceEmbeddings(
        list(corpus.langs), list(corpus.groups), np.stack(rows), truncated, computed, seconds, folder
    )
