"""Deletion rules (pure): requests, the plan from the catalog, the deny-list, receipts,
pseudonyms and export redaction."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from abacus.catalog import TABLES, student_tables
from abacus.domain.csvcells import EXPORT_HEADER, write_rows
from abacus.errors import PrivacyRequestError
from abacus.events.codec import encode_batch, encode_event, encode_json
from abacus.privacy.deny import (
    DenyEntry,
    DenyList,
    batch_denies,
    decode_entry,
    encode_entry,
    record_students,
)
from abacus.privacy.plan import (
    content_tables,
    dead_letter_step,
    district_plan,
    oneroster_state_step,
    student_plan,
)
from abacus.privacy.pseudonym import pseudonym, pseudonym_key
from abacus.privacy.receipt import (
    ReceiptError,
    TableResult,
    build_receipt,
    check_signature,
    sign,
    verification_queries,
)
from abacus.privacy.redact import redact_csv, redacted_manifest
from abacus.privacy.request import (
    DeletionRequest,
    check_requester,
    parse_request,
    parse_student_list,
)
from abacus.roster.records import encode_value
from consumers.privacy_topics import state_rows_holding

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def request_doc(**fields: object) -> bytes:
    doc = {
        "request_id": "del-1",
        "district_id": "maple",
        "requester": "0501",
        "kind": "students",
        "students": ["S1", "S2"],
    }
    doc.update(fields)
    return json.dumps(doc).encode()


# --- requests ---------------------------------------------------------------------------------


def test_a_valid_request_parses() -> None:
    request = parse_request(request_doc(reason="parent asked"))
    assert request.students == ("S1", "S2")
    assert not request.whole_district
    assert parse_request(request_doc(kind="district", students=[])).whole_district


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": "students", "students": []}, "at least one student"),
        ({"kind": "district"}, "names no students"),
        ({"students": ["S1", "S1"]}, "named twice"),
        ({"students": ["S|1"]}, "printable ASCII"),
        ({"kind": "everything"}, "kind"),
        ({"district_id": "../x"}, "district_id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(PrivacyRequestError, match=reason):
        parse_request(request_doc(**fields))


def test_a_student_list_is_one_id_a_line_or_blank_separated() -> None:
    text = "\ufeffStudentID\n# leavers\n20001,\n  20002  \n\n20003 20004\n"
    assert parse_student_list(text.lstrip("\ufeff")) == ["20001", "20002", "20003", "20004"]
    assert parse_student_list("") == []


def test_a_refusal_never_repeats_a_student_id() -> None:
    with pytest.raises(PrivacyRequestError) as info:
        parse_request(request_doc(students=["Secret|Id"]))
    assert "Secret" not in str(info.value)
    with pytest.raises(PrivacyRequestError, match="not JSON"):
        parse_request(b"\xff")


@pytest.mark.parametrize(("user_type", "ok"), [(4, True), (3, False), (1, False), (None, False)])
def test_only_a_district_admin_may_request(user_type: int | None, ok: bool) -> None:
    request = parse_request(request_doc())
    if ok:
        check_requester(request, user_type)
    else:
        with pytest.raises(PrivacyRequestError):
            check_requester(request, user_type)


# --- the plan ---------------------------------------------------------------------------------


def test_a_student_deletion_reaches_every_per_student_table_of_the_catalog() -> None:
    steps = student_plan("maple", "del-1")
    planned = {s.table.name for s in steps} | {t.name for t in content_tables()}
    assert planned == {t.name for t in student_tables()}
    # The link table is emptied while the events it reads still exist.
    names = [s.table.name for s in steps]
    assert names.index("pending_facts") < names.index("events")
    audit = next(s for s in steps if s.table.name == "audit_log")
    assert audit.action == "pseudonymise"
    assert "UPDATE target = transform(target" in audit.mutation_sql("abacus")


def test_only_the_dead_letters_and_the_oneroster_state_are_matched_by_content() -> None:
    # A per-student table without a district column, or whose rows no column ties to a
    # student (the catalog's `reach` only), needs its own matcher in the consumer.
    assert [t.name for t in content_tables()] == ["roster_oneroster_state", "dead_letters"]
    # No broken SQL from a table without a student column or link (no "None" predicate).
    for step in student_plan("maple", "del-1"):
        assert step.table.student_column or step.table.student_link
        assert "None" not in step.mutation_sql("abacus") + step.check_sql("abacus")
    assert (
        dead_letter_step([]).check_sql("abacus")
        == "SELECT count() FROM abacus.dead_letters WHERE 0"
    )


def test_no_student_id_is_ever_written_into_a_mutation_or_a_check() -> None:
    for step in student_plan("maple", "del-1"):
        for sql in (step.mutation_sql("abacus"), step.check_sql("abacus"), step.count_sql("db")):
            assert "S1" not in sql
            assert "{d:String}" in sql
        assert "privacy_requests" in step.mutation_sql("abacus")
        assert step.parameters == {"d": "maple", "r": "del-1"}


def test_a_district_deletion_reaches_every_table_with_a_district_but_its_own_records() -> None:
    steps = district_plan("maple")
    expected = {t.name for t in TABLES if t.district_column is not None and not t.privacy_record}
    assert {s.table.name for s in steps} == expected
    assert {"districts", "roster_users", "events"} <= expected
    audit = next(s for s in steps if s.table.name == "audit_log")
    assert "NOT LIKE 'deletion.%'" in audit.where


# --- the deny-list ----------------------------------------------------------------------------


def test_a_deleted_student_is_denied_until_reenabled_and_only_from_then_on() -> None:
    deny = DenyList([DenyEntry("maple", "S1", "del-1", T0)])
    later = T0 + timedelta(days=30)
    assert deny.denies("maple", "S1", T0 - timedelta(days=1))
    assert deny.denies("maple", "S1", later)
    assert not deny.denies("maple", "S2", later)
    assert not deny.denies("oak", "S1", later)
    deny.update([DenyEntry("maple", "S1", "del-2", T0, reenabled_at=later)])
    assert deny.denies("maple", "S1", later - timedelta(seconds=1))
    assert not deny.denies("maple", "S1", later)


def test_a_deleted_district_denies_all_its_students() -> None:
    deny = DenyList([DenyEntry("maple", "", "del-9", T0)])
    assert deny.denies("maple", "anyone", T0)
    assert deny.district_denied("maple", T0)
    batch = deny.for_keys([b"anyone"])
    assert batch_denies(batch, "maple", "anyone", 0)
    assert not batch_denies(batch, "oak", "anyone", 0)


def test_a_batch_gets_only_the_entries_its_record_keys_need() -> None:
    reenabled = T0 + timedelta(days=1)
    entries = [DenyEntry("maple", f"S{n}", "del-1", T0) for n in range(1000)]
    entries.append(DenyEntry("oak", "S5", "del-2", T0, reenabled_at=reenabled))
    batch = DenyList(entries).for_keys([b"S5", None, b"X"])
    ms = int(reenabled.timestamp() * 1000)
    assert batch == {("maple", "S5"): None, ("oak", "S5"): ms}
    assert batch_denies(batch, "oak", "S5", ms - 1)
    assert not batch_denies(batch, "oak", "S5", ms)


def test_deny_entries_round_trip_through_their_topic_record() -> None:
    entry = DenyEntry("maple", "S1", "del-1", T0, reenabled_at=T0 + timedelta(hours=1))
    key, value = encode_entry(entry)
    assert key == b"maple|S1"
    assert decode_entry(value) == entry
    assert decode_entry(b"{}") is None


def test_a_raw_record_names_its_students_when_it_can_be_read() -> None:
    event = {
        "event_id": "6f1c2a9e-1b7e-4d2a-9a53-0a9a3b1c0002", "event_type": "points_earned",
        "occurred_at": T0, "district_id": "maple", "student_id": "S1", "product": "g3plus",
        "points": 3,
    }  # fmt: skip
    assert record_students(encode_event(event)) == {("maple", "S1")}
    assert record_students(encode_json(event)) == {("maple", "S1")}
    other = {**event, "student_id": "S2"}
    assert record_students(encode_batch([event, other])) == {("maple", "S1"), ("maple", "S2")}
    # JSON that fails the schema still names its student; garbage names nobody.
    assert record_students(b'{"district_id": "maple", "student_id": "S3"}') == {("maple", "S3")}
    assert record_students(b"\x00\x01garbage") == set()


# --- receipts ---------------------------------------------------------------------------------


def receipt() -> dict[str, object]:
    request = DeletionRequest.model_validate_json(request_doc())
    table = TableResult(
        "events", "delete", 12, "SELECT count() FROM abacus.events WHERE x", {"d": "maple"}, 0
    )
    return build_receipt(
        request, requested_at=T0, completed_at=T0 + timedelta(seconds=3), tables=[table],
        topics=[], files=[], residues=[], software_version="0.1.0",
    )  # fmt: skip


def test_a_signed_receipt_verifies_and_any_change_breaks_it() -> None:
    key = b"k" * 32
    signed = sign(receipt(), key)
    check_signature(signed, key)
    assert signed["rows_removed"] == 12
    assert signed["verified"] is True
    assert [q[0] for q in verification_queries(signed)] == ["events"]
    tampered = json.loads(json.dumps(signed))
    tampered["tables"][0]["rows"] = 11
    with pytest.raises(ReceiptError, match="does not match"):
        check_signature(tampered, key)
    with pytest.raises(ReceiptError, match="does not match"):
        check_signature(signed, b"other key")
    with pytest.raises(ReceiptError, match="not an Abacus"):
        check_signature({"hello": 1}, key)


def test_a_receipt_runs_only_count_queries() -> None:
    doc = receipt()
    doc["tables"][0]["query"] = "ALTER TABLE abacus.events DELETE WHERE 1"  # type: ignore[index]
    with pytest.raises(ReceiptError, match="not a count query"):
        verification_queries(doc)


def test_pseudonyms_are_stable_keyed_and_say_nothing() -> None:
    key = pseudonym_key(b"k" * 32)
    assert key != b"k" * 32
    p = pseudonym(key, "maple", "S1")
    assert p == pseudonym(key, "maple", "S1")
    assert p.startswith("ps-")
    assert len(p) == 35
    assert "S1" not in p
    assert p != pseudonym(key, "oak", "S1")
    assert p != pseudonym(pseudonym_key(b"x" * 32), "maple", "S1")


# --- export redaction -------------------------------------------------------------------------


def export_csv(ids: list[str]) -> bytes:
    out = io.StringIO(newline="")
    width = len(EXPORT_HEADER)
    rows = [["Ada", 'O\'Neil, "Jr"', "u", sid] + ["x"] * (width - 4) for sid in ids]
    write_rows(rows, out, header=EXPORT_HEADER)
    return out.getvalue().encode()


def test_redaction_removes_only_the_students_rows_and_keeps_the_others_byte_for_byte() -> None:
    original = export_csv(["S1", "-5", "S2", "S3"])
    redacted, removed = redact_csv(original, {"S2", "-5"})
    assert removed == 2
    assert redacted == export_csv(["S1", "S3"])
    assert redact_csv(original, {"S9"}) == (original, 0)
    rows = list(csv.reader(io.StringIO(redacted.decode(), newline="")))
    assert [r[3] for r in rows[1:]] == ["S1", "S3"]
    manifest = redacted_manifest(
        {"rows": 4, "sha256": "old"}, redacted, removed=removed, request_id="del-1", at=T0
    )
    assert manifest["rows"] == 2
    assert manifest["sha256"] == hashlib.sha256(redacted).hexdigest()
    assert manifest["bytes"] == len(redacted)
    assert manifest["redactions"][0]["privacy_request"] == "del-1"


def test_oneroster_state_buckets_are_rewritten_without_the_students() -> None:
    from abacus.roster.oneroster.state import without_students

    users = {
        "u1": {"role": "student", "identifier": "S1"},
        "u2": {"role": "student", "identifier": "S2"},
        "t1": {"role": "teacher", "identifier": "S1"},  # staff never match a student id
    }
    docs = {
        "maple|users.csv|00000": {"file": "users.csv", "buckets": 1, "rows": users},
        "maple|enrollments.csv|00000": {
            "file": "enrollments.csv", "buckets": 2,
            "rows": {"e1": {"userSourcedId": "u1"}, "e2": {"userSourcedId": "t1"}},
        },
        "maple|enrollments.csv|00001": {
            "file": "enrollments.csv", "buckets": 2, "rows": {"e3": {"userSourcedId": "u1"}},
        },
        "maple|orgs.csv|00000": {"file": "orgs.csv", "buckets": 1, "rows": {"o1": {"name": "x"}}},
    }  # fmt: skip
    out = without_students(docs, {"S1"})
    assert set(out) == {"maple|users.csv|00000", "maple|enrollments.csv|00000",
                        "maple|enrollments.csv|00001"}  # fmt: skip
    assert set(out["maple|users.csv|00000"]["rows"]) == {"u2", "t1"}  # type: ignore[index]
    assert out["maple|users.csv|00000"]["buckets"] == 1  # type: ignore[index]
    assert set(out["maple|enrollments.csv|00000"]["rows"]) == {"e2"}  # type: ignore[index]
    assert out["maple|enrollments.csv|00001"] is None  # emptied: its tombstone
    assert without_students(docs, {"S9"}) == {}


# --- the OneRoster state (JSON buckets: no column names a student) ----------------------------


def _bucket(file: str, rows: dict[str, dict[str, str]], at: int = 5) -> str:
    fields = {"file": file, "buckets": 1, "rows": rows}
    return encode_value("maple", "imp", at, True, fields).decode()


def test_state_rows_holding_a_student_every_version_and_their_enrollments() -> None:
    s1, s2 = {"role": "student", "identifier": "S1"}, {"role": "student", "identifier": "S2"}
    users_old = _bucket("users.csv", {"u1": s1, "u2": s2}, 4)
    users_new = _bucket("users.csv", {"u2": s2}, 5)
    e1, e2 = {"userSourcedId": "u1", "role": "student"}, {"userSourcedId": "u2", "role": "student"}
    enrol = _bucket("enrollments.csv", {"e1": e1, "e2": e2})
    other = _bucket("enrollments.csv", {"e3": {"userSourcedId": "u2", "role": "student"}})
    classes = _bucket("classes.csv", {"c1": {"title": "S1"}})  # a value equal to the id: kept
    rows = [
        ("maple|users.csv|00000", 4, 11, users_old),
        ("maple|users.csv|00000", 5, 12, users_new),  # a later upload without S1
        ("maple|enrollments.csv|00000", 5, 13, enrol),
        ("maple|enrollments.csv|00001", 5, 14, other),
        ("maple|classes.csv|00000", 5, 15, classes),
        ("maple|users.csv|00001", 5, 16, "not json"),
    ]
    assert state_rows_holding(rows, {"S1"}) == [
        ("maple|enrollments.csv|00000", 5, 13),
        ("maple|users.csv|00000", 4, 11),
    ]
    assert state_rows_holding(rows, {"S9"}) == []


def test_the_oneroster_state_step_names_rows_by_position_and_checks_by_content() -> None:
    step = oneroster_state_step("maple", "del-1", [("maple|users.csv|00000", 4, 11)])
    assert step.table.name == "roster_oneroster_state"
    assert step.action == "delete"
    mutation, check = step.mutation_sql("abacus"), step.check_sql("abacus")
    assert "(key, version, cityHash64(doc)) IN (('maple|users.csv|00000', 4, 11))" in mutation
    assert "{d:String}" in mutation
    # The check also reads every users bucket of the district for the students, who are
    # named only through the request's row (never in the text).
    assert "abacus.privacy_requests" in check
    assert "JSONExtractKeysAndValuesRaw(doc, 'rows')" in check
    assert step.parameters == {"d": "maple", "r": "del-1"}
    empty = oneroster_state_step("maple", "del-1", [])
    assert empty.count_sql("abacus").endswith("WHERE district_id = {d:String} AND 0")
    assert "privacy_requests" in empty.check_sql("abacus")
