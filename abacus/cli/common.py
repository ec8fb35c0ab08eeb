"""What every command shares: the settings and the one-line failure on stderr."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from abacus.settings import AbacusSettings

__all__ = ["fail", "load_settings"]


def load_settings() -> AbacusSettings:
    """The settings tree, read from the environment once per command; a bad setting exits
    with a one-line reason naming it."""
    try:
        return AbacusSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "__".join(str(p) for p in first["loc"]).upper()
        name = f"ABACUS_{where}" if where else "settings"
        raise fail(f"bad setting {name}: {first['msg']}") from exc


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line reason on stderr and return the Exit to raise."""
    typer.echo(f"abacus: {message}", err=True)
    return typer.Exit(code)
