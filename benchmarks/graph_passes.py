"""The exact graph rewrites of the ONNX export, added one at a time: speed of the int8 graph and fp32 logits.

    .venv/bin/python benchmarks/graph_passes.py [--model crest-me5s] [--threads 2] [--rounds 5]

Exports the model once (torch.onnx + onnxruntime's transformer optimizer), then builds the int8 graph
(:mod:`crestguard.guard.onnx.int8_rows`) after the passes of :mod:`crestguard.guard.onnx.graph_passes`, added one at a time:

- ``fused norm`` (the export before these passes): the split normalizations of the next graph fused back into
  onnxruntime's ``SkipLayerNormalization`` (by :func:`fuse_norms`, as its transformer optimizer had fused them);
- ``split``: ``Add`` + ``LayerNormalization``;
- ``+ first token``: the last layer after its attention on the first token alone;
- ``+ packed`` (what ``crestguard export onnx`` ships): the padding dropped between attentions.

Timed (graph alone, the guard's session settings): batches of 16 prompts of ~64 tokens (``guard_bench.prompts``),
each batch sorted by length as ``check_batch`` sorts it, and batches of 32 prompts of 40-200 tokens
(``server_load.load_texts``, the server's micro-batches: more padding); texts/s, best of ``--rounds`` rounds that
interleave the graphs, after one untimed pass of every graph over every batch. Exactness: the largest |Δlogit|
of each fp32 graph against the first, on the padded batches.

Writes benchmarks/results/graph_passes.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STEPS = {  # name: (passes, fuse the normalizations back)
    "fused norm": (("SkipLayerNormalization split",), True),
    "split": (("SkipLayerNormalization split",), False),
    "+ first token": (("SkipLayerNormalization split", "last layer on the first token"), False),
    "+ packed": (None, False),
}


def fuse_norms(src: Path, dst: Path) -> int:
    """Undo ``split_skip_layernorm``: ``LayerNormalization(x + (skip + bias))`` back into one
    ``SkipLayerNormalization`` (com.microsoft) node. Returns how many."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    nodes = list(model.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    inits = {i.name for i in model.graph.initializer}
    gone, fused = set(), {}
    for n in nodes:
        total = producer.get(n.input[0]) if n.op_type == "LayerNormalization" else None
        skip_bias = producer.get(total.input[1]) if total is not None and total.op_type == "Add" else None
        if skip_bias is None or skip_bias.op_type != "Add" or skip_bias.input[1] not in inits:
            continue
        eps = next(a.f for a in n.attribute if a.name == "epsilon")
        fused[id(n)] = helper.make_node(
            "SkipLayerNormalization", [total.input[0], skip_bias.input[0], n.input[1], n.input[2], skip_bias.input[1]],
            [n.output[0]], name=n.name + "_fused", domain="com.microsoft", epsilon=eps)
        gone |= {id(total), id(skip_bias)}
    del model.graph.node[:]
    model.graph.node.extend(fused.get(id(n), n) for n in nodes if id(n) not in gone)
    onnx.save(model, str(dst))
    return len(fused)


def sorted_batches(seqs: list[list[int]], size: int, pad: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from int8_recipes import feed

    return [feed(sorted(seqs[i:i + size], key=len), pad) for i in range(0, len(seqs), size)]


def session(path: Path, threads: int):
    """The guard's own session (:class:`crestguard.guard.backends.OnnxBackend`)."""
    from crestguard.guard.backends import OnnxBackend

    return OnnxBackend(path, threads=threads, rows=False).session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="crest-me5s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "graph_passes")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from guard_bench import prompts
    from server_load import load_texts

    from crestguard.guard.guard import quiet_transformers, resolve_model_dir
    from crestguard.guard.onnx.int8_rows import calibration_batches, quantize_rows
    from crestguard.guard.onnx.export import _export_graph, _optimize
    from crestguard.modeling import load_classifier

    with quiet_transformers():
        bundle = load_classifier(resolve_model_dir(args.model))
    tok = bundle.tokenizer.backend_tokenizer
    pad = int(bundle.tokenizer.pad_token_id)
    sets = {"16 x ~64 tokens": sorted_batches([e.ids for e in tok.encode_batch(prompts(tok, 256))], 16, pad),
            "32 x 40-200 tokens": sorted_batches([e.ids for e in tok.encode_batch(load_texts(256))], 32, pad)}
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _export_graph(bundle.model, pad, tmp / "raw.onnx")
        paths, ops = {}, {}
        for name, (passes, refuse) in STEPS.items():
            key = "-".join(passes or ("all",)).replace(" ", "_")
            fp32, int8 = tmp / f"{key}.onnx", tmp / f"{key}.int8.onnx"
            if not fp32.exists():
                ops[key] = _optimize(tmp / "raw.onnx", fp32, bundle.model.config, passes)
                quantize_rows(fp32, int8, calibration_batches(tok, pad))
            if refuse:
                fuse_norms(fp32, tmp / "fused.onnx")
                refused = fuse_norms(int8, tmp / "fused.int8.onnx")
                ops["fused"] = {**ops[key], "SkipLayerNormalization fused back": refused}
                fp32, int8, key = tmp / "fused.onnx", tmp / "fused.int8.onnx", "fused"
            paths[name] = (fp32, int8, key)
        ref = None
        for name, (fp32, _, key) in paths.items():
            sess = session(fp32, args.threads)
            logits = np.concatenate([sess.run(["logits"], f)[0] for batches in sets.values() for f in batches])
            ref = logits if ref is None else ref
            rows[name] = {"graph": ops[key], "fp32_max_abs_dlogit": float(np.abs(logits - ref).max())}
        sessions = {name: session(int8, args.threads) for name, (_, int8, _) in paths.items()}
        for sess in sessions.values():  # warm-up: every batch shape once
            for batches in sets.values():
                for f in batches:
                    sess.run(["logits"], f)
        for _ in range(args.rounds):
            for set_name, batches in sets.items():
                n = sum(len(f["input_ids"]) for f in batches)
                for name, sess in sessions.items():
                    t = time.perf_counter()
                    for f in batches:
                        sess.run(["logits"], f)
                    rate = n / (time.perf_counter() - t)
                    rows[name][set_name] = round(max(rate, rows[name].get(set_name, 0.0)), 1)
            print({k: {s: v.get(s) for s in sets} for k, v in rows.items()}, flush=True)
    base = rows["fused norm"]
    result = {"model": args.model, "threads": args.threads, "rounds": args.rounds, "steps": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Exact graph rewrites, one at a time (int8 graph alone)", "",
             f"`python benchmarks/graph_passes.py --model {args.model} --threads {args.threads} --rounds "
             f"{args.rounds}`", "",
             "Texts/s, best of the interleaved rounds; the ratio is to the first row. Max |Δlogit|: each fp32 graph "
             "against the first on the same padded batches.", "",
             "| graph | " + " | ".join(f"{s} (texts/s)" for s in sets) + " | vs first row | fp32 max abs Δlogit |",
             "|---|" + "---:|" * len(sets) + "---:|---:|"]
    for name, r in rows.items():
        ratio = " / ".join(f"{r[s] / base[s]:.2f}x" for s in sets)
        lines.append(f"| {name} | " + " | ".join(str(r[s]) for s in sets)
                     + f" | {ratio} | {r['fp32_max_abs_dlogit']:.1e} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
