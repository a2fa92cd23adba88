"""A trained model folder as a classifier for the evaluation harness (:mod:`crestguard.evaluation`).

``TrainedClassifier(dir)`` follows the harness protocol (``name``, ``fingerprint``, ``predict_scores``) and reads
the threshold, training languages and training sources from the model's ``crest_config.json``. In-domain languages
are those with labelled *unsafe* training data (CREST's training languages); benign text in other languages does not
make them in-domain.

Texts longer than 512 tokens are scored on their first 512 (counted in ``truncated``); the guard runtime may window
them instead. With a shared ``bottom_cache`` (see :mod:`crestguard.training.frozen`), models that share a frozen
bottom score a text's bottom once: the experiments evaluate several models on the same suite this way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np


class Scorer:
    """Scores texts with an in-memory classifier: Unicode NFC, truncation to ``max_length`` (counted in
    ``truncated``), and for ``top_layers`` models on the offline backbone the frozen-bottom store.

    Args:
        model, tokenizer: the classifier.
        config: its ``crest_config.json`` content (``train_mode``, ``train_layers``, ``backbone``...).
        bottom_cache: frozen-bottom states to use (default for ``top_layers`` models on the offline backbone: the
            persistent :class:`~crestguard.training.frozen.BottomStore`).
    """

    def __init__(self, model, tokenizer, config: dict[str, Any], bottom_cache: dict | None = None, bf16: bool = True,
                 batch_size: int = 32, max_length: int = 512):
        from crestguard.training.trainer import bf16_supported

        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config
        self.device = next(model.parameters()).device
        self.bf16 = bf16 and bf16_supported(self.device)
        self.batch_size, self.max_length = batch_size, max_length
        n_top = config.get("train_layers") if config.get("train_mode") == "top_layers" else None
        self.n_top = int(n_top) if n_top else None
        if self.n_top and bottom_cache is None and config.get("backbone_kind") == "offline":
            from crestguard.training.frozen import BottomStore

            bottom_cache = BottomStore.open(config["backbone"], config.get("backbone_sha256"), self.n_top)
        self.bottom_cache = bottom_cache if self.n_top else None
        self.truncated = 0

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids after NFC, truncated to ``max_length`` (first tokens + the closing special token)."""
        import unicodedata

        enc = self.tokenizer([unicodedata.normalize("NFC", t) for t in texts], add_special_tokens=True,
                             truncation=False)["input_ids"]
        out = []
        for ids in enc:
            if len(ids) > self.max_length:
                self.truncated += 1
                ids = ids[: self.max_length - 1] + ids[-1:]
            out.append(ids)
        return out

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Unsafe probabilities, one per text, in order."""
        from crestguard.training.trainer import _scores, predict_scores

        ids = self.ids(texts)
        pad = self.tokenizer.pad_token_id
        if self.bottom_cache is None:
            return predict_scores(self.model, ids, pad, self.device, self.bf16, self.batch_size).astype(float)
        from crestguard.training.frozen import cached_lower_states, pad_states, top_stack

        states = cached_lower_states(self.model, self.n_top, ids, pad, self.device, self.bf16, self.bottom_cache,
                                     batch_size=self.batch_size)
        top = top_stack(self.model, self.n_top).eval()
        return _scores(top, lambda idx: pad_states([states[i] for i in idx], self.device),
                       np.arange(len(ids)), [len(x) for x in ids], self.device, self.bf16,
                       self.batch_size).astype(float)


class TrainedClassifier(Scorer):
    """A model saved by :func:`crestguard.modeling.save_classifier`, as a harness classifier.

    Args:
        model_dir: the model folder.
        name: the name in reports (default: the folder name).
        bottom_cache: see :class:`Scorer`.
    """

    def __init__(self, model_dir: str | Path, name: str | None = None, bottom_cache: dict | None = None,
                 bf16: bool = True, batch_size: int = 32, max_length: int = 512):
        from crestguard.modeling import load_classifier

        self.dir = Path(model_dir)
        bundle = load_classifier(self.dir)
        super().__init__(bundle.model, bundle.tokenizer, bundle.meta, bottom_cache, bf16, batch_size, max_length)
        self.name = name or self.dir.name
        digest = hashlib.sha256()
        for f in sorted(self.dir.iterdir()):
            if f.suffix in (".json", ".safetensors"):
                digest.update(f.name.encode() + f.read_bytes())
        self.fingerprint = "trained-" + digest.hexdigest()[:20] + f"-len{max_length}"
        self.threshold = float(self.config.get("threshold", 0.5))
        self.train_languages = self.config.get("unsafe_languages") or self.config.get("train_languages")
        self.train_sources = self.config.get("train_sources")

    @property
    def meta(self) -> dict[str, Any]:
        """What the harness records about the model in ``results.json``."""
        return {"model_dir": str(self.dir), "threshold": self.threshold, "train_mode": self.config.get("train_mode"),
                "train_layers": self.config.get("train_layers"), "recipe": self.config.get("recipe"),
                "mix": self.config.get("mix"), "truncated_to_512": self.truncated}


def evaluate_model(model_dir: str | Path, out_dir: str | Path, suite: str = "default", name: str | None = None,
                   bottom_cache: dict | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the harness on a trained model folder and write ``results.json``, ``report.md`` and plots to ``out_dir``."""
    from crestguard.evaluation import run

    clf = TrainedClassifier(model_dir, name=name, bottom_cache=bottom_cache)
    return run(clf, suite=suite, out_dir=out_dir, progress=progress)
