"""What every command shares: the settings and the one-line failure on stderr."""

from __future__ import annotations

import typer

from abacus.settings import AbacusSettings

__all__ = ["fail", "load_settings"]


def load_settings() -> AbacusSettings:
    """The settings tree, read from the environment once per command."""
    return AbacusSettings()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line reason on stderr and return the Exit to raise."""
    typer.echo(f"abacus: {message}", err=True)
    return typer.Exit(code)
