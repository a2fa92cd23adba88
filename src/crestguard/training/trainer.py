"""The training loop (CREST §3.2, Table 10): one file, one function, the same under ``torchrun`` and alone.

``train(config)`` builds the mix, the classifier and the optimizer, then runs optimizer steps of ``grad_accum``
micro-batches with a linear warmup/decay schedule, gradient clipping and bf16 autocast (where the hardware has it),
validates on held-out groups of the mix (unsafe-class F1 at 0.5), stops early after ``patience`` validations
without improvement, restores the best weights, calibrates the threshold on the mix's calibration sources and saves
the classifier with :func:`crestguard.modeling.save_classifier`.

Distributed: under ``torchrun --nproc_per_node=N`` or ``accelerate launch`` (``WORLD_SIZE`` > 1 in the
environment) the model is wrapped in DDP (gloo on CPU, nccl on GPU); each rank takes its slice of every global
micro-batch (:func:`crestguard.training.data.epoch_order`), so the run equals a one-process run with
``batch_size x N``. Only rank 0 writes.

Out folder (``out_dir``)::

    model/            the classifier (crest_config.json + delta.safetensors, or a Hugging Face folder)
    checkpoint/       the latest resumable state (trainable weights, optimizer, schedule, RNG, early-stopping state)
    log.jsonl         one line per optimizer step ({"step", "loss", "lr", ...}) and per validation ({"val": ...})
    summary.json      config, mix summary, length-filter counts, best validation, calibration, timings
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crestguard.errors import CrestGuardError
from crestguard.training.config import TrainConfig
from crestguard.training.data import Encoded, class_weights, collate, encode, epoch_order
from crestguard.training.invariance import invariance_loss, margins

LOG_NAME = "log.jsonl"
SUMMARY_NAME = "summary.json"
CKPT_DIR = "checkpoint"
MODEL_DIR = "model"


class TrainingError(CrestGuardError):
    """Training cannot start or continue (empty data, one class only, incompatible checkpoint)."""


@dataclass
class Dist:
    """Where this process sits in a distributed run (world 1 when alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group when launched by torchrun / accelerate (``WORLD_SIZE`` > 1)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def bf16_supported(device) -> bool:
    """bf16 autocast is worth using: CUDA with bf16, or a CPU with AVX512-BF16/AMX."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


# ------------------------------------------------------------------------------------------------- parameters
def _encoder(model):
    return getattr(model, model.base_model_prefix)


def configure_parameters(model, cfg: TrainConfig):
    """Freeze per ``cfg.train_mode``; return ``(model, frozen_modules)``: LoRA wraps the model with ``peft``.

    ``frozen_modules`` are run in eval mode (no dropout) since they do not learn.
    """
    enc = _encoder(model)
    layers = enc.encoder.layer
    n_top = min(cfg.train_layers, len(layers))
    frozen: list = []
    if cfg.train_mode == "lora":
        from crestguard.errors import require

        peft = require("peft", "train", "LoRA training")
        heads = [n for n in ("classifier", "pooler") if _find_module(model, n) is not None]
        lcfg = peft.LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                               target_modules=["query", "key", "value", "dense"],
                               layers_to_transform=list(range(len(layers) - n_top, len(layers))),
                               modules_to_save=heads)
        model = peft.get_peft_model(model, lcfg)
        return model, frozen
    if cfg.train_mode in ("freeze_embeddings", "top_layers"):
        for p in enc.embeddings.word_embeddings.parameters():
            p.requires_grad = False
    if cfg.train_mode == "top_layers":
        frozen = [enc.embeddings, *layers[: len(layers) - n_top]]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad = False
    return model, frozen


def _find_module(model, name: str):
    return getattr(model, name, None) or getattr(_encoder(model), name, None)


def parameter_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def trainable_state(model) -> dict:
    """The trainable tensors (what a checkpoint and the early-stopping copy hold)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}


def calibration_records(mix, val: list) -> list:
    """What the threshold is calibrated on: the mix's calibration sources (never trained on), plus, with
    ``validation: [source names]`` in the mix's calibration block, the validation split's records of those sources
    (held-out groups of the training sources: the forms the model must pass, never trained on)."""
    names = set(mix.calibration_method.get("validation") or ())
    return list(mix.calibration) + [r for r in val if r.source in names]


