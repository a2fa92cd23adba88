"""int8 recipes for the exported graph: label parity against fp32 and speed, measured in one run.

    .venv/bin/python benchmarks/int8_recipes.py [--model crest-me5s] [--per-set 60] [--threads 2]

Starts from the fused fp32 graph of ``crestguard export onnx`` (exported first if the cache lacks it) and builds:

- ``rows`` (what ``crestguard export onnx`` ships): one activation scale per token, smoothed channels, shifted GELU
  outputs (:mod:`crestguard.guard.onnx.int8_rows`);
- ``nbits128`` (shipped before ``rows``): every dense layer as ``MatMulNBits``, 8-bit weights in blocks of 128 along
  K, activations quantized per block at run time; attention and embeddings by ``quantize_dynamic`` (``nbits32``:
  blocks of 32);
- ``dynamic``: plain ``onnxruntime.quantization.quantize_dynamic`` (per-channel int8 weights, one activation scale
  per tensor, computed at run time) on every op it supports;
- ``dynamic_fp32_down``: the same, but the 12 FFN down-projections left in fp32 (they carry BERT's activation
  outliers).

For each: the share of texts that get the same label as fp32 (decision at margin 0, i.e. threshold 0.5) on
``--per-set`` texts of every set of the default evaluation suite (truncated to 256 tokens: the model's window),
the mean |Δscore|, throughput on batches of 64 real ~64-token prompts (best of 3 passes), and single-request
p50/p90 with onnxruntime's idle threads sleeping (the guard's default) and p50 spinning; the graphs are timed in 3
interleaved rounds. Only the graph is timed here (no
tokenizer, language ID or verdict); ``benchmarks/guard_bench.py`` times the whole guard path.

Writes benchmarks/results/int8_recipes.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOWN = "/bert/encoder/layer.{}/output/dense/MatMul"


def weights_to_int8_blocks(src: Path, dst: Path, block: int) -> int:
    """Replace every MatMul with a constant 2-D weight by ``MatMulNBits`` (8-bit, symmetric, blocks of ``block``
    along K, ``accuracy_level=4``: int8 compute with activations quantized per block at run time). Returns the
    number of MatMuls replaced. The packing is onnxruntime's own (the kernel its weight-only quantizer uses)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.capi._pybind_state import quantize_matmul_8bits

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    nodes, replaced = [], 0
    for node in model.graph.node:
        init = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        weight = numpy_helper.to_array(init).astype(np.float32) if init is not None else None
        if weight is None or weight.ndim != 2:
            nodes.append(node)
            continue
        k, n = weight.shape
        blocks = -(-k // block)
        weight = np.ascontiguousarray(np.pad(weight, ((0, blocks * block - k), (0, 0))))
        packed = np.zeros((n, blocks, block), dtype=np.uint8)
        scales = np.zeros((n, blocks), dtype=np.float32)
        quantize_matmul_8bits(packed, weight, scales, np.zeros((n, blocks), dtype=np.uint8), block, n, blocks * block,
                              True)
        model.graph.initializer.remove(init)
        model.graph.initializer.extend([numpy_helper.from_array(packed, init.name + "_q8"),
                                        numpy_helper.from_array(scales, init.name + "_scales")])
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], init.name + "_q8", init.name + "_scales"],
                                      list(node.output), name=node.name + "_q8", domain="com.microsoft", K=k, N=n,
                                      bits=8, block_size=block, accuracy_level=4))
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return replaced


def quantize_blocks(src: Path, dst: Path, block: int) -> int:
    """int8: dense-layer weights in blocks of ``block`` (:func:`weights_to_int8_blocks`), then the fused attention
    and the embedding table by ``quantize_dynamic`` (per channel). Returns the number of dense layers quantized."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    blocks = dst.with_suffix(".blocks.onnx")
    replaced = weights_to_int8_blocks(src, blocks, block)
    quantize_dynamic(str(blocks), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["Attention", "EmbedLayerNormalization", "Gather"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    blocks.unlink()
    return replaced


def build(recipe: str, fp32: Path, out: Path, tok, pad: int) -> Path:
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    from crestguard.guard.onnx.int8_rows import calibration_batches, quantize_rows

    path = out / f"{recipe}.onnx"
    if recipe == "rows":
        quantize_rows(fp32, path, calibration_batches(tok, pad))  # what crestguard export onnx ships
    elif recipe.startswith("nbits"):
        quantize_blocks(fp32, path, block=int(recipe[5:]))
    else:
        exclude = [DOWN.format(i) for i in range(12)] if recipe == "dynamic_fp32_down" else []
        quantize_dynamic(str(fp32), str(path), per_channel=True, nodes_to_exclude=exclude,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def session(path: Path, threads: int, spin: bool):
    """The guard's own onnxruntime session settings (:class:`crestguard.guard.backends.OnnxBackend`)."""
    from crestguard.guard.backends import OnnxBackend

    return OnnxBackend(path, threads=threads, spin=spin, rows=False).session


