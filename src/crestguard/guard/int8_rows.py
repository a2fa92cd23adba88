"""Alias of :mod:`crestguard.guard.onnx.int8_rows` (moved there)."""
import sys

from crestguard.guard.onnx import int8_rows

sys.modules[__name__] = int8_rows
