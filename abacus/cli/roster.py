"""`abacus roster …`: import a district's roster folder or OneRoster package (validate, report,
publish)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abacus.cli.common import fail
from abacus.errors import AbacusError
from abacus.roster.importer import import_roster
from abacus.roster.oneroster.importer import import_oneroster
from abacus.roster.oneroster.package import is_oneroster_package
from abacus.roster.report import format_error_table
from abacus.settings import AbacusSettings

__all__ = ["roster_app"]

roster_app = typer.Typer(no_args_is_help=True, help="District rosters.")


@roster_app.command("import")
def import_command(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="Folder with 1_users.csv, 2_students.csv and/or 3_teacher_students.csv; or a"
            " OneRoster 1.1 package (a zip, or a folder with manifest.csv)",
        ),
    ],
    district: Annotated[str, typer.Option("--district", help="District id")],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help="district.toml (default: DIR/district.toml; required on a first import)",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Import nothing if any row is rejected")
    ] = False,
) -> None:
    """Validate the roster files and publish new, changed and removed records.

    The three files may come together or each on its own (a file replaces its kind; the
    others are kept). Every rejected row (and every warning) is printed and written to
    DIR/roster_errors.csv (beside a zip); valid rows are imported unless --strict. Exit
    status 1 when any row was rejected, or the upload was refused as a whole.
    """
    if is_oneroster_package(directory):
        run = import_oneroster
    elif directory.is_dir():
        run = import_roster
    else:
        raise fail(f"{directory}: not a folder nor a OneRoster zip")
    try:
        result = run(AbacusSettings(), directory, district, config_path=config, strict=strict)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:
        raise fail(f"cannot read or write in {directory}: {exc.strerror or exc}") from exc
    if result.errors or result.warnings:
        typer.echo(format_error_table([*result.errors, *result.warnings]))
        typer.echo(f"error report: {result.report_path}")
    for note in result.notes:
        typer.echo(note)
    for summary in result.summaries:
        typer.echo(summary.line())
    if result.imported:
        status = result.config_status or "unchanged (published before)"
        typer.echo(f"district config: {status}")
    if result.errors:
        n = result.rejected
        if not result.imported:
            raise fail(
                f"{n} roster row(s) rejected; nothing imported (--strict); see {result.report_path}"
            )
        raise fail(f"{n} roster row(s) rejected; see {result.report_path}")
    if result.warnings:
        typer.echo(f"{len(result.warnings)} warning(s), rows imported; see {result.report_path}")
