"""Loaders for the paper's Hugging Face datasets (appendix C), for users who can reach the hub.

They are registered like the local datasets (kind ``"hub"``) and load through ``datasets.load_dataset``; they
are not run in CI (no network there). Each is a :class:`HubSpec`: which configs/splits to read and how their
columns map to :class:`~crestguard.data.records.Record`, following appendix C:

- **aegis2** (``nvidia/Aegis-AI-Content-Safety-Dataset-2.0``): text = ``prompt``, label = ``prompt_label``
  (unsafe 1, safe 0); responses are not used. Splits train/validation/test. Prompts published as ``REDACTED``
  (the Suicide Detection samples Aegis does not distribute) are counted as ``excluded``.
- **harmbench_hf** (``walledai/HarmBench``, configs standard + contextual): ``prompt``, all 1.
- **strongreject_hf** (``walledai/StrongREJECT``): ``prompt``, all 1.
- **redteam2k_hf** (``JailbreakV-28K/JailBreakV-28k``, config/split RedTeam_2K): ``question``, all 1.
- **jbb_behaviors_hf** (``JailbreakBench/JBB-Behaviors``, config behaviors): ``Goal``; harmful 1, benign 0.
- **jbb_judge_hf** (same repo, config judge_comparison): ``prompt`` and ``goal``, all 1; repeated goals
  deduplicated and prompt + goal grouped, as in the local ``jbb_judge``.
- **csrt** (``walledai/CSRT``): ``prompt``, all 1. The prompts are code-switched (about 8 languages each);
  their lang is ``en``, the language with the largest share of tokens (CSRT paper), for want of a code for
  mixed-language text in the language table.
- **cultural_kaleidoscope** (``SoftMINER-Group/CulturalKaleidoscope``, file
  Local_Cultural_Test_Singleturn.csv): ``Question``, all 1.

IndicSafe, the paper's other cultural set, has no public hub id in the paper and has no loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crestguard.data.registry import register
from crestguard.data.validation import DatasetBuilder, label_from
from crestguard.errors import DataError, require


@dataclass(frozen=True)
class HubPart:
    """One ``datasets.load_dataset`` call: a config and split (or a data file), and a fixed label if the part
    has one (``None``: the spec's label column decides)."""

    split: str
    config: str | None = None
    data_files: str | None = None
    label: int | None = None

    @property
    def name(self) -> str:
        """The part's tag in record ids and groups: ``config/split`` (or the split alone)."""
        return f"{self.config}/{self.split}" if self.config else self.split


@dataclass(frozen=True)
class HubSpec:
    """How one hub dataset maps to records.

    Attributes:
        repo: the hub id.
        parts: what to load.
        text: the text column(s); with several, each row gives one record per column.
        label_column: the column holding the label (for parts without a fixed label), mapped by ``label_map``.
        id_column: the column holding a stable id (default: the row index within the part).
        category_column: the column that becomes ``Record.category``.
        group_column: rows with equal values here share a group (default: each row its own group).
        dedupe: text columns whose repeated texts are dropped as ``deduplicated``.
        redacted: a placeholder text counted as ``excluded``.
        lang: the language of every text.
    """

    repo: str
    parts: tuple[HubPart, ...]
    text: tuple[str, ...]
    label_column: str | None = None
    label_map: Mapping[str, int] | None = None
    id_column: str | None = None
    category_column: str | None = None
    group_column: str | None = None
    dedupe: tuple[str, ...] = ()
    redacted: str | None = None
    lang: str = "en"

    def required(self, part: HubPart) -> list[str]:
        cols = [*self.text, self.id_column, self.category_column, self.group_column]
        if part.label is None:
            cols.append(self.label_column)
        return [c for c in cols if c]


def add_rows(builder: DatasetBuilder, spec: HubSpec, part: HubPart,
             rows: Iterable[Mapping[str, Any]]) -> None:
    """Map the rows of one part (a ``datasets.Dataset`` or any iterable of dicts) to records in ``builder``.

    Raises:
        DataError: a required column is missing (the message names the dataset, repo and part).
    """
    def check(present: list[str]) -> None:
        missing = [c for c in spec.required(part) if c not in present]
        if missing:
            raise DataError(f"dataset '{builder.name}': {spec.repo} ({part.config or 'default'}/"
                            f"{part.split}) lacks column(s) {', '.join(map(repr, missing))} "
                            f"(found: {', '.join(present)})")

    columns = getattr(rows, "column_names", None)
    if columns is not None:
        check(columns)
    first_of_group: dict[Any, int] = {}
    for i, row in enumerate(rows):
        if columns is None:
            check(list(row))
        where = f"{spec.repo} {part.config or ''}/{part.split} row {i}"
        key = f"{part.name}:{row[spec.id_column] if spec.id_column else i}"
        if part.label is not None:
            label = part.label
        else:
            label = label_from(spec.label_map or {}, row[spec.label_column])
        group = key
        if spec.group_column:
            group = f"{part.name}:{first_of_group.setdefault(row[spec.group_column], i)}"
        category = _category(row[spec.category_column]) if spec.category_column else None
        for col in spec.text:
            text = row[col]
            if spec.redacted is not None and text == spec.redacted:
                builder.issue("excluded", f"{where}: {col} is {spec.redacted!r}")
                continue
            builder.add(key if len(spec.text) == 1 else f"{key}:{col}", text, label, spec.lang, group=group,
                        category=category, where=where, split=part.split, dedupe=col in spec.dedupe)


def _category(value: Any) -> str | None:
    """A category cell as text: lists (e.g. several violated categories) comma-joined, empty as ``None``."""
    if isinstance(value, (list, tuple)):
        value = ", ".join(map(str, value))
    return str(value) if value not in (None, "") else None


def load_hub(spec: HubSpec, builder: DatasetBuilder) -> None:
    """Load every part of ``spec`` from the hub into ``builder``.

    Raises:
        MissingDependencyError: ``datasets`` is not installed.
        DataError: the hub cannot be reached or the dataset/config/split does not exist.
    """
    datasets = require("datasets", "train", "the Hugging Face datasets")
    for part in spec.parts:
        try:
            rows = datasets.load_dataset(spec.repo, part.config, split=part.split, data_files=part.data_files)
        except Exception as exc:  # network, auth (gated datasets) and not-found errors all land here
            raise DataError(f"dataset '{builder.name}': could not load {spec.repo} "
                            f"({part.config or 'default'}/{part.split}) from the Hugging Face hub: {exc}. "
                            "It needs network access, and for gated datasets `huggingface-cli login`."
                            ) from exc
        add_rows(builder, spec, part, rows)


#: name -> (spec, description, licence, label rule, choice made).
HUB_DATASETS: dict[str, tuple[HubSpec, str, str, str, str]] = {
    "aegis2": (
        HubSpec("nvidia/Aegis-AI-Content-Safety-Dataset-2.0",
                tuple(HubPart(s) for s in ("train", "validation", "test")), ("prompt",),
                label_column="prompt_label", label_map={"safe": 0, "unsafe": 1}, id_column="id",
                category_column="violated_categories", redacted="REDACTED"),
        "Aegis 2.0 prompts (the paper's training set; train/validation/test)", "CC BY 4.0",
        "prompt_label: unsafe 1, safe 0", "REDACTED prompts excluded"),
    "harmbench_hf": (
        HubSpec("walledai/HarmBench", (HubPart("train", "standard", label=1),
                                       HubPart("train", "contextual", label=1)),
                ("prompt",), category_column="category"),
        "HarmBench standard + contextual (hub)", "MIT", "all 1", "prompt column"),
    "strongreject_hf": (
        HubSpec("walledai/StrongREJECT", (HubPart("train", label=1),), ("prompt",),
                category_column="category"),
        "StrongREJECT (hub)", "MIT", "all 1", ""),
    "redteam2k_hf": (
        HubSpec("JailbreakV-28K/JailBreakV-28k", (HubPart("RedTeam_2K", "RedTeam_2K", label=1),),
                ("question",), id_column="id", category_column="policy"),
        "RedTeam-2K from JailBreakV-28K (hub)", "MIT", "all 1", ""),
    "jbb_behaviors_hf": (
        HubSpec("JailbreakBench/JBB-Behaviors", (HubPart("harmful", "behaviors", label=1),
                                                 HubPart("benign", "behaviors", label=0)),
                ("Goal",), id_column="Index", category_column="Category"),
        "JBB-Behaviors (hub)", "MIT", "harmful 1, benign 0", ""),
    "jbb_judge_hf": (
        HubSpec("JailbreakBench/JBB-Behaviors", (HubPart("test", "judge_comparison", label=1),),
                ("prompt", "goal"), id_column="Index", group_column="goal", dedupe=("goal",)),
        "JBB judge comparison (hub)", "MIT", "prompt and goal 1", "each distinct text once, as jbb_judge"),
    "csrt": (
        HubSpec("walledai/CSRT", (HubPart("train", label=1),), ("prompt",)),
        "CSRT code-switching red-teaming prompts", "see the hub card", "all 1",
        "code-switched; lang en (largest token share)"),
    "cultural_kaleidoscope": (
        HubSpec("SoftMINER-Group/CulturalKaleidoscope",
                (HubPart("train", data_files="Local_Cultural_Test_Singleturn.csv", label=1),), ("Question",)),
        "Cultural Kaleidoscope local cultural test (single turn)", "see the hub card", "all 1",
        "Local_Cultural_Test_Singleturn.csv only"),
}
HUB_SPECS = {name: entry[0] for name, entry in HUB_DATASETS.items()}


def _loader(spec: HubSpec):
    def load(_folder: Path | None, builder: DatasetBuilder) -> None:
        load_hub(spec, builder)

    return load


for _name, (_spec, _description, _licence, _labels, _choice) in HUB_DATASETS.items():
    register(_name, folder=None, kind="hub", description=_description, licence=_licence, labels=_labels,
             choice=_choice, hub_id=_spec.repo)(_loader(_spec))
