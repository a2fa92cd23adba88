"""Split a classifier at its frozen/trainable boundary, so the frozen bottom runs once per text instead of per epoch.

In ``top_layers`` mode the embeddings and the lower encoder layers never change and run without dropout, so their
output for a text is a constant. :func:`lower_states` computes it once (inference mode, optionally bf16) and
:class:`TopStack` runs only the trainable top layers and the head on it. Training on cached states is the same
computation as training the whole model with the bottom frozen, at a fraction of the cost per epoch; the same cache
makes scoring many texts with several models that share the bottom cheap (the experiments).

Supported: BERT-family (the offline ``me5-small-q4``: pooler + dropout + classifier) and XLM-R-family (the
classifier reads the first token itself) sequence classifiers.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from crestguard.errors import CrestGuardError


def _encoder(model):
    return getattr(model, model.base_model_prefix)


def _extended_mask(enc, attention_mask, hidden):
    """The attention mask in the form the encoder's layers expect (built by the model itself)."""
    import inspect

    params = inspect.signature(enc._create_attention_masks).parameters
    # transformers renamed the cache argument (past_key_values -> cache) and added position_ids; pass what it takes
    extra = {name: None for name in ("past_key_values", "cache", "position_ids") if name in params}
    return enc._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                       embedding_output=hidden, encoder_hidden_states=None, **extra)[0]


def _run_layers(layers, hidden, mask4):
    for layer in layers:
        out = layer(hidden, attention_mask=mask4)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def top_stack(model, n_top: int):
    """A :class:`torch.nn.Module` over the top ``n_top`` layers and the head of ``model`` (parameters shared)."""
    import torch

    class TopStack(torch.nn.Module):
        """The trainable top of a classifier, fed with cached lower-layer states: ``forward(hidden, mask) -> logits``."""

        def __init__(self):
            super().__init__()
            enc = _encoder(model)
            self.layers = torch.nn.ModuleList(enc.encoder.layer[len(enc.encoder.layer) - n_top:])
            self.pooler = getattr(enc, "pooler", None)
            self.dropout = getattr(model, "dropout", None)
            self.classifier = model.classifier
            self._enc = [enc]  # not registered: its other parameters are frozen and not part of this module

        def forward(self, hidden, attention_mask):
            hidden = _run_layers(self.layers, hidden, _extended_mask(self._enc[0], attention_mask, hidden))
            if self.pooler is not None:
                return self.classifier(self.dropout(self.pooler(hidden)))
            return self.classifier(hidden)

    if not hasattr(model, "classifier"):
        raise CrestGuardError(f"{type(model).__name__}: frozen-state caching needs a sequence classifier")
    return TopStack()


_OPEN: dict = {}


class BottomStore(dict):
    """Frozen-bottom states persisted under the cache directory, shared by runs and processes.

    One folder per (backbone build, number of trainable top layers): ``<cache>/bottoms/<backbone>-<sha>-top<N>/``,
    holding shards of ``{sha1(token ids): fp32 state}`` written atomically by :meth:`flush`. States are stored in
    fp32, so scores computed through the store equal those of the plain forward pass. The folder is a cache: delete
    it at any time.
    """

    def __init__(self, backbone: str, backbone_sha256: str | None, n_top: int):
        from crestguard.paths import cache_dir

        super().__init__()
        self.dir = cache_dir() / "bottoms" / f"{backbone}-{(backbone_sha256 or 'unknown')[:12]}-top{n_top}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._seen: set[str] = set()
        self._new: dict = {}
        self.refresh()

    def refresh(self) -> None:
        """Load the shards written since this store was opened (by this or another process)."""
        import torch

        for shard in sorted(self.dir.glob("shard-*.pt")):
            if shard.name not in self._seen:
                self._seen.add(shard.name)
                super().update(torch.load(shard, weights_only=True))

    @classmethod
    def open(cls, backbone: str, backbone_sha256: str | None, n_top: int) -> "BottomStore":
        """The store of this process for (backbone, ``n_top``): opened once, shared by every run and evaluation."""
        key = (backbone, backbone_sha256, n_top)
        if key not in _OPEN:
            _OPEN[key] = cls(backbone, backbone_sha256, n_top)
        return _OPEN[key]

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self._new[key] = value

    def flush(self) -> None:
        """Write the states added since the last flush as one new shard."""
        import os
        import uuid

        import torch

        if not self._new:
            return
        tmp = self.dir / f".shard-{uuid.uuid4().hex}.tmp"
        torch.save(self._new, tmp)
        name = f"shard-{uuid.uuid4().hex}.pt"
        os.replace(tmp, self.dir / name)
        self._seen.add(name)
        self._new = {}


def state_key(ids: Sequence[int]) -> str:
    """The cache key of a tokenized text."""
    import hashlib

    return hashlib.sha1(np.asarray(ids, dtype=np.int32).tobytes()).hexdigest()


def cached_lower_states(model, n_top: int, ids: Sequence[list[int]], pad_id: int, device, bf16: bool,
                        cache: dict | None, batch_size: int = 64, advance=None, flush_every: int = 2048) -> list:
    """:func:`lower_states` through ``cache`` (a dict or :class:`BottomStore` for one backbone and ``n_top``):
    only texts not in it are run."""
    if cache is None:
        return lower_states(model, n_top, ids, pad_id, device, bf16, batch_size, advance)
    keys = [state_key(x) for x in ids]
    first = dict(zip(keys, ids))
    missing = [k for k in first if k not in cache]
    if missing and hasattr(cache, "refresh"):  # another process may have computed them meanwhile
        cache.refresh()
        missing = [k for k in missing if k not in cache]
    if advance:
        advance(len(keys) - len(missing))
    for i in range(0, len(missing), flush_every):  # flushed as it goes: an interruption keeps what was computed
        part = missing[i:i + flush_every]
        states = lower_states(model, n_top, [first[k] for k in part], pad_id, device, bf16, batch_size, advance)
        for k, st in zip(part, states):
            cache[k] = st
        if hasattr(cache, "flush"):
            cache.flush()
    return [cache[k] for k in keys]


def lower_states(model, n_top: int, ids: Sequence[list[int]], pad_id: int, device, bf16: bool,
                 batch_size: int = 64, advance=None) -> list:
    """Hidden states after the frozen bottom (embeddings + all but the top ``n_top`` layers), one tensor per text.

    Each tensor is ``(len(ids[i]), hidden)`` in fp32 (exactly what the next layer would receive), on the CPU, in
    input order.
    """
    import torch

    from crestguard.training.data import collate

    enc = _encoder(model)
    lower = enc.encoder.layer[: len(enc.encoder.layer) - n_top]
    out: list = [None] * len(ids)
    order = np.argsort([len(x) for x in ids], kind="stable")
    was = enc.training
    enc.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            input_ids, mask = collate([ids[j] for j in idx], pad_id)
            input_ids, mask = input_ids.to(device), mask.to(device)
            hidden = enc.embeddings(input_ids=input_ids)
            hidden = _run_layers(lower, hidden, _extended_mask(enc, mask, hidden))
            for row, j in enumerate(idx):
                out[j] = hidden[row, : len(ids[j])].float().cpu().clone()
            if advance:
                advance(len(idx))
    enc.train(was)
    return out


def pad_states(states: Sequence, device):
    """Pad cached states into ``(batch, width, hidden)`` fp32 and the attention mask."""
    import torch

    width = max(s.shape[0] for s in states)
    hidden = torch.zeros((len(states), width, states[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        hidden[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return hidden.to(device), mask.to(device)
