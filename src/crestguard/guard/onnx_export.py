"""Export a classifier to ONNX (fp32 + dynamic int8) into the cache, keyed by the hash of the model's files.

``export_onnx(model_dir)`` (needs torch, once) writes ``$CRESTGUARD_HOME/onnx/<name>-<hash16>/``:

- ``model.onnx``: ``torch.onnx.export`` (TorchScript exporter, opset 17, eager attention so that onnxruntime's
  transformer optimizer can fuse it) with dynamic batch and sequence axes, fused by
  ``onnxruntime.transformers.optimizer`` (attention, embedding + LayerNorm, bias + GELU, skip + LayerNorm), then
  rewritten by :mod:`crestguard.guard.graph_passes` (exact: skip + LayerNorm split again, padding dropped between
  attentions, the last layer after its attention on the first token alone);
- ``model.int8.onnx``: the same in int8 with one activation scale per token, computed at run time
  (:mod:`crestguard.guard.int8_rows`: smoothed per-row int8 for the FFN up-projections, shifted per-row int8 after
  the GELU, smoothed input channels for the attention, ``quantize_dynamic`` for the rest). Plain
  ``quantize_dynamic`` (one scale per tensor) agreed with fp32 on only ~98% of labels on a sample of the evaluation
  suite (``benchmarks/results/int8_recipes.md``);
- ``tokenizer.json``: the model's fast tokenizer (including its Unicode NFC step), read with ``tokenizers`` alone;
- ``onnx_meta.json`` (written last: its presence means complete): the model's ``crest_config.json`` content, the
  pad id, the fused operators, file sizes, the model hash and library versions.

Serving needs only ``onnxruntime``, ``tokenizers`` and ``numpy``: :func:`find_onnx` locates the folder without
importing torch. The folder is built in a temporary directory and renamed into place, so a crash or a concurrent
export never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

from crestguard.errors import CrestGuardError, require
from crestguard.paths import cache_dir

META_NAME = "onnx_meta.json"
TOKENIZER_NAME = "tokenizer.json"
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
OPSET = 17
#: Bump when the export recipe changes (part of the cache key).
RECIPE = 11
#: onnxruntime's own optimizer would fuse the split normalizations back (see
#: :func:`crestguard.guard.graph_passes.split_skip_layernorm`).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)

Progress = Callable[[str], None]


def model_files(model_dir: Path) -> list[Path]:
    """The files that define a model folder (everything at the top level except Markdown)."""
    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.suffix != ".md")
    if not files:
        raise CrestGuardError(f"{model_dir}: empty model folder")
    return files


def model_hash(model_dir: str | Path) -> str:
    """SHA-256 over the names and contents of :func:`model_files` (a delta model's ``crest_config.json`` holds its
    backbone's hash, so a different backbone build changes it too)."""
    h = hashlib.sha256()
    for f in model_files(Path(model_dir)):
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    return h.hexdigest()


def onnx_dir(model_dir: str | Path, digest: str | None = None) -> Path:
    """Where the ONNX export of ``model_dir`` lives in the cache (whether or not it exists yet)."""
    model_dir = Path(model_dir).resolve()
    digest = digest or model_hash(model_dir)
    return cache_dir() / "onnx" / f"{model_dir.name}-{digest[:16]}-r{RECIPE}"


def find_onnx(model_dir: str | Path, digest: str | None = None) -> Path | None:
    """The complete export folder of ``model_dir``, or ``None`` when it has not been exported yet."""
    target = onnx_dir(model_dir, digest)
    return target if (target / META_NAME).is_file() else None


def _export_graph(model, pad_id: int, path: Path) -> None:
    import torch

    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # a pattern the ORT optimizer fuses into one Attention op
    ids = torch.tensor([[0, 1000, 2000, 2, pad_id], [0, 3000, 4000, 5000, 2]], dtype=torch.long)
    mask = (ids != pad_id).long()
    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
           "logits": {0: "batch"}}
    with torch.inference_mode():
        torch.onnx.export(model.eval(), (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=dyn, opset_version=OPSET, dynamo=False)


def _optimize(src: Path, dst: Path, config, passes: tuple[str, ...] | None = None) -> dict:
    """Fuse the graph with onnxruntime's transformer optimizer (BERT and XLM-R encoders), then apply ``passes`` of
    :mod:`crestguard.guard.graph_passes` (default: all)."""
    from onnxruntime.transformers.optimizer import optimize_model

    from crestguard.guard.graph_passes import apply_all

    opt = optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                         hidden_size=config.hidden_size)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    stats.update(apply_all(opt.model, passes))
    opt.save_model_to_file(str(dst))
    return stats


def export_onnx(model_dir: str | Path, force: bool = False, progress: Progress | None = None) -> Path:
    """Export the classifier in ``model_dir`` to ONNX fp32 + int8 in the cache; return the folder.

    Args:
        model_dir: a classifier folder (:func:`crestguard.modeling.load_classifier` reads it).
        force: rebuild even if the cache has it.
        progress: called with a short description before each stage.

    Raises:
        MissingDependencyError: torch, transformers, onnx or onnxruntime is missing.
    """
    for module, extra in (("torch", "torch"), ("transformers", "torch"), ("onnx", "onnx"), ("onnxruntime", "onnx")):
        require(module, extra, "exporting to ONNX")
    import logging

    import onnxruntime
    import torch

    from crestguard.guard.guard import quiet_transformers
    from crestguard.guard.int8_rows import calibration_batches, quantize_rows
    from crestguard.modeling import load_classifier

    say = progress or (lambda _msg: None)
    model_dir = Path(model_dir).resolve()
    digest = model_hash(model_dir)
    target = onnx_dir(model_dir, digest)
    if (target / META_NAME).is_file() and not force:
        return target
    say(f"loading {model_dir.name}")
    with quiet_transformers():
        bundle = load_classifier(model_dir)
    pad_id = int(bundle.tokenizer.pad_token_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)
    root = logging.getLogger()
    level = root.level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and quantizer advice, not problems (parity is tested)
            root.setLevel(logging.ERROR)  # onnxruntime.quantization logs its advice on the root logger
            say("exporting the graph (torch.onnx)")
            _export_graph(bundle.model, pad_id, tmp / "raw.onnx")
            say("fusing (onnxruntime transformer optimizer)")
            fused = _optimize(tmp / "raw.onnx", tmp / FILES["fp32"], bundle.model.config)
            (tmp / "raw.onnx").unlink()
            say("quantizing to int8")
            quantized = quantize_rows(tmp / FILES["fp32"], tmp / FILES["int8"],
                                      calibration_batches(bundle.tokenizer.backend_tokenizer, pad_id))
        bundle.tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER_NAME))
        meta = {
            "model_dir": str(model_dir),
            "model_hash": digest,
            "recipe": RECIPE,
            "crest_config": bundle.meta,
            "pad_id": pad_id,
            "opset": OPSET,
            "fused_operators": fused,
            "int8_operators": quantized,
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
            "files": {k: {"name": v, "bytes": (tmp / v).stat().st_size} for k, v in FILES.items()},
        }
        (tmp / META_NAME).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        if target.exists():
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first
            if not (target / META_NAME).is_file():
                raise
    finally:
        root.setLevel(level)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
