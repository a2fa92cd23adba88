"""The HTTP server: ``create_app(guard, ServerConfig(...))`` and ``crestguard serve``.

``create_app`` is imported lazily so that ``crestguard --help`` does not load FastAPI::

    from crestguard.server import ServerConfig, create_app
"""

from __future__ import annotations

from crestguard.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from crestguard.server.app import create_app

        return create_app
    raise AttributeError(f"module 'crestguard.server' has no attribute {name!r}")
