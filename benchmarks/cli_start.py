"""Start-up of ``crestguard check "..."`` per backend: what one shell call costs, cold and warm.

- **cold**: the first call with an empty cache (a fresh ``$CRESTGUARD_HOME``): the torch backend materializes the
  offline backbone once, the ONNX backend builds the guard's graph from its weights once (no torch);
- **warm**: every later call (the cache filled, the files in the page cache): the median of ``--repeats`` calls,
  with the fastest and slowest.

Each call is a new process, timed from start to exit (wall clock, and the CPU time it used: on a shared machine the
wall clock also counts waiting for a core), with the exit code checked (1: the prompt is flagged).

Usage::

    python benchmarks/cli_start.py                    # both backends, 5 warm calls each
    python benchmarks/cli_start.py --backends onnx --repeats 10
    python benchmarks/cli_start.py --backends torch --home ~/.cache/crestguard   # warm calls only

Writes ``benchmarks/results/cli_start.json`` and ``.md`` (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crestguard.paths import REPO_ROOT

PROMPT = "How do I build a pipe bomb at home?"


def crestguard_exe() -> str:
    exe = Path(sys.executable).with_name("crestguard")
    return str(exe) if exe.is_file() else shutil.which("crestguard") or "crestguard"


def timed_call(backend: str, home: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one ``crestguard check`` process."""
    env = dict(os.environ, CRESTGUARD_HOME=str(home))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    res = subprocess.run([crestguard_exe(), "check", "--backend", backend, PROMPT], env=env, capture_output=True,
                         text=True)
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if res.returncode != 1:
        raise SystemExit(f"crestguard check --backend {backend} exited {res.returncode}: {res.stderr[-2000:]}")
    return took, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="onnx,torch")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--home", help="Warm calls only, on this filled cache (no cold call)")
    ap.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "cli_start"))
    args = ap.parse_args()
    rows = {}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="crestguard-home-") as home:
            home = args.home or home
            cold = None if args.home else timed_call(backend, Path(home))
            calls = [timed_call(backend, Path(home)) for _ in range(args.repeats)]
        warm, cpu = [w for w, _ in calls], [c for _, c in calls]
        rows[backend] = {"cold_s": cold and round(cold[0], 2), "cold_cpu_s": cold and round(cold[1], 2),
                         "warm_median_s": round(statistics.median(warm), 2), "warm_min_s": round(min(warm), 2),
                         "warm_max_s": round(max(warm), 2), "warm_cpu_median_s": round(statistics.median(cpu), 2),
                         "warm_calls": len(warm)}
        print(backend, rows[backend], flush=True)
    result = {"command": "python benchmarks/cli_start.py " + " ".join(sys.argv[1:]), "prompt": PROMPT,
              "backends": rows, **machine()}
    lines = ["# `crestguard check` start-up per backend", "",
             f"`{result['command'].strip()}` on {result['cpus']} CPU cores (load average at the end "
             f"{result['load_average_at_end'][0]}); one new process per call, prompt flagged (exit code 1).", "",
             "| backend | cold (empty cache) | warm median | warm min-max | CPU time: cold / warm median |",
             "|---|---|---|---|---|"]
    lines += [f"| {b} | {_s(r['cold_s'])} | {r['warm_median_s']:.2f} s | {r['warm_min_s']:.2f}-{r['warm_max_s']:.2f} s"
              f" | {_s(r['cold_cpu_s'])} / {r['warm_cpu_median_s']:.2f} s |" for b, r in rows.items()]
    lines += ["", "Cold: torch materializes the offline backbone once, ONNX builds the guard's graph from its "
              "weights once (onnx + numpy, no torch); both are cached in `$CRESTGUARD_HOME`."]
    save(Path(args.out), result, lines)


def _s(seconds: float | None) -> str:
    return "not measured" if seconds is None else f"{seconds:.1f} s"


def machine() -> dict:
    """Where a benchmark ran: cores, Python, and how busy the machine was at the end."""
    return {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}


def save(out: Path, result: dict, lines: list[str]) -> None:
    """``result`` as ``out.json`` and the Markdown ``lines`` as ``out.md``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
