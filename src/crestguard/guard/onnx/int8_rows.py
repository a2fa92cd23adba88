"""int8 with one activation scale per token (row): the ONNX int8 recipe of ``crestguard export onnx``.

``onnxruntime.quantization.quantize_dynamic`` quantizes a MatMul's input with one scale for the whole tensor (every
token of every text in the batch). An encoder's tokens differ in magnitude by more than 30× (the special tokens
above all), so most tokens get a few int8 levels and the labels of ~2% of the default evaluation suite flip
(``benchmarks/results/int8_recipes.md``, ``dynamic``). This module rewrites the fused fp32 graph so that every
activation is quantized per row at run time, with plain ONNX operators and onnxruntime's int8 GEMM
(``MatMulInteger``, VNNI on x86):

- **dense layers after a LayerNorm** (the FFN up-projections): ``x / s_row`` with ``s_row = max|x_row| / 127``
  (uint8, zero point 128), per-column int8 weights; before that, the hidden channels are smoothed (SmoothQuant,
  α = 0.5: ``x · diag(1/c)`` and ``diag(c) · W`` with ``c_j = sqrt(max|x_j| / max|W_j|)``, the channel maxima
  measured on :data:`CALIBRATION`), because a LayerNorm's output has channels 10-30× larger than the median;
- **the fused attention**: its input channels smoothed the same way, then ``quantize_dynamic``'s ``QAttention``
  (one scale per tensor). A per-row QKV projection with ``MultiHeadAttention`` agreed with fp32 no better (99.44%
  against 99.72% of 1,080 suite texts) and ran 6% slower;
- **dense layers after a GELU** (the FFN down-projections, BERT's worst outliers): GELU ≥ -0.17, so ``x + 0.17`` is
  quantized unsigned per row with zero point 0, and ``-0.17 · colsum(W)`` is added to the bias of the residual
  connection (not right after the layer: an ``Add`` of a constant after the per-row rescaling is fused by
  onnxruntime into ``MatMulIntegerToFloat``, which assumes one scale per tensor and computes wrong numbers);
- everything else that ``quantize_dynamic`` handles (the attentions, the attention output projections, whose
  per-tensor error is small, and the embedding table) is left to it.

Measured on the shipped guard against its fp32 graph (1,080 suite texts, graph alone, batch 64): the same label on
99.63% of texts (mean |Δscore| 0.0055) at 141 texts/s, where MatMulNBits with 8-bit weight blocks of 128 (the
previous recipe) gave 99.35% (0.0060) at 108 and plain ``quantize_dynamic`` 97.69% (0.0231) at 159
(``benchmarks/results/int8_recipes.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

#: Prompts whose activations set the smoothing factors (package data, several scripts).
CALIBRATION = Path(__file__).with_name("calibration_prompts.yaml")
#: GELU(x) >= -0.16997 for every x; the shift that makes its output non-negative.
GELU_SHIFT = 0.17
ALPHA = 0.5
_DYNAMIC_OPS = {"MatMul", "Attention", "EmbedLayerNormalization", "Gather"}
_GELUS = {"BiasGelu", "Gelu", "FastGelu"}
_NORMS = {"LayerNormalization", "EmbedLayerNormalization"}


def calibration_prompts() -> list[str]:
    import yaml

    return [str(p) for p in yaml.safe_load(CALIBRATION.read_text(encoding="utf-8"))["prompts"]]


def calibration_batches(tokenizer, pad_id: int, max_length: int = 128, batch: int = 16) -> list[dict]:
    """:func:`calibration_prompts` as padded model inputs (``tokenizer``: a ``tokenizers.Tokenizer``)."""
    seqs = [e.ids[:max_length] for e in tokenizer.encode_batch(calibration_prompts())]
    out = []
    for i in range(0, len(seqs), batch):
        part = seqs[i:i + batch]
        ids = np.full((len(part), max(map(len, part))), pad_id, np.int64)
        for k, s in enumerate(part):
            ids[k, :len(s)] = s
        out.append({"input_ids": ids, "attention_mask": (np.arange(ids.shape[1]) < np.array(
            [[len(s)] for s in part])).astype(np.int64)})
    return out


def channel_maxima(fp32: Path, names: Sequence[str], batches: Sequence[dict]) -> dict[str, np.ndarray]:
    """The largest |value| of every channel (last axis) of the tensors ``names`` over real tokens of ``batches``."""
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    model = onnx.load(str(fp32))
    del model.graph.output[:]
    model.graph.output.extend([helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.onnx"
        onnx.save(model, str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out: dict[str, np.ndarray] = {}
        for feed in batches:
            mask = feed["attention_mask"].astype(bool)
            for name, value in zip(names, sess.run(list(names), feed)):
                # [batch, tokens, channels]; the last layer may hold the first token only
                m = np.abs(value[mask[:, :value.shape[1]]] if value.ndim == 3
                           else value.reshape(-1, value.shape[-1])).max(0)
                out[name] = m if name not in out else np.maximum(out[name], m)
    return out


class _Rewriter:
    """Builds the rewritten node list of ``model`` (``self.nodes``); ``maxima`` must be set before rewriting."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.graph, self.maxima = model.graph, {}
        self.inits = {i.name: i for i in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.nodes: list = []
        self.to_array, self.from_array = numpy_helper.to_array, numpy_helper.from_array
        self.const("rq_127", np.float32(127.0))
        self.const("rq_255", np.float32(255.0))
        self.const("rq_shift", np.float32(GELU_SHIFT))
        self.const("rq_zp128", np.uint8(128))
        self.const("rq_axis1", np.array([1], np.int64))

    def const(self, name: str, value) -> str:
        self.graph.initializer.append(self.from_array(np.asarray(value), name))
        return name

    def replace_init(self, name: str, value: np.ndarray) -> None:
        self.inits[name].CopyFrom(self.from_array(value.astype(np.float32), name))

    def targets(self) -> list[str]:
        """Activations whose channel maxima the rewrite needs: inputs of the fused attentions and of the dense
        layers that follow a normalization."""
        out = set()
        for n in self.graph.node:
            src = self.producer.get(n.input[0]) if n.input else None
            if n.op_type == "Attention" or (n.op_type == "MatMul" and src is not None and src.op_type in _NORMS):
                out.add(n.input[0])
        return sorted(out)

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        from onnx import helper

        domain = attrs.pop("domain", "")
        self.nodes.append(helper.make_node(op, inputs, outputs, domain=domain, **attrs))

    def weight(self, node) -> np.ndarray | None:
        init = self.inits.get(node.input[1]) if len(node.input) > 1 else None
        w = self.to_array(init) if init is not None else None
        return w.astype(np.float32) if w is not None and w.ndim == 2 else None

    def smooth(self, x: str, w: np.ndarray, p: str) -> tuple[str, np.ndarray]:
        a = np.maximum(self.maxima[x], 1e-5)
        c = (a ** ALPHA / np.maximum(np.abs(w).max(1), 1e-5) ** (1 - ALPHA)).astype(np.float32)
        self.node("Mul", [x, self.const(p + "_smooth", (1 / c).astype(np.float32))], [p + "_xsm"])
        return p + "_xsm", w * c[:, None]

    def int8_matmul(self, x: str, w: np.ndarray, y: str, p: str, shifted: bool) -> None:
        """``y = x @ w`` with ``x`` quantized per row at run time and ``w`` per column (symmetric int8)."""
        from onnx import TensorProto

        ws = np.maximum(np.abs(w).max(0), 1e-12) / 127.0
        wq = np.clip(np.round(w / ws), -127, 127).astype(np.int8)
        self.const(p + "_wq", wq)
        self.const(p + "_ws", ws.astype(np.float32))
        self.const(p + "_cols", np.array([w.shape[1]], np.int64))
        # rows = every dimension but the last: [tokens, K], one scale per row (QuantizeLinear along axis 0)
        self.node("Flatten", [x], [p + "_x2"], axis=-1)
        if shifted:  # x + 0.17 >= 0: unsigned, zero point 0
            self.node("Add", [p + "_x2", "rq_shift"], [p + "_xp"])
            self.node("ReduceMax", [p + "_xp"], [p + "_amax"], axes=[1], keepdims=0)
            self.node("Div", [p + "_amax", "rq_255"], [p + "_s"])
            self.node("QuantizeLinear", [p + "_xp", p + "_s"], [p + "_xq"], axis=0)
            self.node("MatMulInteger", [p + "_xq", p + "_wq"], [p + "_yi"])
        else:  # symmetric: zero point 128
            self.node("Abs", [p + "_x2"], [p + "_abs"])
            self.node("ReduceMax", [p + "_abs"], [p + "_amax"], axes=[1], keepdims=0)
            self.node("Div", [p + "_amax", "rq_127"], [p + "_s"])
            self.node("Shape", [p + "_s"], [p + "_n"])
            self.node("ConstantOfShape", [p + "_n"], [p + "_zp"], value=self.from_array(np.array([128], np.uint8)))
            self.node("QuantizeLinear", [p + "_x2", p + "_s", p + "_zp"], [p + "_xq"], axis=0)
            self.node("MatMulInteger", [p + "_xq", p + "_wq", "rq_zp128"], [p + "_yi"])
        self.node("Cast", [p + "_yi"], [p + "_yf"], to=TensorProto.FLOAT)
        self.node("Unsqueeze", [p + "_s", "rq_axis1"], [p + "_s1"])
        self.node("Mul", [p + "_s1", p + "_ws"], [p + "_scale"])
        self.node("Mul", [p + "_yf", p + "_scale"], [p + "_y2"])
        self.node("Shape", [x], [p + "_lead"], end=-1)
        self.node("Concat", [p + "_lead", p + "_cols"], [p + "_yshape"], axis=0)
        self.node("Reshape", [p + "_y2", p + "_yshape"], [y])

    def attention(self, node) -> bool:
        """Smooth the input channels of a fused ``Attention`` (its QKV weight rescaled in place); the attention is
        then quantized by ``quantize_dynamic`` (``QAttention``). False when it has no constant 2-D weight."""
        w = self.weight(node)
        if w is None:
            return False
        x, w = self.smooth(node.input[0], w, node.name or node.output[0])
        self.replace_init(node.input[1], w)
        node.input[0] = x
        return True

    def residual_bias(self, y: str) -> str | None:
        """The constant bias added to the residual that ``y`` joins: ``y + (skip + bias)``, the form of
        :func:`crestguard.guard.onnx.graph_passes.split_skip_layernorm`."""
        after = self.consumers.get(y, [])
        if len(after) != 1 or after[0].op_type != "Add":
            return None
        other = self.producer.get(next((i for i in after[0].input if i != y), ""))
        if other is None or other.op_type != "Add":
            return None
        return next((i for i in other.input if i in self.inits), None)

    def dense(self, node) -> str | None:
        """A MatMul after a GELU (shifted) or after a LayerNorm (smoothed): the kind rewritten, ``None`` for any
        other MatMul."""
        w = self.weight(node)
        src = self.producer.get(node.input[0])
        if w is None or src is None:
            return None
        p = (node.name or node.output[0]).replace("/", "_")
        if src.op_type in _GELUS:
            bias = self.residual_bias(node.output[0])
            if bias is None:
                return None
            self.replace_init(bias, self.to_array(self.inits[bias]) - GELU_SHIFT * w.sum(0))
            self.int8_matmul(node.input[0], w, node.output[0], p, shifted=True)
            return "dense_gelu_shifted"
        if src.op_type in _NORMS:
            x, w = self.smooth(node.input[0], w, p)
            self.int8_matmul(x, w, node.output[0], p, shifted=False)
            return "dense_rows"
        return None


def quantize_rows(fp32: Path, dst: Path, batches: Sequence[dict]) -> dict[str, int]:
    """Write the int8 graph of the fused fp32 graph ``fp32`` to ``dst`` (see the module docstring); ``batches``
    are model inputs (``input_ids``, ``attention_mask``) that set the smoothing. Returns the counts of rewritten
    operators."""
    import onnx
    from onnx import helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    rw = _Rewriter(model)
    rw.maxima = channel_maxima(fp32, rw.targets(), batches)
    counts = {"attention_smoothed": 0, "dense_rows": 0, "dense_gelu_shifted": 0}
    dynamic = []
    for node in list(model.graph.node):
        if node.op_type == "Attention" and rw.attention(node):
            counts["attention_smoothed"] += 1
        elif node.op_type == "MatMul" and (kind := rw.dense(node)):
            counts[kind] += 1
            continue
        if node.op_type in _DYNAMIC_OPS and (node.op_type != "Gather" or node.input[0] in rw.inits):
            dynamic.append(node.name)
        rw.nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(rw.nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    staged = dst.with_suffix(".rows.onnx")
    onnx.save(model, str(staged))
    try:
        quantize_dynamic(str(staged), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_quantize=dynamic, op_types_to_quantize=sorted(_DYNAMIC_OPS),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        staged.unlink(missing_ok=True)
    counts["dynamic"] = len(dynamic)
    return counts
