"""Alias of :mod:`crestguard.guard.onnx.graph_passes` (moved there)."""
import sys

from crestguard.guard.onnx import graph_passes

sys.modules[__name__] = graph_passes