#: Config fields that say where a run was written and why, not what it computes: a checkpoint resumes across them
#: (a run of configs/experiments/*.yaml resumed by `crestguard train run RECIPE --resume --out RUN`).
#: ``time_budget_min`` stops a run early; the checkpoint's state already says where it stopped.
#: ``soup`` lists a soup recipe's members; a member itself is one model (``soup: None``, or absent in older runs).
PROVENANCE_FIELDS = ("out_dir", "notes", "recipe", "time_budget_min", "soup")


def _training_fields(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in PROVENANCE_FIELDS}


def write_threshold_policy(model_dir: Path, calib: dict[str, Any]) -> Path | None:
    """Ship the per-cluster thresholds of the calibration (if any) as the model's ``thresholds.yaml``."""
    from crestguard.guard.guard import THRESHOLDS_NAME
    from crestguard.guard.thresholds import ThresholdPolicy

    path = Path(model_dir) / THRESHOLDS_NAME
    if not calib.get("clusters"):
        path.unlink(missing_ok=True)
        return None
    policy = ThresholdPolicy(threshold=calib["threshold"], clusters=dict(calib["clusters"]),
                             calibration={"method": calib["method"], "target_fpr": calib.get("target_fpr"),
                                          "sources": calib.get("sources"), "scope": "per CREST cluster, raised only"})
    return policy.save(path)


def _invariance_pairs(cfg: TrainConfig, tok, max_length: int, say):
    """The two sides of the translation pairs of the invariance regularizer, encoded (pairs that survive the
    length filter on both sides)."""
    from dataclasses import replace

    from crestguard.evaluation.manifest import load_manifest
    from crestguard.training.invariance import parallel_pairs

    pairs = parallel_pairs(cfg.invariance_datasets, cfg.invariance_pairs, cfg.seed, manifest=load_manifest())
    if not pairs:
        raise TrainingError(f"invariance_weight > 0 but {cfg.invariance_datasets} give no translation pairs")
    sides = [[replace(p[k], label=0) for p in pairs] for k in (0, 1)]
    enc = [encode(tok, side, [1.0] * len(side), max_length, max_length)[0] for side in sides]
    kept = [{r.id: i for i, r in enumerate(e.records)} for e in enc]  # the length filter may drop either side
    both = [(kept[0][a.id], kept[1][b.id]) for a, b in pairs if a.id in kept[0] and b.id in kept[1]]
    enc = [Encoded([e.ids[ix[k]] for ix in both], e.labels[[ix[k] for ix in both]],
                   e.weights[[ix[k] for ix in both]], [e.records[ix[k]] for ix in both])
           for k, e in enumerate(enc)]
    sides = [e.records for e in enc]
    say(f"invariance: {len(both)} translation pairs (English and {len({r.lang for r in sides[1]})} languages) "
        f"from {', '.join(cfg.invariance_datasets)}, weight {cfg.invariance_weight}")
    return enc


# ------------------------------------------------------------------------------------------------- scoring
def _logits(output):
    return output.logits if hasattr(output, "logits") else output


def _token_inputs(ids: list[list[int]], pad_id: int, device):
    """``idx -> (input_ids, attention_mask)`` on ``device`` for the model's own forward."""
    def make(idx):
        input_ids, mask = collate([ids[i] for i in idx], pad_id)
        return input_ids.to(device), mask.to(device)

    return make


def _scores(net, inputs, idx: np.ndarray, lengths: list[int], device, bf16: bool, batch_size: int = 64) -> np.ndarray:
    """Unsafe probabilities of examples ``idx`` (batched by length; returned in the order of ``idx``)."""
    import torch

    out = np.zeros(len(idx), dtype=np.float32)
    order = np.argsort(lengths, kind="stable")
    was_training = net.training
    net.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(order), batch_size):
            pos = order[i:i + batch_size]
            logits = _logits(net(*inputs(idx[pos]))).float()
            out[pos] = torch.softmax(logits, -1)[:, 1].cpu().numpy()
    net.train(was_training)
    return out


def predict_scores(model, ids: list[list[int]], pad_id: int, device, bf16: bool, batch_size: int = 64) -> np.ndarray:
    """Unsafe probabilities for pre-tokenized inputs, in input order."""
    return _scores(model, _token_inputs(ids, pad_id, device), np.arange(len(ids)), [len(x) for x in ids], device,
                   bf16, batch_size)


