"""int8 recipes for the exported graph: label parity against fp32 and speed, measured in one run.

    .venv/bin/python benchmarks/int8_recipes.py [--model crest-me5s] [--per-set 60] [--threads 2]

Starts from the fused fp32 graph of ``crestguard export onnx`` (exported first if the cache lacks it) and builds:

- ``nbits32``: every dense layer as ``MatMulNBits``, 8-bit weights in blocks of 32 along K, activations quantized
  per block at run time; attention and embeddings by ``quantize_dynamic``;
- ``nbits128`` (what ``crestguard export onnx`` ships since this measurement): the same with blocks of 128;
- ``dynamic``: plain ``onnxruntime.quantization.quantize_dynamic`` (per-channel int8 weights, one activation scale
  per tensor, computed at run time) on every op it supports;
- ``dynamic_fp32_down``: the same, but the 12 FFN down-projections left in fp32 (they carry BERT's activation
  outliers).

For each: the share of texts that get the same label as fp32 (decision at margin 0, i.e. threshold 0.5) on
``--per-set`` texts of every set of the default evaluation suite (truncated to 256 tokens: the model's window),
the mean |Δscore|, throughput on batches of 64 real ~64-token prompts (best of 4 passes), and single-request p50
with onnxruntime's idle threads sleeping (the guard's default) and spinning. Only the graph is timed here (no
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


def build(recipe: str, fp32: Path, out: Path) -> Path:
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    from crestguard.guard import onnx_export as ox

    path = out / f"{recipe}.onnx"
    if recipe.startswith("nbits"):
        ox._quantize(fp32, path, block=int(recipe[5:]))  # the export's own recipe, at this block size
    else:
        exclude = [DOWN.format(i) for i in range(12)] if recipe == "dynamic_fp32_down" else []
        quantize_dynamic(str(fp32), str(path), per_channel=True, nodes_to_exclude=exclude,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def session(path: Path, threads: int, spin: bool):
    """The guard's own onnxruntime session settings (:class:`crestguard.guard.backends.OnnxBackend`)."""
    from crestguard.guard.backends import OnnxBackend

    return OnnxBackend(path, threads=threads, spin=spin).session


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


def speed(path: Path, prompts: list[list[int]], pad: int, threads: int) -> dict:
    res = {}
    sess = session(path, threads, spin=False)
    sess.run(["logits"], feed(prompts[:64], pad))
    best = 0.0
    for _ in range(4):
        t = time.perf_counter()
        for i in range(0, len(prompts), 64):
            sess.run(["logits"], feed(prompts[i : i + 64], pad))
        best = max(best, len(prompts) / (time.perf_counter() - t))
    res["b64_per_s"] = round(best, 1)
    for spin in (False, True):
        s = session(path, threads, spin) if spin else sess
        lat = []
        for p in prompts[:5] + prompts[:100]:
            t = time.perf_counter()
            s.run(["logits"], feed([p], pad))
            lat.append((time.perf_counter() - t) * 1000)
        res["p50_spin_ms" if spin else "p50_ms"] = round(float(np.median(lat[5:])), 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--per-set", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipes", default="nbits32,nbits128,dynamic,dynamic_fp32_down")
    ap.add_argument("--out", type=Path, default=RESULTS / "int8_recipes")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from guard_bench import prompts as bench_prompts
    from tokenizers import Tokenizer

    from crestguard.guard import onnx_export
    from crestguard.guard.guard import resolve_model_dir
    from crestguard.guard.parity import suite_sample
    from crestguard.guard.thresholds import sigmoid

    folder = onnx_export.export_onnx(resolve_model_dir(args.model))
    fp32 = folder / onnx_export.FILES["fp32"]
    pad = json.loads((folder / onnx_export.META_NAME).read_text())["pad_id"]
    tok = Tokenizer.from_file(str(folder / onnx_export.TOKENIZER_NAME))
    texts = [t for _, t in suite_sample(args.per_set)]
    seqs = [e.ids[:256] for e in tok.encode_batch(texts)]
    prompts = [e.ids for e in tok.encode_batch(bench_prompts(tok, 128))]
    ref = margins(session(fp32, args.threads, False), seqs, pad)
    rows = {"fp32": {"label_agreement": 1.0, "abs_delta_mean": 0.0, **speed(fp32, prompts, pad, args.threads)}}
    print("fp32", rows["fp32"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes.split(","):
            path = build(recipe, fp32, Path(tmp))
            m = margins(session(path, args.threads, False), seqs, pad)
            rows[recipe] = {"label_agreement": round(float(((m >= 0) == (ref >= 0)).mean()), 4),
                            "abs_delta_mean": round(float(np.abs(sigmoid(m) - sigmoid(ref)).mean()), 4),
                            "bytes": path.stat().st_size, **speed(path, prompts, pad, args.threads)}
            print(recipe, rows[recipe], flush=True)
    result = {"model": args.model, "texts": len(texts), "per_set": args.per_set, "threads": args.threads,
              "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads", "recipes": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["# int8 recipes: parity with fp32 and speed of the graph alone", "",
             f"`python benchmarks/int8_recipes.py --model {args.model} --per-set {args.per_set} --threads "
             f"{args.threads}`", "",
             f"{len(texts)} texts of the default suite ({args.per_set} per set), labels at threshold 0.5 against the "
             "fp32 graph; throughput on batches of 64 prompts of ~64 tokens; p50 of single requests.", "",
             "| recipe | same label | mean abs Δscore | texts/s (b64) | p50 ms | p50 ms, spinning threads | MB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        mb = f"{r['bytes'] / 2**20:.0f}" if "bytes" in r else ""
        lines.append(f"| {name} | {100 * r['label_agreement']:.2f}% | {r['abs_delta_mean']:.4f} | {r['b64_per_s']} | "
                     f"{r['p50_ms']} | {r['p50_spin_ms']} | {mb} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
