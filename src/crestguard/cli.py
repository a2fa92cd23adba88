"""The ``crestguard`` command. Each subcommand is a thin call into the module that does the work.

Every subpackage that offers commands has a ``cli.py`` with ``register(app)``; this file only wires them.
"""

from __future__ import annotations

import importlib
import sys

import typer

from crestguard import __version__
from crestguard.errors import CrestGuardError

app = typer.Typer(
    name="crestguard",
    help="CREST Guard: multilingual safety classification for LLM prompts.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

# Order = the data flow: corpus -> embeddings -> clusters -> languages -> translation -> training -> eval -> serving.
_COMMAND_MODULES = [
    "crestguard.backbones.cli",
    "crestguard.languages.cli",
    "crestguard.data.cli",
    "crestguard.clustering.cli",
    "crestguard.translate.cli",
    "crestguard.training.cli",
    "crestguard.evaluation.cli",
    "crestguard.guard.cli",
    "crestguard.server.cli",
    "crestguard.taxonomy.cli",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crestguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """CREST Guard: multilingual safety classification for LLM prompts."""


for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a subpackage without commands yet
        if exc.name != _name:
            raise
        continue
    _mod.register(app)


def main() -> None:
    """Entry point: run the app and turn :class:`CrestGuardError` into one red line and exit code 2."""
    try:
        app(standalone_mode=False)
    except CrestGuardError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
