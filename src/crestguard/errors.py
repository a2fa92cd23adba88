"""Exceptions shared by every part of the package.

Each error carries one clear message meant for the person running the command; the CLI prints it
without a traceback and exits with status 2.
"""

from __future__ import annotations


class CrestGuardError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, missing package)."""


class MissingDependencyError(CrestGuardError):
    """An optional package is not installed; the message says what to install."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = ""):
        hint = f"pip install 'crestguard[{extra}]'" if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"The package '{package}' is not installed{what}. Install it with: {hint}")
        self.package = package


class BackboneError(CrestGuardError):
    """A backbone could not be found, read or built."""


class DataError(CrestGuardError):
    """A dataset folder, file or column is missing or malformed."""


class UnknownLanguageError(CrestGuardError, KeyError):
    """A language code that the language table cannot map. Never guessed."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown language"


def require(module: str, extra: str | None = None, purpose: str = ""):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only on slim installs
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
