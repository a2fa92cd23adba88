"""Language invariance on parallel text: a sentence and its translation should get the same score.

A fine-tuned guard can learn language itself as a feature: "French means unsafe" when French has many unsafe
prompts, "Swahili means safe" when a language only ever appears in benign text. The regularizer of
:func:`invariance_loss` removes that shortcut where parallel text exists: each optimizer step it scores a batch of
translation pairs (an English sentence and the same sentence in another language) and adds
``weight x mean((margin_a - margin_b)^2)``, the squared difference of their logit margins
(``logit_unsafe - logit_safe``), to the loss. It pulls every language's score towards its translation's whatever
the label, so it never teaches a label by itself; the classification loss does that.

Pairs come from parallel corpora in the data registry (FLORES-200, NTREX-128: neutral text in ~200 languages, every
group one sentence in all its languages), drawn deterministically (:func:`parallel_pairs`). Evaluation items are
refused like in a training mix: groups the suite's manifest reserves are skipped.

Example:
    >>> pairs = parallel_pairs(["flores200"], n=4, seed=0)
    >>> [(a.lang, b.lang) for a, b in pairs][:1]
    [('en', 'ace')]
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from crestguard.data.records import Record

PIVOT = "en"


def _rank(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def parallel_pairs(datasets: Sequence[str], n: int, seed: int, langs: Sequence[str] | None = None,
                   data_dir: str | None = None, manifest=None) -> list[tuple[Record, Record]]:
    """``n`` pairs ``(English record, the same group in another language)``, deterministic in ``seed``.

    Args:
        datasets: parallel registry datasets (every group one text in several languages, English among them).
        n: pairs to draw; groups are spread evenly over the other languages (round robin in a seeded order).
        langs: restrict the partner languages (default: every language of the dataset).
        manifest: an evaluation manifest (:mod:`crestguard.evaluation.manifest`); reserved records are skipped.
    """
    from crestguard.data import load_dataset

    by_lang: dict[str, dict[str, Record]] = defaultdict(dict)
    for name in datasets:
        for rec in load_dataset(name, data_dir=data_dir).records:
            if manifest is not None and manifest.is_reserved(rec):
                continue
            by_lang[rec.lang][rec.group] = rec
    pivot = by_lang.get(PIVOT, {})
    partners = sorted(lang for lang in by_lang if lang != PIVOT and (langs is None or lang in langs))
    if not pivot or not partners or n <= 0:
        return []
    partners.sort(key=lambda lang: _rank(seed, "lang", lang))
    queues = {lang: sorted((g for g in by_lang[lang] if g in pivot), key=lambda g: _rank(seed, lang, g))
              for lang in partners}
    pairs: list[tuple[Record, Record]] = []
    depth = 0
    while len(pairs) < n and any(depth < len(q) for q in queues.values()):
        for lang in partners:
            if depth < len(queues[lang]) and len(pairs) < n:
                group = queues[lang][depth]
                pairs.append((pivot[group], by_lang[lang][group]))
        depth += 1
    return pairs


def invariance_loss(margins_a, margins_b):
    """Mean squared difference of two tensors of logit margins (one per pair member)."""
    return ((margins_a - margins_b) ** 2).mean()


def margins(logits):
    """``logit_unsafe - logit_safe`` of a ``(batch, 2)`` logits tensor."""
    return logits[:, 1] - logits[:, 0]
