"""Server under load: N concurrent clients against ``crestguard serve`` on loopback, beside in-process ``check_batch``.

One run, the same texts, the same guard model:

- the server: ``crestguard serve`` in a subprocess; ``--clients`` keep-alive connections send ``POST
  /v1/moderations`` requests (one prompt each) as fast as answers come back: throughput, latency p50/p90/p99,
  errors, the server's micro-batch sizes (from ``/metrics``), its RSS, and whether SIGTERM drains it cleanly;
- in process: ``guard.check_batch`` on the same texts in chunks of ``--max-batch``.

In-process ``check_batch`` is called the way the server calls the model: warmed up in the main thread, then from
one worker thread (``--in-process-thread main`` measures a main-thread-only loop instead). With torch's GNU OpenMP
this matters on a busy machine: once more threads than cores have used OpenMP, libgomp shortens its spin-waits,
while a main-thread-only process keeps spinning at every barrier whenever other work holds the other core, which
costs CPU time.

The machine is shared with other work, so the two are interleaved: the texts are split into ``--rounds`` parts
and each part is judged in process, then through the server (which stays up, idle, during the in-process part).
Drifts in the CPU share then hit both sides alike. The report gives the overall ratio and the ratio per round,
and also CPU time per text (the in-process loop's process CPU; the server process's CPU plus the load generator's).

The load generator is a minimal HTTP/1.1 client on asyncio streams: it shares the cores with the server, and a
full-featured client (httpx) spends more CPU per request than the server does, which would measure the client
rather than the server. Every response is still checked (status 200, one result, a boolean ``flagged``).

Usage::

    python benchmarks/server_load.py                      # 32 clients, 2,000 requests, crest-me5s (torch)
    python benchmarks/server_load.py --backend onnx --out benchmarks/results/server_load_onnx
    python benchmarks/server_load.py --in-process-thread main --requests 500 --rounds 2 \
        --out benchmarks/results/server_load_mainthread

Writes ``benchmarks/results/server_load.json`` and ``.md`` (``--out`` changes the stem).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from crestguard.paths import REPO_ROOT

#: Real prompts of roughly 64 tokens (200-400 characters), safe and unsafe, several languages.
SOURCES = ("benign_instructions", "multijail", "harmbench", "xstest", "advbench", "jbb_behaviors")
MIN_CHARS, MAX_CHARS = 200, 400


def load_texts(n: int) -> list[str]:
    """``n`` prompts of 200-400 characters from :data:`SOURCES`, interleaved, cycled if there are fewer."""
    from crestguard.data import load_dataset

    pools = [[r.text for r in load_dataset(name).records if MIN_CHARS <= len(r.text) <= MAX_CHARS][:n]
             for name in SOURCES]
    mixed = [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]
    return [mixed[i % len(mixed)] for i in range(n)]


def in_process(guard, texts: list[str], batch: int) -> dict[str, float]:
    """Wall and process-CPU seconds of ``guard.check_batch`` over ``texts`` in chunks of ``batch``."""
    cpu0, started = time.process_time(), time.perf_counter()
    for i in range(0, len(texts), batch):
        guard.check_batch(texts[i:i + batch])
    return {"texts": len(texts), "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, all threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> dict[str, float]:
    """Resident memory of ``pid`` now (``VmRSS``) and at its peak (``VmHWM``, loading included), in MB."""
    names = {"VmRSS:": "now", "VmHWM:": "peak"}
    rows = [line.split() for line in Path(f"/proc/{pid}/status").read_text().splitlines()]
    return {names[r[0]]: round(int(r[1]) / 1024, 1) for r in rows if r and r[0] in names}


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of a GET on the local server (status 0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except OSError as exc:
        return getattr(exc, "code", 0) or 0, ""


def metric_sum(text: str, name: str) -> float:
    """Sum of the samples of ``name`` in a Prometheus exposition."""
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


class Connection:
    """One keep-alive HTTP/1.1 connection (responses must carry Content-Length, as uvicorn's do)."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            self.writer.write(b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                              b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
            head = await self.reader.readuntil(b"\r\n\r\n")
            headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
            length = int(headers.get(b"content-length", b"-1"))
            if length < 0:
                raise ValueError("response without content-length")
            payload = await self.reader.readexactly(length)
            if headers.get(b"connection", b"").strip().lower() == b"close":
                self.close()
            return int(head[9:12]), payload
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(port: int, texts: list[str], clients: int, model: str) -> dict:
    """One moderation request per text from ``clients`` concurrent connections: latencies, errors, wall, CPU."""
    bodies = [json.dumps({"model": model, "input": t}).encode() for t in texts]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = iter(range(len(bodies)))

    async def client() -> None:
        conn = Connection(port)
        for i in next_index:
            started = time.perf_counter()
            try:
                status, payload = await conn.post("/v1/moderations", bodies[i])
                results = json.loads(payload)["results"] if status == 200 else None
                if status != 200 or len(results) != 1 or not isinstance(results[0]["flagged"], bool):
                    errors[f"http {status}"] = errors.get(f"http {status}", 0) + 1
                    continue
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - started)
        conn.close()

    cpu0, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"requests": len(bodies), "wall_s": time.perf_counter() - started, "latencies": latencies,
            "errors": errors, "client_cpu_s": time.process_time() - cpu0}


