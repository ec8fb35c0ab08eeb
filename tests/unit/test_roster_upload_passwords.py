"""Staff passwords through a users file uploaded on its own (issue #14's single-file uploads
meeting the portal's credentials): the upload keeps the plain password only in memory, the
one publication path publishes its argon2id hash, and a file without a Password column
keeps the published hash. Pure: the published roster is built in memory."""

from __future__ import annotations

from datetime import date
from typing import Any

from abacus.accounts.passwords import hash_password, verify_password
from abacus.roster import records as rec
from abacus.roster.publishing import Publication, Published
from abacus.roster.records import RosterKind
from abacus.roster.upload import published_ids, upload_of
from abacus.roster.validation import USERS_FILE, validate_roster

TODAY = date(2025, 10, 1)
DISTRICT = "d1"
TOPICS = {kind: f"topic-{kind.value}" for kind in RosterKind}
OLD_HASH = hash_password("Old-Password-1")
PUBLISHED_USER = {
    "v": rec.RECORD_VERSION, "district_id": DISTRICT, "import_id": "old", "imported_at": 10,
    "is_active": True, "employee_id": "T-100", "username": "tgreen", "email": None,
    "first_name": "Terry", "last_name": None, "user_type": 1, "buildings": ["North School"],
    "password_hash": OLD_HASH, "password_set_at": 10,
}  # fmt: skip


def published() -> Published:
    docs: dict[RosterKind, dict[str, dict[str, Any]]] = {kind: {} for kind in RosterKind}
    docs[RosterKind.USERS][f"{DISTRICT}|T-100"] = PUBLISHED_USER
    return Published(DISTRICT, dict(TOPICS), docs, {})


def publish_users(users_csv: str) -> tuple[list[bytes], dict[str, Any]]:
    """A users file uploaded alone: (every published value, the one user's document)."""
    before = published()
    checked = validate_roster(
        {USERS_FILE: users_csv.encode()}, today=TODAY, published=published_ids(before.docs)
    )
    assert checked.errors == []
    upload = upload_of(DISTRICT, checked)
    out = Publication(before)
    out.changes(
        RosterKind.USERS,
        upload.fields[RosterKind.USERS],
        complete=upload.complete[RosterKind.USERS],
        passwords=upload.passwords,
    )
    values = [value for _topic, _key, value in out.records]
    docs = [rec.decode_value(v) for v in values]
    return values, next(d for d in docs if d["employee_id"] == "T-100")


def test_a_new_password_in_a_users_file_alone_is_published_hashed_only() -> None:
    header = "Employee_ID,Username,Email,Password,First_Name,Building_Names,User_Type\n"
    values, doc = publish_users(header + "T-100,tgreen,,New-Password-2,Terry,North School,1\n")
    assert all(b"New-Password-2" not in value for value in values)
    assert doc["password_hash"].startswith("$argon2id$")
    assert verify_password(doc["password_hash"], "New-Password-2")
    assert doc["password_set_at"] > 10


def test_a_users_file_without_a_password_column_keeps_the_published_hash() -> None:
    header = "Employee_ID,Username,First_Name,Building_Names,User_Type\n"
    values, doc = publish_users(header + "T-100,tgreen,Terence,North School,1\n")
    assert doc["first_name"] == "Terence"  # the change that made it publish
    assert (doc["password_hash"], doc["password_set_at"]) == (OLD_HASH, 10)
    assert len(values) == 1
