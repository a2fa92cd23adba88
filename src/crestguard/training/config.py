"""The training configuration: one dataclass whose defaults are the CREST paper's Table 10, read from YAML recipes.

A recipe (``configs/*.yaml``) names only what differs from the defaults::

    backbone: me5-small-q4
    mix: configs/mixes/offline.yaml
    train_mode: top_layers
    train_layers: 6
    max_length: 128

and any field can be overridden on the command line as ``key=value`` (YAML syntax for the value)::

    crestguard train run configs/crest-me5s.yaml --set epochs=1 --set out_dir=runs/try

Example:
    >>> from crestguard.training.config import TrainConfig
    >>> TrainConfig().learning_rate
    5e-05
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from crestguard.errors import CrestGuardError
from crestguard.guard.segments import SENTENCE_MODES

TRAIN_MODES = ("full", "freeze_embeddings", "top_layers", "lora")
BALANCE = ("none", "class_weights", "sampler")
SELECT_ON = ("val", "calibration")


class ConfigError(CrestGuardError):
    """A recipe file or override is malformed; the message names the file and the field."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults follow the paper's Table 10 (CREST-BASE).

    Attributes:
        backbone: registry name, local directory or hub id (paper: ``FacebookAI/xlm-roberta-base``).
        mix: path of the training-mix YAML (see :mod:`crestguard.training.mix`).
        out_dir: where the model, checkpoints, ``log.jsonl`` and ``summary.json`` go.
        seed: seeds Python, NumPy and torch; also the data order.
        batch_size: examples per device per micro-batch (paper: 32 for BASE).
        grad_accum: micro-batches per optimizer step (paper: 4).
        epochs: passes over the training mix (paper: 2 for BASE, 4 for LARGE).
        max_steps: stop after this many optimizer steps (``None``: run every epoch).
        time_budget_min: stop (and keep the best model) after this many minutes of training (``None``: no limit).
        learning_rate: peak learning rate of the linear schedule (paper: 5e-5).
        warmup_ratio: fraction of the steps spent warming up linearly from 0 (paper: 0.06).
        weight_decay: AdamW weight decay, not applied to biases and LayerNorm weights (paper: 0.01).
        max_grad_norm: gradient clipping (paper: 1.0).
        bf16: bfloat16 autocast where the hardware supports it (paper: yes); ignored with a notice where it does not.
        dropout: the head's and encoder's dropout (paper: 0.1).
        max_length: tokens per input during training; longer inputs are truncated and counted.
        length_filter: inputs over this many tokens are dropped and counted before training (paper: 512).
        train_mode: ``full`` | ``freeze_embeddings`` | ``top_layers`` (the top ``train_layers`` layers + head; lower
            layers frozen and run without gradients) | ``lora`` (``peft`` adapters + head).
        train_layers: number of top encoder layers trained in ``top_layers`` mode (and LoRA's layer range).
        cache_frozen: in ``top_layers`` mode, run the frozen bottom once per text and train the top on its cached
            output (:mod:`crestguard.training.frozen`): the same computation, several times cheaper per epoch.
        lora_r, lora_alpha, lora_dropout: LoRA adapter settings.
        balance: ``class_weights`` (inverse-frequency loss weights), ``sampler`` (balanced sampling) or ``none``.
        val_fraction: share of the mix's groups held out for validation (early stopping).
        eval_every: optimizer steps between validations (``None``: once per epoch).
        patience: validations without a better selection score before stopping early (paper: 4).
        select_on: what early stopping and the kept weights follow: ``val`` (unsafe-F1 on the held-out split of the
            mix, the paper's rule) or ``calibration`` (AUROC on the mix's calibration records: sources, and for
            unsafe items languages, the model never trains on; a split of the mix rewards in-distribution fit, this
            rewards what transfers).
        save_every: optimizer steps between resumable checkpoints (``None``: at every validation).
        num_threads: CPU threads for torch (``None``: torch's default).
        delta_dtype: dtype of the saved delta for offline-backbone models.
        invariance_weight: weight of the language-invariance regularizer (:mod:`crestguard.training.invariance`):
            the squared difference of the logit margins of translation pairs, added to the loss (0: off).
        invariance_datasets: the parallel registry datasets the pairs come from.
        invariance_pairs: how many translation pairs are drawn (English and one other language each).
        invariance_batch: pairs scored per optimizer step.
        guard_sentences: how a guard reads long inputs with this model by default: the guard's ``sentences``
            setting (``only`` | ``long`` | ``all`` | ``off``; :class:`crestguard.guard.GuardSettings`), stored as
            ``sentences`` in the saved model's config.
        notes: free text copied into the saved model's config.
        soup: members of a model soup (:mod:`crestguard.training.soup`): ``[{name, set: {field: value}}, ...]``,
            each trained with this recipe's fields and its overrides, then averaged (``None``: one model).
    """

    backbone: str = "FacebookAI/xlm-roberta-base"
    mix: str = "configs/mixes/offline.yaml"
    out_dir: str = "runs/crest"
    seed: int = 42
    batch_size: int = 32
    grad_accum: int = 4
    epochs: float = 2
    max_steps: int | None = None
    time_budget_min: float | None = None
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    bf16: bool = True
    dropout: float = 0.1
    max_length: int = 512
    length_filter: int = 512
    train_mode: str = "full"
    train_layers: int = 12
    cache_frozen: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    balance: str = "class_weights"
    val_fraction: float = 0.1
    eval_every: int | None = None
    patience: int = 4
    select_on: str = "val"
    save_every: int | None = None
    num_threads: int | None = None
    delta_dtype: str = "float16"
    invariance_weight: float = 0.0
    invariance_datasets: list[str] = field(default_factory=lambda: ["flores200", "ntrex128"])
    invariance_pairs: int = 4000
    invariance_batch: int = 16
    guard_sentences: str = "off"
    notes: str = ""
    soup: list[dict[str, Any]] | None = None
    recipe: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check ranges and choices.

        Raises:
            ConfigError: a field has a value outside its allowed range or choices.
        """
        where = f"recipe {self.recipe}" if self.recipe else "training config"
        if self.train_mode not in TRAIN_MODES:
            raise ConfigError(f"{where}: train_mode must be one of {TRAIN_MODES}, not {self.train_mode!r}")
        if self.select_on not in SELECT_ON:
            raise ConfigError(f"{where}: select_on must be one of {SELECT_ON}, not {self.select_on!r}")
        if self.guard_sentences not in SENTENCE_MODES:
            raise ConfigError(f"{where}: guard_sentences must be one of {SENTENCE_MODES}, not "
                              f"{self.guard_sentences!r}")
        if self.balance not in BALANCE:
            raise ConfigError(f"{where}: balance must be one of {BALANCE}, not {self.balance!r}")
        positive = {"batch_size": self.batch_size, "grad_accum": self.grad_accum, "max_length": self.max_length,
                    "length_filter": self.length_filter, "train_layers": self.train_layers,
                    "learning_rate": self.learning_rate, "epochs": self.epochs, "patience": self.patience}
        bad = [k for k, v in positive.items() if not v > 0]
        if bad:
            raise ConfigError(f"{where}: must be > 0: {', '.join(f'{k}={positive[k]}' for k in bad)}")
        if self.invariance_weight < 0 or (self.invariance_weight > 0 and
                                          (self.invariance_pairs < 1 or self.invariance_batch < 1)):
            raise ConfigError(f"{where}: invariance_weight must be >= 0, and when it is > 0 invariance_pairs and "
                              "invariance_batch must be >= 1")
        if self.cache_frozen and self.train_mode != "top_layers":
            raise ConfigError(f"{where}: cache_frozen needs train_mode top_layers")
        if not 0 <= self.warmup_ratio < 1 or not 0 <= self.dropout < 1 or not 0 < self.val_fraction < 1:
            raise ConfigError(f"{where}: warmup_ratio and dropout must be in [0, 1), val_fraction in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _parse_override(item: str) -> tuple[str, Any]:
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected key=value")
    return key.strip(), yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML recipe (or start from the defaults) and apply overrides.

    Args:
        path: a recipe file; ``None`` for the paper's defaults.
        overrides: ``["key=value", ...]`` (values parsed as YAML) or a mapping.

    Raises:
        ConfigError: the file is missing or not a mapping, or names an unknown field.
    """
    import yaml

    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a recipe must be a mapping of field: value")
        values.update(loaded)
        values["recipe"] = str(path)
    if isinstance(overrides, dict):
        values.update(overrides)
    else:
        values.update(_parse_override(o) for o in overrides or [])
    unknown = sorted(set(values) - set(TrainConfig.field_names()))
    if unknown:
        raise ConfigError(f"{path or 'overrides'}: unknown field(s) {unknown}; known: {TrainConfig.field_names()}")
    return TrainConfig(**values)
