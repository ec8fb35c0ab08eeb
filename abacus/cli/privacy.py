"""`abacus privacy`: delete students or a district, re-enable, print and verify receipts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from abacus.cli.common import fail, load_settings
from abacus.errors import AbacusError, StackError
from abacus.kafka.privacy import read_final_status, send_request, wait_status
from abacus.privacy.receipt import ReceiptError, check_signature
from abacus.privacy.request import new_request_id, parse_student_list
from abacus.settings import AbacusSettings
from abacus.store.store import Store
from abacus.worker_api import call_worker
from consumers.privacy_verify import verification_report

__all__ = ["privacy_app", "with_store"]

T = TypeVar("T")
privacy_app = typer.Typer(no_args_is_help=True, help="Student data deletion and its receipts.")

StudentOpt = Annotated[
    list[str] | None, typer.Option("--student", help="A StudentID (repeat for several)")
]
AllOpt = Annotated[bool, typer.Option("--all-district", help="The whole district")]


def with_store(settings: AbacusSettings, use: Callable[[Store], T]) -> T:
    """Open the store here (a ClickHouse server, or embedded chDB while the stack is down)."""
    try:
        store = Store.open(settings)
    except AbacusError as exc:
        raise StackError(f"no worker answers and the store cannot be opened here: {exc}") from exc
    try:
        return use(store)
    finally:
        store.close()


def _students(students: list[str] | None, students_file: Path | None) -> list[str]:
    out = list(students or [])
    if students_file is not None:
        out.extend(parse_student_list(students_file.read_text(encoding="utf-8-sig")))
    return out


def _send_and_wait(
    settings: AbacusSettings, doc: dict[str, Any], wait: bool, timeout: float
) -> None:
    try:
        send_request(settings, doc)
        typer.echo(f"requested {doc['request_id']}")
        if not wait:
            return
        final = wait_status(settings, str(doc["request_id"]), timeout)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    if final["status"] != "completed":
        raise fail(f"{doc['kind']} {doc['request_id']} failed: {final.get('reason', 'unknown')}")
    if final.get("receipt") is not None:
        typer.echo(json.dumps(final["receipt"], indent=2, sort_keys=True))
        typer.echo(final.get("receipt_path") or "")
    else:
        typer.echo(json.dumps(final))


@privacy_app.command("delete")
def delete(
    district: Annotated[str, typer.Option(help="District id")],
    requester: Annotated[str, typer.Option(help="Employee_ID of a district admin (User_Type 4)")],
    student: StudentOpt = None,
    students_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="One StudentID a line (# comments)"),
    ] = None,
    all_district: AllOpt = False,
    reason: Annotated[str, typer.Option(help="Why (kept with the request)")] = "",
    request_id: Annotated[
        str | None,
        typer.Option(help="Send a failed request again under its id, to finish it"),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait and print the receipt")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 900.0,
) -> None:
    """Delete students' data everywhere it lives (or a whole district's, at the end of its
    contract); --wait prints the signed receipt."""
    ids = _students(student, students_file)
    if all_district == bool(ids):
        raise fail("give --student/--students-file, or --all-district", 2)
    doc = {
        "request_id": request_id or new_request_id(),
        "district_id": district,
        "requester": requester,
        "kind": "district" if all_district else "students",
        "students": ids,
        "reason": reason,
    }
    _send_and_wait(load_settings(), doc, wait, timeout)


@privacy_app.command("reenable")
def reenable(
    district: Annotated[str, typer.Option(help="District id")],
    requester: Annotated[str, typer.Option(help="Employee_ID of a district admin (User_Type 4)")],
    student: StudentOpt = None,
    all_district: AllOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the final status")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 120.0,
) -> None:
    """Let deleted students (or a deleted district) start from zero: data dated from now on
    is accepted again; nothing deleted comes back."""
    ids = list(student or [])
    if all_district == bool(ids):
        raise fail("give --student, or --all-district", 2)
    doc = {
        "request_id": new_request_id(),
        "district_id": district,
        "requester": requester,
        "kind": "reenable",
        "students": ids,
    }
    _send_and_wait(load_settings(), doc, wait, timeout)


def _find_receipt(settings: AbacusSettings, request_id: str) -> dict[str, Any]:
    """The file under ABACUS_HOME, else the worker, else the store, else the status topic."""
    path = settings.receipts_dir / f"{request_id}.json"
    if path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    try:
        return dict(call_worker(settings, "GET", f"/privacy/receipts/{request_id}"))
    except StackError:
        pass
    try:
        text = with_store(settings, lambda store: store.privacy_receipt(request_id))
        if text is not None:
            return dict(json.loads(text))
    except StackError:
        pass
    final = read_final_status(settings, request_id)
    if final and final.get("receipt"):
        return dict(final["receipt"])
    raise StackError(f"no receipt for {request_id}")


@privacy_app.command("receipt")
def receipt(
    request_id: Annotated[str, typer.Argument(help="The request id (del-…)")],
    output: Annotated[Path | None, typer.Option(help="Also write it to this file")] = None,
) -> None:
    """Print a deletion's signed receipt (JSON)."""
    settings = load_settings()
    try:
        doc = _find_receipt(settings, request_id)
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    text = json.dumps(doc, indent=2, sort_keys=True)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


@privacy_app.command("verify")
def verify(
    receipt_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Check a receipt's HMAC, then run its verification queries again (through the running
    worker, or on the store directly when none runs); exit 1 unless every one counts 0."""
    settings = load_settings()
    key = settings.web.signing_key.get_secret_value().encode()
    try:
        doc = json.loads(receipt_file.read_text(encoding="utf-8"))
        check_signature(doc, key)
    except (ValueError, ReceiptError) as exc:
        raise fail(f"{receipt_file}: {exc}") from exc
    try:
        try:
            report = call_worker(settings, "POST", "/privacy/verify", doc)
        except StackError:
            report = with_store(
                settings, lambda store: verification_report(doc, key, store.check_count)
            )
    except AbacusError as exc:
        raise fail(str(exc)) from exc
    typer.echo(json.dumps(report, indent=2))
    if not report["verified"]:
        left = ", ".join(f"{t['table']} ({t['result']})" for t in report["tables"] if t["result"])
        raise fail(f"rows found again: {left}")
