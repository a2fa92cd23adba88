"""Exact rewrites of the fused fp32 encoder graph that make onnxruntime's CPU session faster (applied by
:func:`crestguard.guard.onnx.export.export_onnx` before int8 quantization; the logits do not change beyond float
rounding, which ``tests/test_onnx.py`` checks against torch):

- :func:`split_skip_layernorm`: onnxruntime's fused ``SkipLayerNormalization`` kernel is slower than what it fuses;
- :func:`first_token_only_after_last_attention`: the classifier reads the first token of the last layer, so the
  rest of that layer runs on that token alone;
- :func:`pack_tokens`: between two attentions, every operator acts on each token alone, so the padding of a batch
  is dropped there and the dense layers, GELUs and LayerNorms run on the real tokens only.

``benchmarks/graph_passes.py`` measures them one at a time.
"""

from __future__ import annotations

import numpy as np

#: Operators that act on each token alone (what may lie between two attentions, or after the last).
_PER_TOKEN = {"MatMul", "Add", "LayerNormalization", "BiasGelu", "Gelu", "FastGelu", "Mul"}


def apply_all(model, passes: tuple[str, ...] | None = None) -> dict[str, int]:
    """The passes of :data:`PASSES` named in ``passes`` (default: all), in that order, on the ONNX ``model`` (in
    place); returns what each changed."""
    return {name: int(PASSES[name](model)) for name in PASSES if passes is None or name in passes}


def split_skip_layernorm(model) -> int:
    """Replace every ``SkipLayerNormalization`` of the ONNX ``model`` (in place) by
    ``LayerNormalization(input + (skip + bias))``; returns how many. onnxruntime's CPU kernel for the fused operator
    is slower than the two it replaces: splitting made the int8 graph 1.16-1.21× faster
    (``benchmarks/results/graph_passes.md``); sessions keep it split with
    :data:`crestguard.guard.onnx.export.DISABLED_OPTIMIZERS`. The bias is added to the skip input first, so no ``Add``
    of a constant follows a dense layer (onnxruntime would fuse one into the per-row int8
    layer's rescaling as if it had one scale per tensor; see :mod:`crestguard.guard.onnx.int8_rows`)."""
    from onnx import helper

    nodes, count = [], 0
    for n in model.graph.node:
        if n.op_type != "SkipLayerNormalization":
            nodes.append(n)
            continue
        x, skip, gamma, beta, bias = (list(n.input) + [""] * 5)[:5]
        out, _mean, _inv_std, total = (list(n.output) + [""] * 4)[:4]
        eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-12)
        name = n.name or out
        if bias:
            nodes.append(helper.make_node("Add", [skip, bias], [name + "_skip_bias"], name=name + "_skip_bias"))
            skip = name + "_skip_bias"
        total = total or name + "_sum"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=name + "_sum"))
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []), [out],
                                      name=name + "_norm", axis=-1, epsilon=eps))
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def first_token_only_after_last_attention(model) -> bool:
    """When the classifier reads only the first token of the last layer (BERT's pooler: ``Gather(axis=1, 0)``),
    compute the rest of the last layer for that token alone: the output projection, residual, LayerNorms and FFN of
    the last layer then run on 1 row per text instead of every token (a twelfth of a 12-layer encoder's dense work
    less for 64-token prompts); the attention still reads every token. Exact: the logits are unchanged. Returns
    whether the graph was rewritten (False for mean pooling or an unexpected graph, which is left as it is)."""
    from onnx import helper, numpy_helper

    nodes = list(model.graph.node)
    inits = {i.name: i for i in model.graph.initializer}
    attn = [k for k, n in enumerate(nodes) if n.op_type == "Attention"]

    def first_of_axis_1(n) -> bool:  # Gather(x, 0, axis=1): x[:, 0]
        index = numpy_helper.to_array(inits[n.input[1]]) if n.input[1] in inits else None
        return index is not None and index.shape == () and int(index) == 0 \
            and next((a.i for a in n.attribute if a.name == "axis"), 0) == 1

    pool = [k for k, n in enumerate(nodes) if n.op_type == "Gather" and first_of_axis_1(n)]
    if not attn or len(pool) != 1 or pool[0] < attn[-1]:
        return False
    last = nodes[attn[-1]]
    between = nodes[attn[-1] + 1:pool[0]]
    if any(n.op_type not in _PER_TOKEN for n in between):
        return False
    hidden, out = last.input[0], last.output[0]
    readers = [n for n in between if hidden in n.input]  # the residual connection
    made = {o for n in between for o in n.output}
    if not all(n.op_type == "Add" for n in readers) or any(o.name in made for o in model.graph.output) \
            or any(t in made | {hidden, out} for n in nodes[pool[0] + 1:] for t in n.input):
        return False
    model.graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "first_token_index"))
    for name in (hidden, out):
        for n in between:
            for k, i in enumerate(n.input):
                if i == name:
                    n.input[k] = name + "_first_token"
        nodes.insert(attn[-1] + 1, helper.make_node("Gather", [name, "first_token_index"], [name + "_first_token"],
                                                    name=name + "_first_token", axis=1))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return True


