"""Evaluation suites: versioned YAML data naming which datasets, subsets and items are evaluated.

A suite file (``configs/suites/<name>.yaml``) looks like::

    name: default
    version: 1
    salt: crestguard-eval-default-v1     # seeds the deterministic group sampling
    also_reserve: [peer]                 # the manifest also reserves every item of these suites
    sets:
      - name: multiq                      # unique in the suite; the row name in reports
        dataset: multiq                   # a name in the crestguard.data registry
        section: benign                   # english | multilingual | benign | real_prompts | hate | response
        filter: {langs: [...], categories: [...], exclude_categories: [...], labels: [0]}
        sample: {groups_per_language: 40} # optional: per language, the 40 groups of lowest hash
                                          # (or {fraction: 0.3}: that share of each language's groups)
        evaluate: {groups_per_language: 10}  # optional cap: score only the 10 lowest-ranked of the sampled
                                          # groups per language (all sampled groups stay reserved)
        reserve: sample                   # dataset: the whole dataset is withheld from training
                                          # sample: only the sampled groups are
        per_language: true                # pooled into the per-language / per-cluster tables
        quote: true                       # false: never quote this set's texts in reports (licence)
        paper: {crest_base_f1: 80.89}     # published figures to print beside ours (optional)
        headline: benign                  # the set's role in the headline metric: its unsafe items (unsafe)
                                          # or its benign items (benign: real user prompts) count there

Sampling is by *group* (all translations of an item share one), ranked by ``sha256(salt|dataset|group)``
within each language, so it is deterministic, independent of file order, and the same groups are chosen in
every language of a parallel set. Items without a label are dropped and counted; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from crestguard.data.records import Record
from crestguard.evaluation.errors import EvaluationError
from crestguard.paths import REPO_ROOT

SUITES_DIR = REPO_ROOT / "configs" / "suites"
SECTIONS = ("english", "multilingual", "benign", "real_prompts", "hate", "response")
HEADLINE_ROLES = ("unsafe", "benign")
_SET_KEYS = {"name", "dataset", "section", "filter", "sample", "evaluate", "reserve", "per_language", "quote",
             "paper", "description", "headline"}
_FILTER_KEYS = {"langs", "categories", "exclude_categories", "labels"}
_TOP_KEYS = {"name", "version", "salt", "description", "sets", "also_reserve"}

Loader = Callable[[str], Iterable[Record]]


@dataclass(frozen=True)
class SetSpec:
    """One evaluation set of a suite (see the module docstring for the fields)."""

    name: str
    dataset: str
    section: str
    reserve: str = "dataset"
    filter: dict[str, list] = field(default_factory=dict)
    groups_per_language: int | None = None
    fraction: float | None = None
    evaluate_groups: int | None = None
    headline: str | None = None
    per_language: bool = True
    quote: bool = True
    paper: dict[str, float] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Suite:
    """A parsed suite file."""

    name: str
    version: int
    salt: str
    sets: tuple[SetSpec, ...]
    path: Path
    sha256: str
    description: str = ""
    also_reserve: tuple[str, ...] = ()

    @property
    def datasets(self) -> list[str]:
        """Registry names of the datasets the suite reads, in order of first use."""
        return list(dict.fromkeys(s.dataset for s in self.sets))


@dataclass
class EvalSet:
    """The items of one set after filtering and sampling, with the counts of what was left out and why."""

    spec: SetSpec
    records: list[Record]
    reserved_groups: set[str]
    dropped: dict[str, int]
    held: list[Record] | None = None  # every item withheld from training (records plus those the cap left out)

    @property
    def name(self) -> str:
        return self.spec.name


def group_rank(salt: str, dataset: str, group: str) -> str:
    """The sort key of a group for sampling: a hex digest, stable across runs and machines."""
    return hashlib.sha256(f"{salt}|{dataset}|{group}".encode()).hexdigest()


def _fail(path: Path, where: str, msg: str) -> EvaluationError:
    return EvaluationError(f"{path}: {where}: {msg}")


def parse_set(raw: Any, i: int, path: Path) -> SetSpec:
    """Validate one set mapping (``i``-th in the file at ``path``, for messages) into a :class:`SetSpec`."""
    where = f"sets[{i}]"
    if not isinstance(raw, dict):
        raise _fail(path, where, "each set must be a mapping")
    where = f"set {raw.get('name', i)!r}"
    unknown = set(raw) - _SET_KEYS
    if unknown:
        raise _fail(path, where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_SET_KEYS)}")
    for key in ("name", "dataset", "section"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise _fail(path, where, f"'{key}' (a non-empty string) is required")
    if raw["section"] not in SECTIONS:
        raise _fail(path, where, f"section must be one of {SECTIONS}, not {raw['section']!r}")
    filt = raw.get("filter") or {}
    if not isinstance(filt, dict) or set(filt) - _FILTER_KEYS:
        raise _fail(path, where, f"filter must be a mapping with keys among {sorted(_FILTER_KEYS)}")
    for key, values in filt.items():
        if not isinstance(values, list) or not values:
            raise _fail(path, where, f"filter.{key} must be a non-empty list")
    sample = raw.get("sample") or {}
    k = sample.get("groups_per_language") if isinstance(sample, dict) else None
    frac = sample.get("fraction") if isinstance(sample, dict) else None
    if sample and not ((set(sample) == {"groups_per_language"} and isinstance(k, int) and k >= 1)
                       or (set(sample) == {"fraction"} and isinstance(frac, (int, float)) and 0 < frac <= 1)):
        raise _fail(path, where, "sample must be {groups_per_language: <positive int>} or {fraction: <0-1>}")
    cap = raw.get("evaluate") or {}
    n_eval = cap.get("groups_per_language") if isinstance(cap, dict) else None
    if cap and (set(cap) != {"groups_per_language"} or not isinstance(n_eval, int) or n_eval < 1):
        raise _fail(path, where, "evaluate must be {groups_per_language: <positive int>}")
    if raw.get("headline") not in (None, *HEADLINE_ROLES):
        raise _fail(path, where, f"headline must be one of {HEADLINE_ROLES}")
    reserve = raw.get("reserve", "dataset")
    if reserve not in ("dataset", "sample") or (reserve == "sample" and not sample):
        raise _fail(path, where, "reserve must be 'dataset', or 'sample' together with a sample rule")
    return SetSpec(
        name=raw["name"],
        dataset=raw["dataset"],
        section=raw["section"],
        reserve=reserve,
        filter={k: list(v) for k, v in filt.items()},
        groups_per_language=k,
        fraction=None if frac is None else float(frac),
        evaluate_groups=n_eval,
        headline=raw.get("headline"),
        per_language=bool(raw.get("per_language", True)),
        quote=bool(raw.get("quote", True)),
        paper=dict(raw.get("paper") or {}),
        description=str(raw.get("description", "")),
    )


def load_suite(name_or_path: str | Path = "default") -> Suite:
    """Read and validate a suite by name (``configs/suites/<name>.yaml``) or path.

    Raises:
        EvaluationError: the file is missing or malformed; the message names the file and the field.
    """
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml")) if SUITES_DIR.is_dir() else []
        raise EvaluationError(f"No suite {str(name_or_path)!r} (looked for {path}; known suites: {known})")
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise EvaluationError(f"{path}: a suite must be a YAML mapping")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise EvaluationError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for key, typ in (("name", str), ("version", int), ("salt", str), ("sets", list)):
        if not isinstance(raw.get(key), typ):
            raise EvaluationError(f"{path}: '{key}' ({typ.__name__}) is required")
    sets = tuple(parse_set(s, i, path) for i, s in enumerate(raw["sets"]))
    also = raw.get("also_reserve") or []
    if not isinstance(also, list) or not all(isinstance(a, str) for a in also):
        raise EvaluationError(f"{path}: also_reserve must be a list of suite names")
    dupes = [n for n, c in Counter(s.name for s in sets).items() if c > 1]
    if dupes:
        raise EvaluationError(f"{path}: duplicate set name(s) {dupes}")
    return Suite(
        name=raw["name"],
        version=raw["version"],
        salt=raw["salt"],
        sets=sets,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        description=str(raw.get("description", "")),
        also_reserve=tuple(also),
    )


def filter_records(spec: SetSpec, records: Iterable[Record]) -> tuple[list[Record], Counter]:
    """Apply the spec's filter; drop unlabelled items. Returns ``(kept, dropped counts)``."""
    dropped: Counter = Counter()
    f = spec.filter
    kept: list[Record] = []
    for rec in records:
        if "langs" in f and rec.lang not in f["langs"]:
            dropped["filter: language"] += 1
        elif "categories" in f and rec.category not in f["categories"]:
            dropped["filter: category"] += 1
        elif "exclude_categories" in f and rec.category in f["exclude_categories"]:
            dropped["filter: excluded category"] += 1
        elif rec.label is None:
            dropped["no label"] += 1
        elif "labels" in f and rec.label not in f["labels"]:
            dropped["filter: label"] += 1
        else:
            kept.append(rec)
    return kept, dropped