def f1_counts(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``[tp, fp, fn, tn]`` of the unsafe class."""
    pred = scores >= threshold
    pos = labels == 1
    return np.array([(pred & pos).sum(), (pred & ~pos).sum(), (~pred & pos).sum(), (~pred & ~pos).sum()], float)


def f1_from_counts(c: np.ndarray) -> dict[str, float]:
    tp, fp, fn, tn = c
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return {"f1": round(100 * f1, 3), "precision": round(100 * prec, 3), "recall": round(100 * rec, 3),
            "fpr": round(100 * fpr, 3)}


# ------------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a temporary file renamed over the old one (an interruption leaves the previous one)."""
    import torch

    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path / "state.pt")


def load_checkpoint(path: Path) -> dict | None:
    import torch

    file = path / "state.pt"
    return torch.load(file, weights_only=False) if file.is_file() else None


def _rng_state() -> dict:
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


# ------------------------------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, mix=None, resume: bool = False, on_step: Callable[[int, Any], None] | None = None,
          progress: bool = True, console=None, bottom_cache: dict | None = None) -> dict[str, Any]:
    """Train a classifier as ``cfg`` says; return the summary (also written to ``out_dir/summary.json``).

    Args:
        cfg: the recipe.
        mix: a built :class:`~crestguard.training.mix.Mix` (default: ``load_mix(cfg.mix)``).
        resume: continue from ``out_dir/checkpoint`` if it exists (the config must match the checkpoint's).
        on_step: called with ``(step, model)`` after every optimizer step (tests use it to interrupt a run or to
            read each rank's weights).
        progress: show a progress bar (rank 0).
        bottom_cache: with ``cache_frozen``, the store of frozen-bottom states (a dict shared between runs on the
            same backbone and ``train_layers``); default: the persistent
            :class:`~crestguard.training.frozen.BottomStore` for offline backbones, so each text's bottom is computed
            once per machine.

    Raises:
        TrainingError: no data, a single class, a checkpoint from another config, or a soup recipe (its members
            train here; :func:`crestguard.training.soup.train_soup` trains and averages them).
    """
    if cfg.soup:
        raise TrainingError(f"recipe {cfg.recipe} is a model soup: train it with `crestguard train run` "
                            "(crestguard.training.soup.train_soup)")
    import torch
    import torch.distributed as dist

    from crestguard.data.splits import split_by_group
    from crestguard.modeling import build_classifier, save_classifier
    from crestguard.training.calibrate import calibrate
    from crestguard.training.evaluate import Scorer
    from crestguard.training.mix import load_mix

    t_start = time.monotonic()
    dd = setup_distributed()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = torch.device(f"cuda:{dd.local_rank}" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out_dir)
    log_path, ckpt_dir = out / LOG_NAME, out / CKPT_DIR
    say = (console.print if console is not None else print) if dd.main else (lambda *a, **k: None)

    ckpt = load_checkpoint(ckpt_dir) if resume else None
    if ckpt is not None and _training_fields(ckpt["config"]) != _training_fields(cfg.to_dict()):
        diff = sorted(k for k, v in _training_fields(cfg.to_dict()).items() if ckpt["config"].get(k) != v)
        raise TrainingError(f"{ckpt_dir}: the checkpoint was written by a different config ({', '.join(diff)}); "
                            "start a fresh out_dir or drop --resume")
    mix = mix if mix is not None else load_mix(cfg.mix)
    if len({r.label for r in mix.records}) < 2:
        raise TrainingError(f"mix {mix.name}: training needs both labels, got {sorted({r.label for r in mix.records})}")
    weight_of = dict(zip((r.id + "\x00" + r.source for r in mix.records), mix.weights))
    parts = split_by_group(mix.records, {"train": 1 - cfg.val_fraction, "val": cfg.val_fraction}, seed=cfg.seed)

    seed_everything(cfg.seed)
    bundle = build_classifier(cfg.backbone, dropout=cfg.dropout)
    tok, pad_id = bundle.tokenizer, bundle.tokenizer.pad_token_id
    max_length = min(cfg.max_length, bundle.meta.get("max_length") or cfg.max_length)
    train_enc, length_report = encode(tok, parts["train"], [weight_of[r.id + "\x00" + r.source] for r in parts["train"]],
                                      max_length, cfg.length_filter)
    val_enc, val_length = encode(tok, parts["val"], [1.0] * len(parts["val"]), max_length, cfg.length_filter)
    cal_enc = None
    if cfg.select_on == "calibration":
        cal_enc, _ = encode(tok, mix.calibration, [1.0] * len(mix.calibration), max_length, cfg.length_filter)
        if len(set(cal_enc.labels.tolist())) < 2:
            raise TrainingError(f"mix {mix.name}: select_on: calibration needs calibration records of both labels "
                                f"(got {len(cal_enc)} records)")
    pair_enc = _invariance_pairs(cfg, tok, max_length, say) if cfg.invariance_weight > 0 else None
    selection_metric = "calibration AUROC" if cal_enc is not None else "validation unsafe-F1"
    if len(train_enc) == 0 or len(val_enc) == 0:
        raise TrainingError(f"mix {mix.name}: {len(train_enc)} training and {len(val_enc)} validation examples "
                            "after the length filter; need both")
    say(f"length filter: {length_report.dropped_over_filter + val_length.dropped_over_filter} of "
        f"{length_report.examples + val_length.examples} dropped (> {cfg.length_filter} tokens), "
        f"{length_report.truncated + val_length.truncated} truncated to {max_length}")

    model, frozen = configure_parameters(bundle.model, cfg)
    model.to(device)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    use_bf16 = cfg.bf16 and bf16_supported(device)
    if cfg.bf16 and not use_bf16:
        say("bf16 requested but this hardware lacks it: training in fp32")

    global_micro = cfg.batch_size * dd.world
    per_epoch = len(train_enc) // global_micro // cfg.grad_accum
    if per_epoch == 0:
        raise TrainingError(f"{len(train_enc)} training examples are fewer than one optimizer step "
                            f"({global_micro * cfg.grad_accum}); lower batch_size or grad_accum")
    total_steps = cfg.max_steps or math.ceil(cfg.epochs * per_epoch)
    warmup = int(cfg.warmup_ratio * total_steps)
    optim = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                              fused=device.type == "cuda" or None)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    net, inputs = model, _token_inputs(train_enc.ids, pad_id, device)
    val_inputs = _token_inputs(val_enc.ids, pad_id, device)
    cal_inputs = _token_inputs(cal_enc.ids, pad_id, device) if cal_enc is not None else None
    pair_inputs = [_token_inputs(e.ids, pad_id, device) for e in pair_enc] if pair_enc else None
    encoded = [e for e in (train_enc, val_enc, cal_enc, *(pair_enc or ())) if e is not None]
    if cfg.cache_frozen:
        from crestguard.training.frozen import BottomStore, cached_lower_states, pad_states, top_stack

        n_top = min(cfg.train_layers, len(_encoder(model).encoder.layer))
        net = top_stack(model, n_top)
        if bottom_cache is None and bundle.meta.get("backbone_kind") == "offline":
            bottom_cache = BottomStore.open(bundle.meta["backbone"], bundle.meta.get("backbone_sha256"), n_top)
        n_cached = sum(len(e) for e in encoded)
        with _counter(progress and dd.main, n_cached, "caching frozen layers", console) as adv:
            t0 = time.monotonic()
            cached = [cached_lower_states(model, n_top, e.ids, pad_id, device, use_bf16, bottom_cache, advance=adv)
                      for e in encoded]
        say(f"cached the frozen bottom of {n_cached} texts in {time.monotonic() - t0:.0f} s")
        inputs = lambda idx: pad_states([cached[0][i] for i in idx], device)  # noqa: E731
        val_inputs = lambda idx: pad_states([cached[1][i] for i in idx], device)  # noqa: E731
        if cal_enc is not None:
            cal_inputs = lambda idx: pad_states([cached[2][i] for i in idx], device)  # noqa: E731
        if pair_enc:
            first = len(encoded) - 2
            pair_inputs = [lambda idx, k=k: pad_states([cached[k][i] for i in idx], device)  # noqa: E731
                           for k in (first, first + 1)]
    ddp_net = net
    if dd.world > 1:
        ddp_net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[dd.local_rank] if device.type == "cuda" else None)
    cw = class_weights(train_enc.labels) if cfg.balance == "class_weights" else np.ones(2)
    eval_every = cfg.eval_every or per_epoch
    save_every = cfg.save_every or eval_every

    state = {"step": 0, "best_f1": -1.0, "best_step": 0, "best_val": None, "bad_evals": 0, "best": None,
             "elapsed": 0.0}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"], strict=False)
        optim.load_state_dict(ckpt["optim"])
        sched.load_state_dict(ckpt["sched"])
        _set_rng_state(ckpt["rng"])
        state.update(ckpt["state"])
        say(f"resumed from {ckpt_dir} at step {state['step']}")
    elif dd.main:
        out.mkdir(parents=True, exist_ok=True)
        log_path.write_text("")
    resumed_from = state["step"] if ckpt is not None else None

    def log(entry: dict) -> None:
        if dd.main:
            with log_path.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def validate(step: int) -> dict:
        shard = np.arange(dd.rank, len(val_enc), dd.world)
        scores = _scores(net, val_inputs, shard, [len(val_enc.ids[i]) for i in shard], device, use_bf16)
        train_mode()
        counts = torch.tensor(f1_counts(val_enc.labels[shard], scores))
        if dd.world > 1:
            dist.all_reduce(counts)
        res = {"step": step, "val": f1_from_counts(counts.numpy())}
        if cal_enc is not None:  # small: every rank scores all of it, so all ranks agree without a reduction
            from sklearn.metrics import roc_auc_score

            cal = _scores(net, cal_inputs, np.arange(len(cal_enc)), [len(x) for x in cal_enc.ids], device, use_bf16)
            train_mode()
            res["calibration"] = {"auroc": round(100 * float(roc_auc_score(cal_enc.labels, cal)), 3),
                                  **f1_from_counts(f1_counts(cal_enc.labels, cal))}
        res["selection"] = res["calibration"]["auroc"] if cal_enc is not None else res["val"]["f1"]
        return res

    def checkpoint() -> None:
        if dd.main:
            save_checkpoint(ckpt_dir, {"config": cfg.to_dict(), "model": trainable_state(model),
                                       "optim": optim.state_dict(), "sched": sched.state_dict(),
                                       "rng": _rng_state(), "state": state})

    def train_mode() -> None:
        model.train()
        for module in frozen:
            module.eval()

    lengths = [len(x) for x in train_enc.ids]
    pair_rng = np.random.default_rng([cfg.seed, dd.rank, 7])
    train_mode()
    bar = _progress(progress and dd.main, total_steps, state["step"], console)
    t_loop, done_before = time.monotonic(), state["elapsed"]
    seen = 0
    stop_reason = "max steps" if cfg.max_steps else "epochs"
    while state["step"] < total_steps:
        epoch, in_epoch = divmod(state["step"], per_epoch)
        order = epoch_order(len(train_enc), train_enc.labels, cfg.seed, epoch, cfg.balance == "sampler",
                            lengths, global_micro)
        micro = order.reshape(-1, global_micro)[:, dd.rank * cfg.batch_size:(dd.rank + 1) * cfg.batch_size]
        for step_in in range(in_epoch, per_epoch):
            losses, inv_losses = [], []
            for a in range(cfg.grad_accum):
                idx = micro[step_in * cfg.grad_accum + a]
                y = torch.as_tensor(train_enc.labels[idx], device=device)
                w = torch.as_tensor(train_enc.weights[idx] * cw[train_enc.labels[idx]], device=device,
                                    dtype=torch.float32)
                sync = a == cfg.grad_accum - 1 or dd.world == 1
                ctx = ddp_net.no_sync() if not sync else contextlib.nullcontext()
                with ctx:
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        logits = _logits(ddp_net(*inputs(idx)))
                    ce = torch.nn.functional.cross_entropy(logits.float(), y, reduction="none")
                    loss = (w * ce).sum() / (cfg.batch_size * cfg.grad_accum)
                    if pair_inputs is not None:
                        pidx = pair_rng.choice(len(pair_enc[0]), size=min(cfg.invariance_batch, len(pair_enc[0])),
                                               replace=False)
                        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                            la, lb = (_logits(ddp_net(*fn(pidx))).float() for fn in pair_inputs)
                        inv = invariance_loss(margins(la), margins(lb))
                        loss = loss + cfg.invariance_weight * inv / cfg.grad_accum
                        inv_losses.append(float(inv.detach()))
                    loss.backward()
                losses.append(float(loss.detach()) * cfg.grad_accum)
                seen += len(idx) * dd.world
            grad_norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                                       cfg.max_grad_norm)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            state["step"] += 1
            step = state["step"]
            state["elapsed"] = done_before + time.monotonic() - t_loop
            log({"step": step, "epoch": round(step / per_epoch, 4), "loss": round(float(np.mean(losses)), 5),
                 "lr": sched.get_last_lr()[0], "grad_norm": round(float(grad_norm), 4),
                 **({"invariance": round(float(np.mean(inv_losses)), 5)} if inv_losses else {}),
                 "samples_per_s": round(seen / max(1e-9, time.monotonic() - t_loop), 2)})
            if bar:
                bar[0].update(bar[1], completed=step, description=f"loss {np.mean(losses):.4f}")
            stop = step >= total_steps
            if step % eval_every == 0 or stop:
                res = validate(step)
                if res["selection"] > state["best_f1"]:
                    state.update(best_f1=res["selection"], best_step=step, best_val=res["val"], bad_evals=0,
                                 best=trainable_state(model), best_calibration=res.get("calibration"))
                else:
                    state["bad_evals"] += 1
                log(res | {"best_f1": state["best_f1"], "best_step": state["best_step"]})
                also = f"; validation unsafe-F1 {res['val']['f1']:.2f}" if cal_enc is not None else ""
                say(f"step {step}: {selection_metric} {res['selection']:.2f} (best {state['best_f1']:.2f} at step "
                    f"{state['best_step']}{also})")
                if state["bad_evals"] >= cfg.patience:
                    stop, stop_reason = True, f"early stopping (patience {cfg.patience})"
            if cfg.time_budget_min and state["elapsed"] > 60 * cfg.time_budget_min:
                stop, stop_reason = True, f"time budget ({cfg.time_budget_min} min)"
            stop = _agree(stop, dd)
            if step % save_every == 0 or stop:
                checkpoint()
            if on_step:
                on_step(step, model)
            if stop:
                break
        if stop:
            break
    if bar:
        bar[0].stop()
    train_seconds = state["elapsed"]

    if state["best"] is not None and state["best_step"] != state["step"]:
        model.load_state_dict(state["best"], strict=False)
    if state["best"] is None:  # stopped before the first validation: validate the final weights
        res = validate(state["step"])
        state.update(best_val=res["val"], best_step=state["step"], best_f1=res["selection"],
                     best_calibration=res.get("calibration"))
    summary: dict[str, Any] = {}
    if dd.main:
        merged = model.merge_and_unload() if cfg.train_mode == "lora" else model
        bundle.model = merged.eval()
        train_langs = sorted({r.lang for r in mix.records})
        meta = {
            "train_languages": train_langs,
            "unsafe_languages": sorted({r.lang for r in mix.records if r.label == 1}),
            "train_sources": mix.train_sources, "recipe": cfg.recipe, "mix": mix.spec_path,
            "train_mode": cfg.train_mode, "train_layers": cfg.train_layers if cfg.train_mode != "full" else None,
            "max_length_trained": max_length, "seed": cfg.seed, "sentences": cfg.guard_sentences, "notes": cfg.notes,
        }
        calib = calibrate(Scorer(bundle.model, tok, {**bundle.meta, **meta}, bottom_cache),
                          calibration_records(mix, parts["val"]), mix.calibration_method)
        meta["threshold"] = calib["threshold"]
        save_classifier(bundle, out / MODEL_DIR, extra=meta, dtype=cfg.delta_dtype)
        write_threshold_policy(out / MODEL_DIR, calib)
        summary = {
            "config": cfg.to_dict(), "mix": mix.summary(), "world_size": dd.world, "device": str(device),
            "bf16": use_bf16, "trainable_parameters": n_trainable,
            "examples": {"train": len(train_enc), "val": len(val_enc)},
            "length_filter": {"train": length_report.to_dict(), "val": val_length.to_dict()},
            "steps": state["step"], "steps_per_epoch": per_epoch, "total_steps_planned": total_steps,
            "stopped_by": stop_reason, "resumed_from_step": resumed_from,
            "best_val": {"f1": state["best_val"]["f1"], "step": state["best_step"], "metrics": state["best_val"]},
            "selection": {"on": cfg.select_on, "score": state["best_f1"],
                          "metric": selection_metric,
                          "calibration": state.get("best_calibration")},
            "calibration": calib,
            "train_minutes": round(train_seconds / 60, 2), "wall_minutes": round((time.monotonic() - t_start) / 60, 2),
            "model_dir": str(out / MODEL_DIR),
        }
        (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        say(f"saved {out / MODEL_DIR} (threshold {calib['threshold']:.3f}; {summary['train_minutes']} min training)")
    if dd.world > 1:
        dist.barrier()
    return summary


def _agree(flag: bool, dd: Dist) -> bool:
    """Every rank stops when any rank wants to (time budgets differ slightly between processes)."""
    if dd.world == 1:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


@contextlib.contextmanager
def _counter(enabled: bool, total: int, description: str, console):
    """A progress bar over ``total`` items; yields ``advance(n)`` (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.update(task, advance=n)


def _progress(enabled: bool, total: int, start: int, console):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=console, transient=False)
    task = bar.add_task("training", total=total, completed=start)
    bar.start()
    return bar, task
