"""The worker's portal state after a district's deletion: its staff and export jobs leave
memory, and a refused request for the deleted district is listed (and stored) nowhere."""

from __future__ import annotations

import asyncio
from typing import Any

from abacus.accounts.credentials import Credential
from abacus.catalog import ROSTER_USERS
from abacus.export.jobs import ExportJobView
from abacus.export.request import ExportRequest
from streams.portal.accounts import AccountDirectory
from streams.portal.board import ExportBoard


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[ExportJobView] = []

    async def asave_export_job(self, job: ExportJobView) -> None:
        self.saved.append(job)


def user_row(district: str, employee: str, username: str) -> tuple[Any, ...]:
    values = {
        "district_id": district, "employee_id": employee, "username": username,
        "email": f"{username}@example.org", "first_name": "A", "last_name": "B",
        "user_type": 4, "buildings": [], "sourced_id": "", "password_hash": "",
        "password_set_at": 0, "is_active": True, "import_id": "i", "version": 1,
        "updated_at": None,
    }  # fmt: skip
    return tuple(values[c] for c in ROSTER_USERS.columns)


def request(district: str, request_id: str) -> ExportRequest:
    return ExportRequest(
        request_id=request_id, district_id=district, requester="0501", product="both"
    )


def test_a_forgotten_district_has_no_accounts_left() -> None:
    directory = AccountDirectory(FakeStore())  # type: ignore[arg-type]
    directory.apply_rows([user_row("gone", "0501", "admin"), user_row("kept", "0501", "admin")])
    directory._portal[("gone", "0501")] = Credential("h", 1)
    directory.forget("gone")
    assert directory.get("gone", "0501") is None
    assert directory.find("gone", "admin") is None
    assert ("gone", "0501") not in directory._portal
    assert directory.get("kept", "0501") is not None
    assert directory.find("kept", "admin") is not None


def test_a_forgotten_district_has_no_jobs_and_a_refused_request_is_not_stored() -> None:
    store = FakeStore()
    known = {"gone", "kept"}
    board = ExportBoard(store, known=lambda district: district in known)  # type: ignore[arg-type]

    async def run() -> None:
        await board.on_status(request("gone", "exp-1"), {"status": "accepted"})
        await board.on_status(request("kept", "exp-2"), {"status": "accepted"})
        known.discard("gone")
        board.forget("gone")
        assert board.get("gone", "exp-1") is None
        assert board.get("kept", "exp-2") is not None
        store.saved.clear()
        # After the deletion the consumer refuses the district: nothing listed nor stored.
        failed = {"status": "failed", "reason": "unknown district"}
        await board.on_status(request("gone", "exp-3"), failed)
        assert board.get("gone", "exp-3") is None
        assert store.saved == []

    asyncio.run(run())