def sample_groups(
    records: Sequence[Record], k: int | None, salt: str, dataset: str, fraction: float | None = None
) -> tuple[list[Record], set[str]]:
    """Per language, keep the items of the ``k`` groups of lowest :func:`group_rank` (or, with ``fraction``,
    of the ``ceil(fraction x groups)`` lowest).

    Returns:
        ``(kept records, union of the chosen groups over all languages)``.
    """
    by_lang: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        by_lang[rec.lang].add(rec.group)

    def n_of(groups: set[str]) -> int:
        return k if fraction is None else math.ceil(fraction * len(groups))

    chosen = {
        lang: set(sorted(groups, key=lambda g: group_rank(salt, dataset, g))[:n_of(groups)])
        for lang, groups in by_lang.items()
    }
    return [r for r in records if r.group in chosen[r.lang]], set().union(*chosen.values())


def select(spec: SetSpec, records: Iterable[Record], salt: str) -> EvalSet:
    """Filter and sample one set's records as its spec says, counting everything left out."""
    kept, dropped = filter_records(spec, records)
    groups = {r.group for r in kept}
    if spec.groups_per_language is not None or spec.fraction is not None:
        n = len(kept)
        kept, groups = sample_groups(kept, spec.groups_per_language, salt, spec.dataset, spec.fraction)
        if len(kept) < n:
            rule = (f"{spec.groups_per_language} groups" if spec.fraction is None
                    else f"{spec.fraction:.0%} of the groups")
            dropped[f"sampling: beyond {rule} per language"] = n - len(kept)
    held = kept
    if spec.evaluate_groups is not None:
        kept, _ = sample_groups(held, spec.evaluate_groups, salt, spec.dataset)
        if len(kept) < len(held):
            dropped[f"evaluation cap: beyond {spec.evaluate_groups} groups per language (still reserved)"] = (
                len(held) - len(kept))
    return EvalSet(spec, kept, groups if spec.reserve == "sample" else set(), dict(dropped), held)


