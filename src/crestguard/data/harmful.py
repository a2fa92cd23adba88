"""Loaders for the harmful-request sets in ``../shared/data``: categorized harmful questions and red-team
prompts (label 1), jailbreak prompts and templates, and toxicity-eliciting prompts.

Each loader follows its folder's ``SOURCE.md`` label mapping; texts are kept exactly as the source has them.
Ids are ``<dataset>:<source id>`` (the row number where the source has none). ``category`` is the source's own
raw category string, several levels joined with ``|`` (``Illegal Activity|Drug``); the mapping to the project
taxonomy lives in one data file elsewhere.

Choices the SOURCE.md files leave open, and what these loaders do:

- **catqa**: 550 questions x en/zh/vi, all 1; id ``<lang>:<item_id>``, ``group`` = ``item_id`` (the parallel
  key), ``category`` = ``<category>|<subcategory>``. The policy-sensitive categories the SOURCE.md cautions
  about (Tailored Financial Advice, Political Campaigning) are kept with label 1: filter by category to drop
  them.
- **do_not_answer**: all 1 (the benchmark's design); ``category`` = ``<risk_area>|<types_of_harm>``; the mild
  "Treat Chatbot as a Human" / "Mental Health or Overreliance Crisis" items are kept.
- **harmfulqa**: all 1; ``category`` = ``<topic>|<subtopic>`` (academic subjects, not harm types); id = the
  row number (the source's ``idx`` restarts per subtopic).
- **dangerousqa**: all 1; no category; the 11 StrongREJECT and 2 XSTest questions are kept (the SOURCE.md lists
  them; they are evaluation texts only if those sets are held out, which the evaluation suite decides).
- **jade_db**: all 1; id ``<version>:<lang>:<id>``; ``category`` = ``<violation_type>|<violation_subtype>`` in
  the source's Chinese (two ``violation_type`` cells keep their leading space); questions shared by v1.0 and
  v2.0 are kept (reported as ``duplicate_text``).
- **navirocker_red_teaming**: 320 English prompts and their Korean translations (matched by order:
  ``navirocker-<n>`` is English row ``n``), all 1; ``group`` = ``n``; both languages get the English file's
  ``<category>|<subcategory>``; ids are the English ``prompt_id`` and the Korean ``id``.
- **aart**: all 1 by convention, including the minority that is benign in itself; ``category`` = ``crime``
  (70 topics, some only loosely harmful).
"""

from __future__ import annotations

from pathlib import Path

from crestguard.data.registry import register
from crestguard.data.rows import add_rows, joined, load_file, read_rows
from crestguard.data.validation import DatasetBuilder

_APACHE_REPO = "Apache License 2.0 (repository LICENSE)."


@register("catqa", folder="catqa", kind="training",
          description="CategoricalHarmfulQA: 550 harmful questions x en/zh/vi (parallel)",
          licence="the LICENSE file is the Apache License 2.0 text.", labels="all 1",
          choice="group = item_id (parallel); category = category|subcategory")
def _catqa(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "catqa_all.csv", ["lang", "category", "subcategory", "item_id", "question"],
              text="question", label=1, lang=lambda r: r["lang"] or "", key=lambda r: f"{r['lang']}:{r['item_id']}",
              group="item_id", category=joined("category", "subcategory"))


@register("do_not_answer", folder="do_not_answer", kind="training",
          description="Do-Not-Answer: 939 risky instructions (5 risk areas, 12 harm types)",
          licence='the fork\'s LICENSE is "Apache License, Version 2.0"; its README states no separate data '
                  "licence. (Upstream Do-Not-Answer is also distributed as Apache-2.0; not checked here.)",
          labels="all 1", choice="category = risk_area|types_of_harm; mild categories kept")
def _do_not_answer(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "do_not_answer_en.csv", ["id", "risk_area", "types_of_harm", "question"],
              text="question", label=1, lang="en", key="id", category=joined("risk_area", "types_of_harm"))


@register("harmfulqa", folder="harmfulqa", kind="training",
          description="HarmfulQA: 1,960 harmful questions by academic topic", licence=_APACHE_REPO,
          labels="all 1", choice="category = topic|subtopic; id = row number")
def _harmfulqa(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "harmfulqa.csv", ["topic", "subtopic", "question"], text="question", label=1,
              lang="en", category=joined("topic", "subtopic"))


@register("dangerousqa", folder="dangerousqa", kind="training", description="DangerousQA: 200 harmful questions",
          licence="Apache License 2.0 (repository LICENSE); upstream SALT-NLP licence not checked.",
          labels="all 1", choice="StrongREJECT/XSTest overlaps kept")
def _dangerousqa(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "dangerousqa.csv", ["idx", "question"], text="question", label=1, lang="en",
              key="idx")


@register("jade_db", folder="jade_db", kind="training",
          description="JADE-DB v1.0 + v2.0 safety test questions (zh, en)",
          licence="MIT License (Copyright (c) 2023 whitzard-ai). The README notes that politically sensitive "
                  "questions were withheld from the public release.",
          labels="all 1", choice="category = violation_type|violation_subtype (Chinese, raw)")
def _jade_db(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "jade_db_v1_v2.csv", ["version", "lang", "id", "question", "violation_type",
                                                      "violation_subtype"],
              text="question", label=1, lang=lambda r: r["lang"] or "",
              key=lambda r: f"{r['version']}:{r['lang']}:{r['id']}",
              category=joined("violation_type", "violation_subtype"))


@register("navirocker_red_teaming", folder="navirocker_red_teaming", kind="training",
          description="navirocker LLM red-teaming prompts, English + Korean translation (parallel)",
          licence='the mirror has no LICENSE file; its README lists navirocker/llm-red-teaming-dataset as "MIT '
                  'license", and the Korean JSONL carries `"license": "mit-license"` per row.',
          labels="all 1", choice="en row n <-> ko navirocker-n; group = n; category = English category|subcategory")
def _navirocker(folder: Path, builder: DatasetBuilder) -> None:
    en_path, ko_path = folder / "redteam_master_dataset.csv", folder / "llm-red-teaming-dataset-kr.jsonl"
    en = read_rows(en_path, builder.name, ["prompt_id", "prompt", "category", "subcategory"])
    ko = read_rows(ko_path, builder.name, ["id", "query"])
    category = joined("category", "subcategory")
    add_rows(builder, en_path, [{**r, "n": i + 1} for i, r in enumerate(en)], text="prompt", label=1, lang="en",
             key="prompt_id", group="n", category=category)
    by_n = {i + 1: category(r) for i, r in enumerate(en)}
    add_rows(builder, ko_path, ko, text="query", label=1, lang="ko", key="id",
             group=lambda r: str(r["id"]).removeprefix("navirocker-"),
             category=lambda r: by_n.get(int(str(r["id"]).removeprefix("navirocker-") or 0)))


@register("aart", folder="aart", kind="training",
          description="AART AI-assisted red-teaming prompts (70 crime topics)",
          licence='the LICENSE file reads "Creative Commons Attribution 4.0 International License" (CC BY 4.0).',
          labels="all 1 (convention)", choice="category = crime; the benign-looking minority kept as 1")
def _aart(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "aart-v1-20231117.csv", ["prompt", "crime"], text="prompt", label=1, lang="en",
              category="crime")
