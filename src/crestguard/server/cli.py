"""``crestguard serve``: the guard behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from crestguard.guard.cli import BACKEND_HELP, PRECISION_HELP, ROWS_HELP, SENTENCES_HELP
from crestguard.server.config import ServerConfig

DEFAULTS = ServerConfig()
console = Console(stderr=True)

#: Seconds uvicorn waits for in-flight requests on SIGTERM/SIGINT before cancelling them (the queue is drained after).
GRACEFUL_TIMEOUT_S = 30


class Backend(str, Enum):
    torch = "torch"
    onnx = "onnx"


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root app."""
    app.command("serve")(serve)


def serve(
    model: str = typer.Option("crest-me5s", "--model", "-m", help="Guard name or model folder."),
    backend: Optional[Backend] = typer.Option(None, "--backend", help=BACKEND_HELP),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help=PRECISION_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the model (default: the backend's)."),
    thresholds: Optional[Path] = typer.Option(None, "--thresholds", exists=True, dir_okay=False,
                                              help="Threshold policy (YAML/JSON): thresholds, per-category rules, "
                                                   "custom categories (crestguard policy add)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 for all)."),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
    max_batch: int = typer.Option(DEFAULTS.max_batch, "--max-batch", help="Most texts per model call."),
    max_wait_ms: float = typer.Option(DEFAULTS.max_wait_ms, "--max-wait-ms",
                                      help="Longest wait for a batch to fill, in ms."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="CRESTGUARD_API_KEY",
                                          help="Require the key on the API endpoints ('Authorization: Bearer <key>' "
                                               "or 'x-api-key')."),
    fail_closed: bool = typer.Option(False, "--fail-closed/--fail-open",
                                     help="On a model error flag the input (with the reason) instead of a 500."),
    max_body_bytes: int = typer.Option(DEFAULTS.max_body_bytes, "--max-body-bytes",
                                       help="Larger request bodies get 413."),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log", help="Log every request."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    sentences: Optional[str] = typer.Option(None, "--sentences", help=SENTENCES_HELP),
    spin: bool = typer.Option(False, "--spin/--no-spin",
                              help="onnx: idle threads spin-wait (~2 ms less per request on dedicated cores; slower "
                                   "on a shared CPU)."),
    rows: bool = typer.Option(True, "--rows/--no-rows", help=ROWS_HELP),
) -> None:
    """Serve the guard: [bold]POST /v1/moderations[/] (OpenAI), [bold]/v1/classify[/], LiteLLM's guardrail API,
    /healthz, /metrics and the API docs at /docs. Concurrent requests are micro-batched.
    """
    import logging

    import uvicorn

    from crestguard import load_guard
    from crestguard.server.app import create_app

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))  # uvicorn's look
    logging.getLogger("crestguard").addHandler(handler)
    logging.getLogger("crestguard").setLevel(getattr(logging, log_level.upper(), logging.DEBUG))  # "trace" too
    config = ServerConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, api_key=api_key, fail_closed=fail_closed,
                          max_body_bytes=max_body_bytes)
    with console.status(f"loading guard {model}") as status:
        guard = load_guard(model, backend=backend.value if backend else None, precision=precision, threads=threads,
                           spin=spin, rows=rows, progress=status.update, sentences=sentences, thresholds=thresholds)
        guard.check_batch(["warm-up"])  # the first call pays one-off setup; do not bill it to a client
        guard.check_batch(["warm-up", "warm-up, two rows"])  # ONNX: the row-parallel session is made on first use
    console.print(f"[green]serving[/] {guard.name} on http://{host}:{port} (docs at /docs"
                  f"{', API key required' if api_key else ''})", highlight=False)
    uvicorn.run(create_app(guard, config), host=host, port=port, log_level=log_level, access_log=access_log,
                timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S)