@contextmanager
def crestguard_serve(args):
    """``crestguard serve`` in a subprocess, once healthy; yields ``{"port", "pid"}`` and, after SIGTERM, adds
    ``"shutdown"``: the server's own log line about draining its queue."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "crestguard.cli", "serve", "--model", args.model, "--backend", args.backend,
           "--port", str(port), "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    log = tempfile.TemporaryFile(mode="w+")  # not a pipe: a full pipe would stall the server
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    handle = {"port": port, "pid": server.pid}
    try:
        deadline = time.monotonic() + 600
        while get(port, "/healthz")[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit(f"the server did not become healthy ({server.poll()}):\n{log.read()}")
            time.sleep(0.5)
        yield handle
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.seek(0)
        lines = [line for line in log.read().splitlines() if "shut down after draining" in line]
        handle["shutdown"] = lines[0].split(":", 1)[1].strip() if lines else "no clean shutdown logged"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(args, guard, texts: list[str]) -> dict:
    """Interleaved rounds of in-process and server judging; the aggregated report."""
    parts = [texts[r * len(texts) // args.rounds:(r + 1) * len(texts) // args.rounds] for r in range(args.rounds)]
    rounds = []
    in_process(guard, texts[: 2 * args.max_batch], args.max_batch)  # warm-up in the main thread, as the server
    worker = ThreadPoolExecutor(1) if args.in_process_thread == "worker" else None
    with crestguard_serve(args) as server:
        port = server["port"]
        asyncio.run(load(port, texts[: 2 * args.clients], args.clients, args.model))
        metrics_before = get(port, "/metrics")[1]
        for part in parts:
            local = (worker.submit(in_process, guard, part, args.max_batch).result() if worker
                     else in_process(guard, part, args.max_batch))
            cpu0 = cpu_seconds(server["pid"])
            served = asyncio.run(load(port, part, args.clients, args.model))
            served["server_cpu_s"] = cpu_seconds(server["pid"]) - cpu0
            rounds.append((local, served))
        metrics_after = get(port, "/metrics")[1]
        rss = rss_mb(server["pid"])
    delta = {name: metric_sum(metrics_after, name) - metric_sum(metrics_before, name)
             for name in ("crestguard_batch_texts_count", "crestguard_batch_texts_sum")}
    local_wall = sum(r[0]["wall_s"] for r in rounds)
    local_cpu = sum(r[0]["cpu_s"] for r in rounds)
    served_wall = sum(r[1]["wall_s"] for r in rounds)
    server_cpu = sum(r[1]["server_cpu_s"] for r in rounds)
    client_cpu = sum(r[1]["client_cpu_s"] for r in rounds)
    latencies = [x for r in rounds for x in r[1]["latencies"]]
    errors: dict[str, int] = {}
    for _, served in rounds:
        for kind, n in served["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    n = len(texts)
    local_rate, served_rate = n / local_wall, len(latencies) / served_wall
    calls = delta["crestguard_batch_texts_count"]
    return {
        "in_process": {"texts_per_s": round(local_rate, 2), "cpu_ms_per_text": round(1000 * local_cpu / n, 2)},
        "server": {
            "requests": n, "ok": len(latencies), "errors": sum(errors.values()), "errors_by_kind": errors,
            "requests_per_s": round(served_rate, 2),
            "latency_ms": {k: round(1000 * v, 1) for k, v in
                           {"p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                            "p99": percentile(latencies, 99), "max": max(latencies),
                            "mean": statistics.fmean(latencies)}.items()} if latencies else {},
            "model_calls": int(calls),
            "mean_batch_texts": round(delta["crestguard_batch_texts_sum"] / calls, 1) if calls else None,
            "server_cpu_ms_per_request": round(1000 * server_cpu / n, 2),
            "client_cpu_ms_per_request": round(1000 * client_cpu / n, 3),
            "rss_mb": rss,
            "sigterm": server["shutdown"],
        },
        "rounds": [{"texts": local["texts"], "in_process_texts_per_s": round(local["texts"] / local["wall_s"], 2),
                    "server_requests_per_s": round(len(served["latencies"]) / served["wall_s"], 2),
                    "ratio": round(len(served["latencies"]) / served["wall_s"] / (local["texts"] / local["wall_s"]),
                                   4)}
                   for local, served in rounds],
        "ratio": round(served_rate / local_rate, 4),
        "cpu_ratio": round(local_cpu / (server_cpu + client_cpu), 4),
    }


THREADING = {"worker": "called from one worker thread after a main-thread warm-up, as the server calls it",
             "main": "called from the main thread only"}


def markdown(report: dict) -> str:
    s, ip, c, t, m = report["server"], report["in_process"], report["config"], report["texts"], report["machine"]
    lat = s["latency_ms"]
    met = "met" if report["target_met"] else "NOT met"
    return "\n".join([
        "# Server load benchmark",
        "",
        f"`{report['command']}`",
        "",
        f"{c['clients']} concurrent keep-alive clients sent {s['requests']:,} `POST /v1/moderations` requests (one "
        f"prompt each, {t['mean_chars']:.0f} characters and {t['mean_tokens']} tokens on average) to `crestguard "
        f"serve --model {c['model']} --backend {c['backend']} --max-batch {c['max_batch']} --max-wait-ms "
        f"{c['max_wait_ms']}` on loopback, in {c['rounds']} rounds interleaved with in-process `check_batch` on the "
        f"same texts (batch {c['max_batch']}, {THREADING[c['in_process_thread']]}). Machine: {m['cpus']} CPUs, "
        f"load average {m['load_before'][0]:.2f} "
        f"before and {m['load_after'][0]:.2f} after (shared with other work).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| server throughput | {s['requests_per_s']:.1f} requests/s |",
        f"| in-process `check_batch` | {ip['texts_per_s']:.1f} texts/s |",
        f"| **server / in-process throughput** | **{report['ratio']:.1%}** (per round: "
        f"{', '.join(format(r['ratio'], '.0%') for r in report['rounds'])}; target >= 80% with zero errors: "
        f"{met}) |",
        f"| CPU per text: in process / server + load generator | {ip['cpu_ms_per_text']:.1f} ms / "
        f"{s['server_cpu_ms_per_request']:.1f} + {s['client_cpu_ms_per_request']:.2f} ms "
        f"(ratio {report['cpu_ratio']:.1%}) |",
        f"| latency p50 / p90 / p99 / max | {lat.get('p50')} / {lat.get('p90')} / {lat.get('p99')} / "
        f"{lat.get('max')} ms |",
        f"| errors | {s['errors']} of {s['requests']:,} {s['errors_by_kind'] or ''} |",
        f"| model calls, mean texts per call | {s['model_calls']:,}, {s['mean_batch_texts']} |",
        f"| server RSS after the load (peak, loading included) | {s['rss_mb'].get('now')} MB "
        f"({s['rss_mb'].get('peak')} MB) |",
        f"| on SIGTERM | {s['sigterm']} |",
        "",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="crest-me5s")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4, help="Interleaved in-process/server rounds.")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--in-process-thread", choices=("worker", "main"), default="worker",
                        help="Run in-process check_batch in one worker thread after a main-thread warm-up, as the "
                             "server runs the model (default), or in the main thread only.")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "server_load"),
                        help="Output stem: writes STEM.json and STEM.md.")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= args.requests:
        parser.error("--rounds must be between 1 and --requests")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the server subprocess is stopped too

    from crestguard import load_guard

    texts = load_texts(args.requests)
    load_before = os.getloadavg()
    guard = load_guard(args.model, backend=args.backend)
    results = measure(args, guard, texts)
    tokens = [len(e.ids) for e in guard.tokenizer.encode_batch(texts)]
    report = {
        "command": " ".join(["python benchmarks/server_load.py", *(argv if argv is not None else sys.argv[1:])]),
        "config": {k: getattr(args, k) for k in ("model", "backend", "clients", "requests", "rounds", "max_batch",
                                                 "max_wait_ms", "in_process_thread")},
        "guard": {"name": guard.name, "model_hash": guard.model_hash},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "texts": {"n": len(texts), "distinct": len(set(texts)), "sources": list(SOURCES),
                  "mean_chars": round(statistics.fmean(map(len, texts)), 1),
                  "mean_tokens": round(statistics.fmean(tokens), 1)},
        **results,
        "target_met": results["ratio"] >= 0.8 and results["server"]["errors"] == 0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
