"""Run a classifier over a suite and aggregate: per set, per language, per cluster, in- vs out-of-domain.

The result is one JSON-ready dict (schema ``crestguard.eval/1``, documented in ``reports/README.md``):

- ``sets``: every set's metric block, bootstrap intervals and per-language blocks, beside the paper's figures;
- ``languages``: items of the sets marked ``per_language`` pooled by language (unsafe from MultiJail/RTP-LX,
  benign from the held-out benign sets), with the paper cluster and the in/out-of-domain tag;
- ``clusters``: the same pooled by the paper's Table 8 cluster, with macro averages over its languages;
- ``macro`` and ``domains``: macro averages over languages (with intervals), overall and split ID / OOD;
- ``benign_fpr``: FPR of all benign items by text form, length bucket and whether the source was trained on;
- ``reliability``: calibration bins over all items; ``top_false_positives``: the benign items scored highest;
- ``headline`` and ``hate`` (suite v2, :mod:`crestguard.evaluation.headline`): recall on the unsafe sets at the
  threshold that flags 5% of real user prompts, AUROC, trade-off curves, real-prompt FPR by language and by
  source (never trained on vs held-out groups); hate-speech F1 and contrast-case FPR per language.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crestguard import __version__
from crestguard.evaluation import metrics as M
from crestguard.evaluation.headline import hate, headline
from crestguard.evaluation.classifiers import Classifier, describe, score_texts
from crestguard.evaluation.suite import EvalSet, Suite
from crestguard.evaluation.textform import FORMS, LENGTH_BUCKETS, length_bucket, text_form

SCHEMA = "crestguard.eval/1"
HEADLINE = ("f1", "recall", "fpr", "f1_balanced")
MACRO_METRICS = ("f1_balanced", "f1", "recall", "fpr")
NO_CLUSTER = "none"


@dataclass
class Settings:
    """Knobs of one evaluation (stored in ``results.json``)."""

    threshold: float | None = None  # None: the model's own threshold
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    ece_bins: int = 10
    top_k: int = 15


def _lang_info(code: str) -> dict[str, Any]:
    from crestguard import languages
    from crestguard.errors import UnknownLanguageError

    try:
        lang = languages.get(code)
    except UnknownLanguageError:
        return {"name": None, "cluster": None, "in_xlmr": None,
                "null": {"cluster": f"unknown language code {code!r}"}}
    info = {"name": lang.name, "cluster": lang.cluster, "in_xlmr": lang.in_xlmr, "null": {}}
    if lang.cluster is None:
        info["null"]["cluster"] = "not in the paper's Table 8"
    return info


def _canonical(codes: Sequence[str] | None) -> set[str] | None:
    if codes is None:
        return None
    from crestguard import languages

    return {languages.try_resolve(c) or c for c in codes}


class _Items:
    """Flat per-item arrays over all sets."""

    def __init__(self, sets: Sequence[EvalSet], scores: Sequence[np.ndarray]):
        recs = [(i, r) for i, s in enumerate(sets) for r in s.records]
        self.set_idx = np.array([i for i, _ in recs], dtype=int)
        self.label = np.array([r.label for _, r in recs], dtype=int)
        self.score = np.concatenate(scores) if scores else np.zeros(0)
        self.lang = np.array([r.lang for _, r in recs], dtype=object)
        self.source = np.array([r.source for _, r in recs], dtype=object)
        self.text = [r.text for _, r in recs]
        self.pooled = np.array([sets[i].spec.per_language for i, _ in recs], dtype=bool)
        self.form = np.array([text_form(t) for t in self.text], dtype=object)
        self.length = np.array([length_bucket(t) for t in self.text], dtype=object)


def _score_sets(clf: Classifier, sets: Sequence[EvalSet], progress: bool) -> tuple[list[np.ndarray], dict]:
    total = sum(len(s.records) for s in sets)
    scores, computed, t0, cpu0 = [], 0, time.perf_counter(), time.process_time()

    def run(advance=None):
        nonlocal computed
        for s in sets:
            sc, n = score_texts(clf, [r.text for r in s.records], s.spec.dataset, advance=advance)
            scores.append(sc)
            computed += n

    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        cols = (TextColumn("[bold]scoring[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn())
        with Progress(*cols, transient=True) as bar:
            task = bar.add_task(clf.name, total=total)
            run(lambda k: bar.advance(task, k))
    else:
        run()
    return scores, {"n_items": total, "n_scored_now": computed, "seconds": round(time.perf_counter() - t0, 2),
                    "cpu_seconds": round(time.process_time() - cpu0, 2)}


def _block_ci(y, s, thr, st: Settings, which=HEADLINE) -> dict[str, Any]:
    return M.bootstrap_ci([(y, s)], which, thr, st.n_boot, st.seed, st.level)


def _macro_block(groups: dict[str, tuple[np.ndarray, np.ndarray]], blocks: dict[str, dict], thr, st: Settings):
    out = {m: M.macro(list(blocks.values()), m) for m in MACRO_METRICS}
    ci = M.bootstrap_ci(list(groups.values()), MACRO_METRICS, thr, st.n_boot, st.seed, st.level) if groups else {}
    for m in MACRO_METRICS:
        out[m]["ci"] = ci.get(m)
    return out


def evaluate(
    clf: Classifier,
    suite: Suite,
    sets: Sequence[EvalSet],
    train_languages: Sequence[str] | None = None,
    train_sources: Sequence[str] | None = None,
    settings: Settings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every set of a materialized suite and compute all aggregates.

    Args:
        clf: the classifier (see :mod:`crestguard.evaluation.classifiers`).
        suite: the suite the sets came from (its name, version and hash are recorded).
        sets: ``materialize(suite)``.
        train_languages: overrides the model's own list; decides ID vs OOD (``None`` = unknown).
        train_sources: overrides the model's own list; decides seen vs unseen benign sources.
        settings: threshold, bootstrap and calibration knobs.
        progress: show a progress bar while scoring.
    """
    st = settings or Settings()
    model = describe(clf)
    thr = float(model["threshold"] if st.threshold is None else st.threshold)
    train_languages = train_languages if train_languages is not None else model["train_languages"]
    train_sources = train_sources if train_sources is not None else model["train_sources"]
    id_langs = _canonical(train_languages)
    scores, timing = _score_sets(clf, sets, progress)
    it = _Items(sets, scores)
    valid = ~np.isnan(it.score)

    def block(mask):
        return M.binary_metrics(it.label[mask], it.score[mask], thr, st.ece_bins)

    lang_info = {code: _lang_info(code) for code in sorted(set(it.lang.tolist()))}

    def domain(code: str) -> str | None:
        return None if id_langs is None else ("ID" if code in id_langs else "OOD")

    set_rows = []
    for i, s in enumerate(sets):
        m = it.set_idx == i
        set_rows.append({
            "name": s.name, "dataset": s.spec.dataset, "section": s.spec.section,
            "description": s.spec.description, "per_language": s.spec.per_language, "paper": s.spec.paper,
            "dropped": s.dropped, "metrics": block(m), "ci": _block_ci(it.label[m], it.score[m], thr, st),
            "by_language": {code: block(m & (it.lang == code)) for code in sorted(set(it.lang[m].tolist()))},
        })

    pooled_langs = sorted(set(it.lang[it.pooled].tolist()))
    lang_mask = {c: it.pooled & (it.lang == c) for c in pooled_langs}
    lang_groups = {c: (it.label[m], it.score[m]) for c, m in lang_mask.items()}
    lang_blocks = {c: block(m) for c, m in lang_mask.items()}
    lang_rows = [{"lang": c, **lang_info[c], "domain": domain(c), "metrics": lang_blocks[c],
                  "sets": sorted({sets[i].name for i in set(it.set_idx[m].tolist())})}
                 for c, m in lang_mask.items()]

    cluster_of = {c: (lang_info[c]["cluster"] if lang_info[c]["cluster"] is not None else NO_CLUSTER)
                  for c in pooled_langs}
    cluster_rows = []
    for cl in sorted(set(cluster_of.values()), key=lambda x: (x == NO_CLUSTER, str(x))):
        members = [c for c in pooled_langs if cluster_of[c] == cl]
        mask = it.pooled & np.isin(it.lang, members)
        cluster_rows.append({
            "cluster": cl, "languages": members, "metrics": block(mask),
            "macro": _macro_block({c: lang_groups[c] for c in members}, {c: lang_blocks[c] for c in members},
                                  thr, st),
            "by_set": {sets[i].name: block(mask & (it.set_idx == i)) for i in sorted(set(it.set_idx[mask].tolist()))},
        })

    if id_langs is None:
        domains: dict[str, Any] = {"null": "training languages unknown (pass --train-langs)"}
    else:
        domains = {}
        for d in ("ID", "OOD"):
            members = [c for c in pooled_langs if domain(c) == d]
            domains[d] = {
                "languages": members,
                "metrics": block(it.pooled & np.isin(it.lang, members)),
                "macro": _macro_block({c: lang_groups[c] for c in members}, {c: lang_blocks[c] for c in members},
                                      thr, st),
            }

    benign = (it.label == 0) & valid
    seen = None if train_sources is None else np.isin(it.source, list(train_sources))

    def fpr_by(keys: np.ndarray, order: Sequence[str]) -> dict[str, Any]:
        out = {}
        for k in order:
            m = benign & (keys == k)
            b = block(m)
            out[k] = {"n": b["n_safe"], "fp": b["fp"], "fpr": b["fpr"], "null": b["null"].get("fpr"),
                      "ci": _block_ci(it.label[m], it.score[m], thr, st, ("fpr",))["fpr"]}
        return out

    unsafe = (it.label == 1) & valid
    benign_fpr = {
        "by_form": fpr_by(it.form, FORMS),
        "by_length": fpr_by(it.length, [b for b, _ in LENGTH_BUCKETS]),
        "by_source": (fpr_by(np.where(seen, "seen", "unseen"), ("seen", "unseen")) if seen is not None
                      else {"null": "training sources unknown (pass --train-sources)"}),
        "recall_by_form": {f: block(unsafe & (it.form == f))["recall"] for f in FORMS},
    }

    top = np.argsort(-np.where(benign, it.score, -np.inf), kind="stable")[: min(st.top_k, int(benign.sum()))]
    top_fp = [{"set": sets[it.set_idx[j]].name, "lang": it.lang[j], "form": it.form[j], "score": float(it.score[j]),
               "text": it.text[j][:200] if sets[it.set_idx[j]].spec.quote else "(not quoted: see the suite)"}
              for j in top]

    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "crestguard_version": __version__,
        "model": {**model, "threshold": thr, "train_languages": train_languages, "train_sources": train_sources},
        "suite": {"name": suite.name, "version": suite.version, "sha256": suite.sha256},
        "settings": {"threshold": thr, "flag_rule": "score >= threshold", "bootstrap": {
            "n": st.n_boot, "seed": st.seed, "level": st.level}, "ece_bins": st.ece_bins},
        "timing": timing,
        "overall": block(np.ones_like(valid)),
        "sets": set_rows,
        "languages": lang_rows,
        "clusters": cluster_rows,
        "macro": _macro_block(lang_groups, lang_blocks, thr, st),
        "domains": domains,
        "benign_fpr": benign_fpr,
        "reliability": {"bins": M.reliability(it.label[valid], it.score[valid], st.ece_bins),
                        "ece": M.ece(it.label[valid], it.score[valid], st.ece_bins)},
        "top_false_positives": top_fp,
        "headline": headline(sets, scores, thr, st.n_boot, st.seed, st.level),
        "hate": hate(sets, scores, thr),
    }


def run(
    model: str | Classifier,
    suite: str = "default",
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    train_languages: Sequence[str] | None = None,
    train_sources: Sequence[str] | None = None,
    settings: Settings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Resolve the model and suite, evaluate, and write ``results.json``, ``report.md`` and the plots.

    Args:
        model: a model spec for :func:`~crestguard.evaluation.classifiers.resolve_model`, or a classifier.
        suite: suite name or path.
        out_dir: where to write (nothing is written when ``None``).
        data_dir: the data directory (default: ``crestguard.paths.data_dir()``).

    Returns:
        The results dict.
    """
    from crestguard.evaluation.classifiers import resolve_model
    from crestguard.evaluation.report import write_all
    from crestguard.evaluation.suite import default_loader, load_suite, materialize

    clf = resolve_model(model) if isinstance(model, str) else model
    su = load_suite(suite)
    sets = materialize(su, default_loader(data_dir))
    res = evaluate(clf, su, sets, train_languages, train_sources, settings, progress)
    if out_dir is not None:
        write_all(res, Path(out_dir))
    return res
