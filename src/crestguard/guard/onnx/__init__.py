"""The guard's ONNX graphs: how they are built, rewritten, quantized and checked (the runtime that serves them is
:class:`crestguard.guard.backends.OnnxBackend`).

- :mod:`~crestguard.guard.onnx.export`: ``export_onnx(model_dir)`` builds fp32 + int8 graphs into the cache, keyed
  by the model's hash;
- :mod:`~crestguard.guard.onnx.build`: the fused graph of a model on the offline backbone from its weights with onnx
  and numpy (no torch); other models go through ``torch.onnx.export``;
- :mod:`~crestguard.guard.onnx.graph_passes`: exact rewrites that make onnxruntime faster;
- :mod:`~crestguard.guard.onnx.int8_rows`: the int8 recipe (one activation scale per token);
- :mod:`~crestguard.guard.onnx.parity`: do two guards give the same labels on the evaluation suite?

Nothing here imports torch at module level, nor anything of the guard above this package.
"""
