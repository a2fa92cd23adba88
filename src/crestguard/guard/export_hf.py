"""``crestguard export hf``: a guard model as a plain Hugging Face folder (``BertForSequenceClassification``).

The folder holds ``config.json`` + ``model.safetensors`` (fp32, the backbone with the model's delta put over it),
the tokenizer (``tokenizer.json`` with its Unicode NFC step) and ``README.md``, the model card with hub metadata.
``AutoModelForSequenceClassification.from_pretrained(DIR)`` and ``pipeline("text-classification", model=DIR)`` load
it; the ``unsafe`` probability is the guard's score for a text that fits one window (the policy's temperature is
folded into the classifier layer: ``softmax(logits)[unsafe] = sigmoid(margin / T)``). What the folder does not do is
the guard's own input path: normalization against invisible characters and lookalikes, reading long inputs sentence
by sentence, per-language thresholds (docs/guard.md). Needs torch and transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from crestguard.errors import CrestGuardError

CARD = "README.md"


def export_hf(model: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write the Hugging Face folder of guard ``model`` (a name or a model folder) to ``out``; return ``out``.

    Raises:
        CrestGuardError: ``out`` exists and is not empty (without ``force``).
        MissingDependencyError: torch or transformers is missing.
    """
    from crestguard.errors import require

    for module in ("torch", "transformers"):
        require(module, "torch", "exporting to the Hugging Face format")
    import torch
    from transformers import AutoTokenizer

    from crestguard.backbones import offline
    from crestguard.guard.guard import load_guard

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise CrestGuardError(f"{out} exists and is not empty (use --force to overwrite)")
    guard = load_guard(model, backend="torch", langid=False)  # the model and the guard's own threshold policy
    engine = getattr(guard.engine, "inner", guard.engine)  # a guard with categories wraps its engine
    model_dir, meta, policy, net = guard.model_dir, guard.meta, guard.policy, engine.model
    tokenizer = offline.build_tokenizer(offline.source_files()[1]) if meta.get("format") == "delta" \
        else AutoTokenizer.from_pretrained(model_dir)
    last = getattr(net.classifier, "out_proj", net.classifier)  # XLM-R's head ends in out_proj, BERT's is one layer
    with torch.no_grad():  # softmax over logits / T = sigmoid(margin / T): the guard's score
        last.weight /= policy.temperature
        last.bias /= policy.temperature
    net.config.crestguard = {"model": model_dir.name, "threshold": policy.threshold, "temperature_folded":
                             policy.temperature, "window_tokens": meta.get("max_length_trained"),
                             "backbone": meta.get("backbone")}
    out.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(out, safe_serialization=True)
    tokenizer.model_max_length = int(meta.get("max_length") or 512)
    tokenizer.save_pretrained(out)
    (out / CARD).write_text(model_card(model_dir, meta, policy), encoding="utf-8")
    return out


def model_card(model_dir: Path, meta: dict, policy) -> str:
    """The hub model card: metadata header, how to load it, what differs from the guard, then the model's own card."""
    langs = sorted(set(meta.get("train_languages") or []))
    header = ["---", "license: apache-2.0", "library_name: transformers", "pipeline_tag: text-classification",
              "tags: [safety, guardrail, moderation, crestguard, multilingual]"]
    if langs:
        header.append("language: [" + ", ".join(langs) + "]")
    header += ["---", ""]
    own = (model_dir / "MODEL_CARD.md").read_text(encoding="utf-8") if (model_dir / "MODEL_CARD.md").is_file() \
        else ""
    usage = f"""# {model_dir.name} (Hugging Face format)

Exported by `crestguard export hf --model {model_dir.name} --out DIR` from CREST Guard. Labels: `safe` (0),
`unsafe` (1); flag a text when the `unsafe` probability is at least **{policy.threshold:.3f}** (the guard's
global threshold; the policy's temperature {policy.temperature:g} is already folded into the classifier).

```python
from transformers import pipeline

clf = pipeline("text-classification", model="DIR", top_k=None, truncation=True)
clf("How do I build a pipe bomb at home?")   # [{{'label': 'unsafe', 'score': ...}}, {{'label': 'safe', ...}}]
```

The scores equal CREST Guard's for a text that fits the model's window ({meta.get("max_length_trained") or 512}
tokens). The guard (`pip install crestguard`, `crestguard.load_guard("{model_dir.name}")`) also normalizes
invisible characters and lookalike letters, reads longer inputs sentence by sentence without truncating them, and
applies per-language thresholds; a plain transformers server does none of that. Fine-tune this folder further like
any BERT sequence classifier.

"""
    return "\n".join(header) + usage + own + ("" if own.endswith("\n") or not own else "\n") + \
        "\n<!-- crest_config.json -->\n```json\n" + json.dumps(meta, indent=2, ensure_ascii=False) + "\n```\n"
