"""Loaders for the prompt-injection sets in ``../shared/data``: Tensor Trust attacks, BIPIA indirect-injection
payloads and the qualifire jailbreak/benign benchmark.

Each loader follows its folder's ``SOURCE.md`` label mapping; texts are kept exactly as the source has them
(token noise and unicode tricks included). All English.

Choices the SOURCE.md files leave open, and what these loaders do:

- **tensor_trust**: text = ``attack`` alone (not wrapped in the defender's ``pre_prompt``/``post_prompt``), label
  1; ids ``hijacking:<sample_id>`` / ``extraction:<sample_id>``; ``category`` = the benchmark (``hijacking``,
  ``extraction``). The ``access_code`` strings (the SOURCE.md's optional label-0 contrast) are not emitted: they
  are short passwords, not prompts. Repeated attacks (492 and 438 distinct) are kept and reported as
  ``duplicate_text``.
- **bipia_attacks**: every payload label 1 (as injections), including those harmless as standalone prompts
  ("Recommend a good book..."): filter by category for harm classification. ``category`` =
  ``<task_type>|<category>``; the source's train/test files give the splits ``train``/``test``.
- **qualifire_prompt_injections**: ``jailbreak`` -> 1, ``benign`` -> 0; 67 benign texts are also in
  ``benign_instructions`` (Alpaca).
"""

from __future__ import annotations

from pathlib import Path

from crestguard.data.registry import register
from crestguard.data.rows import joined, load_file, mapped
from crestguard.data.validation import DatasetBuilder


@register("tensor_trust", folder="tensor_trust", kind="training",
          description="Tensor Trust prompt-injection attacks (hijacking + extraction robustness benchmarks)",
          licence="none stated in the data repository (README points to the game, code repository and paper).",
          labels="attack -> 1", choice="attack text alone; access codes not emitted; category = benchmark")
def _tensor_trust(folder: Path, builder: DatasetBuilder) -> None:
    for bench in ("hijacking", "extraction"):
        load_file(builder, folder / f"{bench}_robustness_dataset.jsonl", ["sample_id", "attack"], text="attack",
                  label=1, lang="en", key="sample_id", category=lambda r, b=bench: b, prefix=f"{bench}:")


@register("bipia_attacks", folder="bipia_attacks", kind="training",
          description="BIPIA indirect prompt-injection attack instructions (text and code attacks)",
          licence="MIT License (Copyright (c) Microsoft Corporation).",
          labels="all 1 (as injections; many harmless on their own)",
          choice="category = task_type|category; splits train/test")
def _bipia(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "bipia_attack_instructions.csv",
              ["source_file", "task_type", "split", "category", "idx", "attack_text"], text="attack_text", label=1,
              lang="en", key=lambda r: f"{r['task_type']}:{r['split']}:{r['category']}:{r['idx']}",
              category=joined("task_type", "category"), split="split")


@register("qualifire_prompt_injections", folder="qualifire_prompt_injections", kind="training",
          description="qualifire prompt-injections benchmark: jailbreak vs benign prompts",
          licence='the mirror\'s README lists it as "CC BY-NC 4.0" (no LICENSE file in the mirror).',
          labels="jailbreak -> 1, benign -> 0", choice="id = row number")
def _qualifire(folder: Path, builder: DatasetBuilder) -> None:
    load_file(builder, folder / "test.csv", ["text", "label"], text="text",
              label=mapped("label", {"jailbreak": 1, "benign": 0}), lang="en")