def feed(seqs: list[list[int]], pad: int) -> dict:
    longest = max(map(len, seqs))
    ids = np.full((len(seqs), longest), pad, np.int64)
    mask = np.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def margins(sess, seqs: list[list[int]], pad: int) -> np.ndarray:
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k]))
    out = np.zeros(len(seqs))
    for i in range(0, len(order), 32):
        idx = order[i : i + 32]
        logits = sess.run(["logits"], feed([seqs[k] for k in idx], pad))[0]
        out[idx] = logits[:, 1] - logits[:, 0]
    return out


def speed(paths: dict[str, Path], prompts: list[list[int]], pad: int, threads: int, rounds: int = 3) -> dict:
    """Throughput (best batch-64 pass) and single-request latency of every graph, measured in ``rounds`` rounds
    that interleave the graphs, so that a slow spell of the machine hits all of them alike."""
    sleep = {k: session(p, threads, spin=False) for k, p in paths.items()}
    spin = {k: session(p, threads, spin=True) for k, p in paths.items()}
    best = dict.fromkeys(paths, 0.0)
    lat: dict[tuple[str, bool], list[float]] = {(k, s): [] for k in paths for s in (False, True)}
    for _ in range(rounds):
        for k in paths:
            sess = sleep[k]
            sess.run(["logits"], feed(prompts[:64], pad))
            t = time.perf_counter()
            for i in range(0, len(prompts), 64):
                sess.run(["logits"], feed(prompts[i : i + 64], pad))
            best[k] = max(best[k], len(prompts) / (time.perf_counter() - t))
            for spinning, s in ((False, sess), (True, spin[k])):
                for p in prompts[:5]:
                    s.run(["logits"], feed([p], pad))
                for p in prompts[:100]:
                    t = time.perf_counter()
                    s.run(["logits"], feed([p], pad))
                    lat[k, spinning].append((time.perf_counter() - t) * 1000)
    return {k: {"b64_per_s": round(best[k], 1), "p50_ms": round(float(np.median(lat[k, False])), 2),
                "p90_ms": round(float(np.quantile(lat[k, False], 0.9)), 2),
                "p50_spin_ms": round(float(np.median(lat[k, True])), 2)} for k in paths}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--per-set", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipes", default="rows,nbits128,dynamic,dynamic_fp32_down")
    ap.add_argument("--out", type=Path, default=RESULTS / "int8_recipes")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from guard_bench import prompts as bench_prompts
    from tokenizers import Tokenizer

    from crestguard.guard.onnx import export as onnx_export
    from crestguard.guard.guard import resolve_model_dir
    from crestguard.guard.onnx.parity import suite_sample
    from crestguard.guard.thresholds import sigmoid

    folder = onnx_export.export_onnx(resolve_model_dir(args.model))
    fp32 = folder / onnx_export.FILES["fp32"]
    pad = json.loads((folder / onnx_export.META_NAME).read_text())["pad_id"]
    tok = Tokenizer.from_file(str(folder / onnx_export.TOKENIZER_NAME))
    texts = [t for _, t in suite_sample(args.per_set)]
    seqs = [e.ids[:256] for e in tok.encode_batch(texts)]
    prompts = [e.ids for e in tok.encode_batch(bench_prompts(tok, 128))]
    ref = margins(session(fp32, args.threads, False), seqs, pad)
    rows = {"fp32": {"label_agreement": 1.0, "abs_delta_mean": 0.0}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"fp32": fp32}
        for recipe in args.recipes.split(","):
            paths[recipe] = path = build(recipe, fp32, Path(tmp), tok, pad)
            m = margins(session(path, args.threads, False), seqs, pad)
            rows[recipe] = {"label_agreement": round(float(((m >= 0) == (ref >= 0)).mean()), 4),
                            "abs_delta_mean": round(float(np.abs(sigmoid(m) - sigmoid(ref)).mean()), 4),
                            "bytes": path.stat().st_size}
            print(recipe, rows[recipe], flush=True)
        for recipe, timing in speed(paths, prompts, pad, args.threads).items():
            rows[recipe].update(timing)
            print(recipe, timing, flush=True)
    result = {"model": args.model, "texts": len(texts), "per_set": args.per_set, "threads": args.threads,
              "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads", "recipes": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["# int8 recipes: parity with fp32 and speed of the graph alone", "",
             f"`python benchmarks/int8_recipes.py --model {args.model} --per-set {args.per_set} --threads "
             f"{args.threads}`", "",
             f"{len(texts)} texts of the default suite ({args.per_set} per set), labels at threshold 0.5 against the "
             "fp32 graph; throughput on batches of 64 prompts of ~64 tokens (best of 3 passes); single requests (300 "
             "per graph); the graphs are timed in 3 interleaved rounds.", "",
             "| recipe | same label | mean abs Δscore | texts/s (b64) | p50 ms | p90 ms | p50 ms, spinning threads "
             "| MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        mb = f"{r['bytes'] / 2**20:.0f}" if "bytes" in r else ""
        lines.append(f"| {name} | {100 * r['label_agreement']:.2f}% | {r['abs_delta_mean']:.4f} | {r['b64_per_s']} | "
                     f"{r['p50_ms']} | {r['p90_ms']} | {r['p50_spin_ms']} | {mb} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
