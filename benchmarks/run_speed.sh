#!/usr/bin/env bash
# Every speed and ONNX-parity result of the guard in benchmarks/results/, one benchmark after the other (they must
# not share the CPU): about an hour on 2 cores. Long inputs (long_input.py) need the experiment models and run
# on their own.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
"$py" benchmarks/guard_bench.py
"$py" benchmarks/graph_passes.py
"$py" benchmarks/int8_recipes.py
"$py" benchmarks/row_parallel.py
"$py" benchmarks/batch_tokens.py
"$py" benchmarks/onnx_parity.py --per-set 300
"$py" benchmarks/onnx_parity.py --per-set 60 --backend torch --precision int8 --out benchmarks/results/torch_int8_parity
"$py" benchmarks/server_load.py
"$py" benchmarks/server_load.py --backend onnx --out benchmarks/results/server_load_onnx
