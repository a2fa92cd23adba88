"""How the server batches, admits and fails (no FastAPI import: the CLI reads the defaults cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from crestguard.errors import CrestGuardError


@dataclass(frozen=True)
class ServerConfig:
    """How the server batches, admits and fails.

    Attributes:
        max_batch: most texts per model call.
        max_wait_ms: longest a request waits for others to share its model call.
        api_key: when set, the API endpoints need ``Authorization: Bearer <api_key>`` (else 401).
        fail_closed: on an internal model error, answer "flagged" with the reason instead of a 500.
        max_body_bytes: larger request bodies are refused with 413 before they are parsed.
    """

    max_batch: int = 32
    max_wait_ms: float = 5.0
    api_key: str | None = None
    fail_closed: bool = False
    max_body_bytes: int = 2 << 20

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise CrestGuardError(f"max_batch must be at least 1, got {self.max_batch}.")
        if self.max_wait_ms < 0:
            raise CrestGuardError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}.")
        if self.max_body_bytes < 1:
            raise CrestGuardError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}.")
        if self.api_key is not None and not self.api_key.strip():
            raise CrestGuardError("api_key is empty: pass a non-empty key or none.")
