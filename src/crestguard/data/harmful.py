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
- **safety_tuned_llamas**: label = the SOURCE.md's ``suggested_label`` (1, 0, empty -> ``None`` for Q-Harm); id
  ``<subset>:<idx>``; ``category`` = ``<subset>|<tag>``; splits evaluation/training. The 50 I-Alpaca rows are
  also in ``benign_instructions``.
- **flames**: no per-prompt label: ``None`` (many are benign on their face; the SOURCE.md compares them to
  XSafety's soft categories); ``category`` = ``<dimension>|<subcomponent>``.
- **gptfuzzer**: the 100 questions, label 1. **gptfuzzer_templates**: the 77 + 25 jailbreak templates with their
  ``[INSERT PROMPT HERE]`` slot kept, label ``None`` (a bare template is not a request); ids ``GPTFuzzer:<id>``,
  ``seed_short_25:<row>``; ``category`` = the file. Fill the slot to synthesize wrapped positives.
- **jailbreakbench_artifacts**: label 1, kind ``benchmark`` with ``eval_leak``: every prompt wraps one of the 100
  JBB harmful goals, so ``DatasetInfo.trainable`` is ``False``. id ``<method>:<attack_type>:<model>:<index>``;
  ``group`` = ``goal:<index>`` (hold out by JBB behavior); ``category`` = the JBB category. Repeated prompts
  (1,097 distinct of 1,637) are kept and reported as ``duplicate_text``.
- **hh_rlhf_harmless_base_test**: label ``None`` (openers, many benign); the 600 rows with a non-empty
  ``exact_match_eval`` are dropped as ``eval_overlap``.
- **tet_toxicity_prompts**: all 1; id = ``conversation_id``; ``category`` = the Perspective attributes
  (``metrics``), comma-joined.
"""

from __future__ import annotations

from pathlib import Path

from crestguard.data.registry import register
from crestguard.data.rows import add_rows, eval_overlap, joined, load_file, read_rows
from crestguard.data.validation import DatasetBuilder, label_from

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


@register("safety_tuned_llamas", folder="safety_tuned_llamas", kind="training",
          description="Safety-Tuned LLaMAs: 7 evaluation sets + 2,483 safety training instructions",
          licence="none stated (no LICENSE file; the README gives only a citation).",
          labels="suggested_label: 1 -> 1, 0 -> 0, empty (Q-Harm) -> None",
          choice="id = subset:idx; category = subset|tag")
def _safety_tuned_llamas(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "safety_tuned_llamas_prompts.csv",
              ["subset", "split", "idx", "instruction", "tag", "suggested_label"], text="instruction",
              label=lambda r: label_from({"1": 1, "0": 0, "": None}, r["suggested_label"]), lang="en",
              key=lambda r: f"{r['subset']}:{r['idx']}", category=joined("subset", "tag"), split="split")


@register("flames", folder="flames", kind="training",
          description="Flames-1k-Chinese adversarial value-alignment prompts",
          licence="Apache License 2.0 (repository LICENSE).", labels="none (no per-prompt label)",
          choice="label None (many benign on their face); category = dimension|subcomponent")
def _flames(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "Flames_1k_Chinese.jsonl", ["dimension", "subcomponent", "prompt"], text="prompt",
              label=None, lang="zh", category=joined("dimension", "subcomponent"))


_GPTFUZZER_LICENCE = "MIT License (Copyright (c) [2023] [Jiahao YU])."
#: The slot a GPTFuzzer template leaves for the question.
GPTFUZZER_SLOT = "[INSERT PROMPT HERE]"


@register("gptfuzzer", folder="gptfuzzer", kind="training", description="GPTFuzzer: 100 harmful questions",
          licence=_GPTFUZZER_LICENCE, labels="all 1", choice="questions only (templates: gptfuzzer_templates)")
def _gptfuzzer(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "question_list.csv", ["index", "text"], text="text", label=1, lang="en",
              key="index")


@register("gptfuzzer_templates", folder="gptfuzzer", kind="training",
          description="GPTFuzzer jailbreak templates (77 + 25 shortened), with the [INSERT PROMPT HERE] slot",
          licence=_GPTFUZZER_LICENCE, labels="none (a template needs a question inserted)",
          choice="label None; the slot kept; ids GPTFuzzer:<id>, seed_short_25:<row>; category = file")
def _gptfuzzer_templates(folder: Path, builder: DatasetBuilder) -> None:
    for file, key in (("GPTFuzzer", "id"), ("seed_short_25", None)):
        load_file(builder, folder / f"{file}.csv", ["text"] + ([key] if key else []), text="text", label=None,
                  lang="en", key=key, category=lambda r, f=file: f, prefix=f"{file}:")


@register("jailbreakbench_artifacts", folder="jailbreakbench_artifacts", kind="benchmark",
          description="JailbreakBench attack artifacts (PAIR, GCG, JBC, random search, DSN) on the JBB-100 goals",
          licence="MIT License (Copyright (c) 2024 JailbreakBench Team and artifacts authors).", labels="all 1",
          choice="evaluation only (built on the JBB goals); group = JBB behavior index; category = JBB category",
          eval_leak="jbb_behaviors, jbb_judge (every prompt wraps one of the 100 JBB harmful goals)")
def _jailbreakbench_artifacts(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "jbb_artifact_prompts.csv",
              ["method", "attack_type", "target_model", "index", "category", "prompt"], text="prompt", label=1,
              lang="en", key=lambda r: f"{r['method']}:{r['attack_type']}:{r['target_model']}:{r['index']}",
              group=lambda r: f"goal:{r['index']}", category="category")


@register("hh_rlhf_harmless_base_test", folder="hh_rlhf_harmless_base_test", kind="training",
          description="Anthropic HH-RLHF harmless-base test: first human turns (red-team openers)",
          licence="MIT License (Copyright (c) 2022 Anthropic).", labels="none (no label)",
          choice="label None; exact_match_eval rows dropped")
def _hh_rlhf(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "harmless_base_test_first_human_turns.jsonl",
              ["idx", "first_human_turn", "exact_match_eval"], text="first_human_turn", label=None, lang="en",
              key="idx", drop=eval_overlap())


@register("tet_toxicity_prompts", folder="tet_toxicity_prompts", kind="training",
          description="TET: toxicity-eliciting real user prompts from LMSYS-Chat-1M",
          licence="none stated in the repository (README links the Hugging Face copy; LMSYS-Chat-1M, the source, "
                  "has its own restrictive licence).",
          labels="all 1", choice="id = conversation_id; category = Perspective attributes, comma-joined")
def _tet(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "TET.json", ["conversation_id", "query", "metrics"], text="query", label=1,
              lang="en", key="conversation_id",
              category=lambda r: ",".join(r["metrics"]) if isinstance(r["metrics"], list) else r["metrics"])