def default_loader(data_dir: str | Path | None = None) -> Loader:
    """The real loader: :func:`crestguard.data.load_dataset` over ``data_dir``, each dataset read once."""
    from crestguard.data import load_dataset

    cache: dict[str, list[Record]] = {}

    def load(name: str) -> list[Record]:
        if name not in cache:
            cache[name] = list(load_dataset(name, data_dir=data_dir).records)
        return cache[name]

    return load


def materialize(suite: Suite, load: Loader | None = None) -> list[EvalSet]:
    """Load every set of ``suite`` through ``load`` (default: the real data) and select its items.

    A set left empty by its filter is kept: its metrics come out ``null`` ("no items"), and ``dropped`` says why.
    """
    load = load or default_loader()
    return [select(spec, list(load(spec.dataset)), suite.salt) for spec in suite.sets]


def materialize_reserved(suite: Suite, load: Loader | None = None) -> list[EvalSet]:
    """The sets whose items the manifest of ``suite`` reserves: its own and those of its ``also_reserve`` suites
    (files beside the suite's own, each selected with its own salt)."""
    load = load or default_loader()
    sets = materialize(suite, load)
    for other in suite.also_reserve:
        sets += materialize(load_suite(suite.path.parent / f"{other}.yaml"), load)
    return sets