def pack_tokens(model, mask_input: str = "attention_mask") -> int:
    """Run the work between two attentions on the real tokens only; returns the number of layers rewritten.

    A batch is padded to its longest text, and an encoder spends most of its time in the output projection, FFN
    and LayerNorms after each attention, which act on each token alone. So the attention's output and the layer's
    input are gathered to ``[real tokens, hidden]`` (indices from ``NonZero`` of the attention mask), the layer
    runs on those rows, and its output is scattered back into a zero-padded ``[batch, length, hidden]`` for the
    next attention, which masks the padding anyway. Exact: no real token reads a padded one. Left as it is (0) when
    the graph has an operator between attentions that is not per token, or no ``mask_input``.
    """
    from onnx import helper, numpy_helper

    nodes = list(model.graph.node)
    attn = [k for k, n in enumerate(nodes) if n.op_type == "Attention"]
    if len(attn) < 2 or mask_input not in {i.name for i in model.graph.input}:
        return 0
    inits = {i.name for i in model.graph.initializer}
    hidden = nodes[attn[0]].input[0]
    segments = []
    for a, b in zip(attn, attn[1:]):
        seg = nodes[a + 1:b]
        made = {o for n in seg for o in n.output}
        ins = {i for n in seg for i in n.input if i and i not in made and i not in inits}
        if any(n.op_type not in _PER_TOKEN for n in seg) or ins - {nodes[a].input[0], nodes[a].output[0]} \
                or nodes[b].input[0] not in made:
            return 0
        segments.append((nodes[a], seg, nodes[b].input[0]))
    later = {i for n in nodes[attn[-1]:] for i in n.input}
    for _, seg, out in segments:  # a segment's tensors other than its output are its own
        if ({o for n in seg for o in n.output} - {out}) & later:
            return 0

    dim = next((i.dims[0] for i in model.graph.initializer if i.name == nodes[attn[0]].input[1]), None)
    if dim is None:  # the QKV weight [hidden, 3 * hidden]
        return 0
    model.graph.initializer.extend([numpy_helper.from_array(np.array([-1], np.int64), "pack_flat"),
                                    numpy_helper.from_array(np.array([-1, 1], np.int64), "pack_column"),
                                    numpy_helper.from_array(np.array([-1, dim], np.int64), "pack_rows")])
    node = helper.make_node
    prelude = [
        node("Reshape", [mask_input, "pack_flat"], ["pack_mask"], name="pack_mask"),
        node("NonZero", ["pack_mask"], ["pack_nonzero"], name="pack_nonzero"),
        node("Reshape", ["pack_nonzero", "pack_flat"], ["pack_index"], name="pack_index"),
        node("Reshape", ["pack_nonzero", "pack_column"], ["pack_index_column"], name="pack_index_column"),
        node("Shape", [hidden], ["pack_padded_shape"], name="pack_padded_shape"),
        node("Reshape", [hidden, "pack_rows"], ["pack_hidden_rows"], name="pack_hidden_rows"),
        node("Shape", ["pack_hidden_rows"], ["pack_rows_shape"], name="pack_rows_shape"),
        node("ConstantOfShape", ["pack_rows_shape"], ["pack_zeros"], name="pack_zeros",
             value=numpy_helper.from_array(np.zeros(1, np.float32))),
        node("Gather", ["pack_hidden_rows", "pack_index"], [hidden + "_packed"], name=hidden + "_packed", axis=0),
    ]

    def gather(src: str) -> list:
        return [node("Reshape", [src, "pack_rows"], [src + "_rows"], name=src + "_rows"),
                node("Gather", [src + "_rows", "pack_index"], [src + "_packed"], name=src + "_packed", axis=0)]

    out_nodes = nodes[:attn[0]] + prelude
    for k, (att, seg, out) in enumerate(segments):
        x, y = att.input[0], att.output[0]
        out_nodes += [att, *gather(y)]
        for n in seg:
            for j, i in enumerate(n.input):
                if i in (x, y):
                    n.input[j] = i + "_packed"
            for j, o in enumerate(n.output):
                if o == out:
                    n.output[j] = out + "_packed"
        out_nodes += seg
        out_nodes += [node("ScatterND", ["pack_zeros", "pack_index_column", out + "_packed"], [out + "_rows"],
                           name=out + "_scatter"),
                      node("Reshape", [out + "_rows", "pack_padded_shape"], [out], name=out + "_padded")]
    out_nodes += nodes[attn[-1]:]
    del model.graph.node[:]
    model.graph.node.extend(out_nodes)
    del model.graph.value_info[:]  # shapes inferred for the padded tensors no longer hold
    return len(segments)


#: The passes in the order they are applied (``int8_rows`` needs the split form; ``pack_tokens`` keeps the last
#: layer to ``first_token_only_after_last_attention``).
PASSES = {"SkipLayerNormalization split": split_skip_layernorm,
          "last layer on the first token": first_token_only_after_last_attention,
          "layers on real tokens only": pack_tokens}
