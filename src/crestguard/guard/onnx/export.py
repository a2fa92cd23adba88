"""Export a classifier to ONNX (fp32 + dynamic int8) into the cache, keyed by the hash of the model's files.

``export_onnx(model_dir)`` (once per model) writes ``$CRESTGUARD_HOME/onnx/<name>-<hash16>-r<recipe>/``:

- ``model.onnx``: the fused encoder graph (attention, embedding + LayerNorm, bias + GELU, skip + LayerNorm) with
  dynamic batch and sequence axes. Models on the offline backbone (a delta) get it from
  :mod:`crestguard.guard.onnx.build` with onnx and numpy alone (no torch); other models from ``torch.onnx.export``
  (TorchScript exporter, opset 17, eager attention) fused by ``onnxruntime.transformers.optimizer``. Either is
  rewritten by :mod:`crestguard.guard.onnx.graph_passes` (exact: skip + LayerNorm split again, padding dropped between
  attentions, the last layer after its attention on the first token alone);
- ``model.int8.onnx``: the same in int8 with one activation scale per token, computed at run time
  (:mod:`crestguard.guard.onnx.int8_rows`: smoothed per-row int8 for the FFN up-projections, shifted per-row int8 after
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
CONFIG_NAME = "crest_config.json"
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
OPSET = 17
#: Bump when the export recipe changes (part of the cache key).
RECIPE = 11
#: onnxruntime's own optimizer would fuse the split normalizations back (see
#: :func:`crestguard.guard.onnx.graph_passes.split_skip_layernorm`).
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
    :mod:`crestguard.guard.onnx.graph_passes` (default: all)."""
    from onnxruntime.transformers.optimizer import optimize_model

    from crestguard.guard.onnx.graph_passes import apply_all

    opt = optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                         hidden_size=config.hidden_size)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    stats.update(apply_all(opt.model, passes))
    opt.save_model_to_file(str(dst))
    return stats


def _torch_graph(model_dir: Path, tmp: Path, say: Progress):
    """The fused and rewritten fp32 graph by torch export; returns (fused operators, tokenizer, pad id, meta)."""
    from crestguard.modeling import load_classifier, quiet_transformers

    say(f"loading {model_dir.name}")
    with quiet_transformers():
        bundle = load_classifier(model_dir)
    pad_id = int(bundle.tokenizer.pad_token_id)
    say("exporting the graph (torch.onnx)")
    _export_graph(bundle.model, pad_id, tmp / "raw.onnx")
    say("fusing (onnxruntime transformer optimizer)")
    fused = _optimize(tmp / "raw.onnx", tmp / FILES["fp32"], bundle.model.config)
    (tmp / "raw.onnx").unlink()
    return fused, bundle.tokenizer.backend_tokenizer, pad_id, bundle.meta


def _numpy_graph(model_dir: Path, tmp: Path, say: Progress):
    """The same as :func:`_torch_graph`, built from the backbone's weights and the delta with onnx and numpy."""
    import onnx

    from crestguard.guard.onnx import build
    from crestguard.guard.onnx.graph_passes import apply_all

    meta = json.loads((model_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    say(f"reading the weights of {model_dir.name} (numpy)")
    state, header, special, tokenizer = build.model_weights(model_dir, meta)
    say("building the fused graph (onnx)")
    model = build.fused_model(state, header, OPSET)
    fused = build.fused_operators(model)
    fused.update(apply_all(model))
    onnx.save(model, str(tmp / FILES["fp32"]))
    return fused, tokenizer, int(special["pad"]), meta


def builder_for(model_dir: str | Path) -> str:
    """``"numpy"`` for a delta model on the offline backbone (built without torch), else ``"torch"``."""
    from crestguard.guard.onnx.build import buildable

    cfg = Path(model_dir) / CONFIG_NAME
    return "numpy" if cfg.is_file() and buildable(json.loads(cfg.read_text(encoding="utf-8"))) else "torch"


def export_onnx(model_dir: str | Path, force: bool = False, progress: Progress | None = None,
                builder: str | None = None, out: Path | None = None) -> Path:
    """Export the classifier in ``model_dir`` to ONNX fp32 + int8 in the cache; return the folder.

    Args:
        model_dir: a classifier folder (:func:`crestguard.modeling.load_classifier` reads it).
        force: rebuild even if the cache has it.
        progress: called with a short description before each stage.
        builder: ``"numpy"`` (onnx and numpy; delta models on the offline backbone), ``"torch"``
            (``torch.onnx.export``) or ``None``: :func:`builder_for` the model.
        out: write here instead of the cache folder (for comparing builders; ``force`` is implied).

    Raises:
        MissingDependencyError: onnx or onnxruntime is missing, or torch/transformers for the torch builder.
        CrestGuardError: ``builder="numpy"`` for a model it cannot build.
    """
    import logging

    model_dir = Path(model_dir).resolve()
    builder = builder or builder_for(model_dir)
    if builder not in ("numpy", "torch"):
        raise CrestGuardError(f"Unknown ONNX builder {builder!r}: numpy or torch")
    if builder == "numpy" and builder_for(model_dir) != "numpy":
        raise CrestGuardError(f"{model_dir}: only delta models on the offline backbone build without torch")
    needs = [("onnx", "onnx"), ("onnxruntime", "onnx")] + \
        ([("torch", "torch"), ("transformers", "torch")] if builder == "torch" else [])
    for module, extra in needs:
        require(module, extra, "exporting to ONNX")
    import onnxruntime

    from crestguard.guard.onnx.int8_rows import calibration_batches, quantize_rows

    say = progress or (lambda _msg: None)
    digest = model_hash(model_dir)
    target = Path(out) if out else onnx_dir(model_dir, digest)
    if (target / META_NAME).is_file() and not force and out is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)
    root = logging.getLogger()
    level = root.level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and quantizer advice, not problems (parity is tested)
            root.setLevel(logging.ERROR)  # onnxruntime.quantization logs its advice on the root logger
            graph = _numpy_graph if builder == "numpy" else _torch_graph
            fused, tokenizer, pad_id, crest_config = graph(model_dir, tmp, say)
            say("quantizing to int8")
            quantized = quantize_rows(tmp / FILES["fp32"], tmp / FILES["int8"], calibration_batches(tokenizer, pad_id))
        tokenizer.save(str(tmp / TOKENIZER_NAME))
        versions = {"onnxruntime": onnxruntime.__version__}
        if builder == "torch":
            import torch

            versions["torch"] = torch.__version__
        meta = {
            "model_dir": str(model_dir),
            "model_hash": digest,
            "recipe": RECIPE,
            "builder": builder,
            "crest_config": crest_config,
            "pad_id": pad_id,
            "opset": OPSET,
            "fused_operators": fused,
            "int8_operators": quantized,
            "versions": versions,
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
