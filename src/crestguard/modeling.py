"""The safety classifier: an encoder with the CREST head on the first token, and how it is saved and loaded.

The head is the paper's: dropout -> dense(hidden, hidden) -> tanh -> dropout -> dense(hidden, 2), dropout 0.1, on the
first token (``<s>``). Labels: 0 safe, 1 unsafe.

- XLM-R backbones use ``XLMRobertaForSequenceClassification``, whose head is exactly this.
- BERT-family backbones (the offline ``me5-small-q4``) use ``BertForSequenceClassification``: its pooler
  (dense -> tanh on the first token), dropout and classifier are the same layers; the first dropout is added as a
  forward pre-hook on the pooler, active in training only, so the computation matches the paper's head.

Two on-disk formats, both described by ``crest_config.json``:

- ``"hf"``: a complete Hugging Face folder (``AutoModelForSequenceClassification.from_pretrained`` loads it);
- ``"delta"``: for models built on the offline backbone, only the tensors that differ from the backbone
  (head, trained layers) in ``delta.safetensors`` plus the backbone's name and hash; the model is rebuilt on load.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crestguard.errors import BackboneError, CrestGuardError

CONFIG_NAME = "crest_config.json"
DELTA_NAME = "delta.safetensors"
LABELS = {0: "safe", 1: "unsafe"}


@dataclass
class ClassifierBundle:
    """A loaded classifier: the transformers model, its tokenizer and the saved metadata."""

    model: Any
    tokenizer: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def backbone(self) -> str:
        return self.meta.get("backbone", "")


@contextmanager
def quiet_transformers():
    """Silence transformers' loading bars and load reports (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _add_first_dropout(model, p: float) -> None:
    """Dropout on the first-token state before the pooler's dense layer (training mode only)."""
    import torch.nn.functional as F

    pooler = getattr(getattr(model, "bert", None), "pooler", None)
    if pooler is None:
        return

    def hook(module, args):
        return (F.dropout(args[0], p=p, training=module.training),)

    pooler.dense.register_forward_pre_hook(hook)


def build_classifier(backbone: str = "me5-small-q4", dropout: float = 0.1) -> ClassifierBundle:
    """A fresh classifier on ``backbone`` (registry name, local directory or hub id), head randomly initialized."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from crestguard.backbones import load_backbone
    from crestguard.backbones.registry import OFFLINE_NAMES

    bb = load_backbone(backbone)
    source = bb.info.path
    config = AutoConfig.from_pretrained(source, num_labels=2, id2label=LABELS,
                                        label2id={v: k for k, v in LABELS.items()})
    for key in ("hidden_dropout_prob", "classifier_dropout"):
        if hasattr(config, key):
            setattr(config, key, dropout)
    model = AutoModelForSequenceClassification.from_pretrained(source, config=config)
    _add_first_dropout(model, dropout)
    meta = {
        "backbone": OFFLINE_NAMES.get(backbone, backbone),
        "backbone_kind": bb.info.kind,
        "backbone_sha256": bb.info.extra.get("weights_sha256"),
        "architecture": type(model).__name__,
        "labels": LABELS,
        "max_length": bb.info.max_length,
        "dropout": dropout,
    }
    return ClassifierBundle(model, bb.tokenizer, meta)


def save_classifier(bundle: ClassifierBundle, out_dir: str | Path, extra: dict | None = None,
                    dtype: str = "float16") -> Path:
    """Save ``bundle``; offline-backbone models as a delta (changed tensors only, stored in ``dtype``)."""
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(bundle.meta, **(extra or {}))
    if meta.get("backbone_kind") == "offline":
        base = _base_state(meta)
        tensors = {}
        for name, value in bundle.model.state_dict().items():
            ref = base.get(name)
            if ref is None or ref.shape != value.shape or not torch.equal(ref, value):
                tensors[name] = value.detach().to(getattr(torch, dtype)).contiguous()
        save_file(tensors, str(out / DELTA_NAME))
        meta.update(format="delta", delta_dtype=dtype, delta_tensors=len(tensors),
                    delta_parameters=int(sum(t.numel() for t in tensors.values())))
    else:
        bundle.model.save_pretrained(out)
        bundle.tokenizer.save_pretrained(out)
        meta.update(format="hf")
    (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    return out


def _base_state(meta: dict) -> dict:
    """State dict of a fresh classifier on the offline backbone with its head zeroed (a stable reference)."""
    from transformers import AutoModelForSequenceClassification

    from crestguard.backbones import load_backbone

    bb = load_backbone(meta["backbone"])
    if meta.get("backbone_sha256") and bb.info.extra.get("weights_sha256") != meta["backbone_sha256"]:
        raise BackboneError(
            f"The classifier was trained on backbone {meta['backbone']} with weights sha256 "
            f"{meta['backbone_sha256'][:16]}…, but the installed one is {bb.info.extra.get('weights_sha256', '?')[:16]}…"
        )
    model = AutoModelForSequenceClassification.from_pretrained(bb.info.path, num_labels=2)
    return {k: v for k, v in model.state_dict().items() if k.startswith(model.base_model_prefix + ".")
            and "pooler" not in k}


def load_classifier(path: str | Path) -> ClassifierBundle:
    """Load a classifier saved by :func:`save_classifier` (or any HF sequence-classification folder)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    cfg_file = path / CONFIG_NAME
    meta = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {"format": "hf", "backbone": str(path)}
    if meta.get("format") == "delta":
        from safetensors.torch import load_file

        from crestguard.backbones import load_backbone

        bb = load_backbone(meta["backbone"])
        if meta.get("backbone_sha256") and bb.info.extra.get("weights_sha256") != meta["backbone_sha256"]:
            raise BackboneError(f"{path}: trained on a different build of backbone {meta['backbone']}.")
        model = AutoModelForSequenceClassification.from_pretrained(
            bb.info.path, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
        delta = load_file(str(path / DELTA_NAME))
        state = model.state_dict()
        unknown = [k for k in delta if k not in state]
        if unknown:
            raise CrestGuardError(f"{path / DELTA_NAME}: tensors not in the model: {unknown[:5]}")
        model.load_state_dict({k: v.float() for k, v in delta.items()}, strict=False)
        return ClassifierBundle(model.eval(), bb.tokenizer, meta)
    if not (path / "config.json").is_file():
        raise CrestGuardError(f"{path}: not a classifier folder (no {CONFIG_NAME} or config.json).")
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return ClassifierBundle(model, tokenizer, meta)
