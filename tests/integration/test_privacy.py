"""Deletion end to end on the real broker and ClickHouse: a simulated district ingested and
exported, 3 of its students deleted (every catalog table, the roster topics, export files,
replayed events, re-rostering, the DLQ, the receipt and its verification, the audit trail),
then a second district deleted whole while the first stays exactly as the truth says.

One worker for the module; the tests run in order and build on each other (starting a
worker costs ~8 s). Both districts use the same student ids, so any deletion that crossed
a district would show.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from abacus.catalog import TABLES, student_tables
from abacus.embedded.broker import EmbeddedBroker
from abacus.kafka.compacted import publish, read_latest
from abacus.privacy.plan import content_tables, student_plan
from abacus.roster import records as rec
from abacus.simulator import SimStudent, SimulationConfig, simulate
from tests.support.export_truth import expected_export, norm_grade, read_csv
from tests.support.oneroster import from_upload
from tests.support.produce import produce_events, wait_consumed
from tests.support.stack import Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
MAPLE, BIRCH = "maple-valley", "birch-lake"
TZ = "America/Chicago"
START, END, YEAR_START = date(2026, 4, 20), date(2026, 5, 15), date(2025, 8, 15)
GONE = ("20001", "20002", "20017")  # two of teacher 0101's students and one other
ADMIN, DISTRICT_USER, TEACHER = "0501", "0401", "0101"
KEY = "s" * 32


def district_roster(root: Path, district: str, name: str) -> Path:
    folder = root / district
    shutil.copytree(EXAMPLES, folder)
    toml = (folder / "district.toml").read_text()
    toml = toml.replace('district_id = "maple-valley"', f'district_id = "{district}"')
    (folder / "district.toml").write_text(toml.replace("Maple Valley Unified", name))
    return folder


def events_of(roster: Path, district: str, seed: int) -> list[dict[str, Any]]:
    students = [
        SimStudent(s["StudentID"], norm_grade(s["Grade"]))
        for s in read_csv(roster / "2_students.csv")
    ]
    return simulate(students, SimulationConfig(district, TZ, START, END, seed=seed))


@pytest.fixture(scope="module")
def rosters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rosters")
    return {MAPLE: district_roster(root, MAPLE, "Maple"), BIRCH: district_roster(root, BIRCH, "B")}


@pytest.fixture(scope="module")
def events(rosters: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    return {
        MAPLE: events_of(rosters[MAPLE], MAPLE, 31),
        BIRCH: events_of(rosters[BIRCH], BIRCH, 32),
    }


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
    rosters: dict[str, Path],
    events: dict[str, list[dict[str, Any]]],
) -> Iterator[Stack]:
    s = Stack(broker.bootstrap, tmp_path_factory.mktemp("privacy-home"),
              extra_env={"ABACUS_WEB__SIGNING_KEY": KEY})  # fmt: skip
    s.start_worker()
    for district, folder in rosters.items():
        s.run("roster", "import", str(folder), "--district", district)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 2 * 49, 60, "rosters")
    wait_consumed(s, produce_events(s, events[MAPLE] + events[BIRCH], batch_share=0.3))
    yield s
    s.close()


def export(stack: Stack, district: str, requester: str) -> dict[str, Any]:
    proc = stack.run(
        "export", "request", "--district", district, "--requester", requester, "--wait",
        "--start", START.isoformat(), "--end", END.isoformat(),
    )  # fmt: skip
    return dict(json.loads(proc.stdout.splitlines()[1]))


def delete(stack: Stack, *args: str) -> tuple[dict[str, Any], str]:
    proc = stack.run("privacy", "delete", "--requester", ADMIN, "--wait", *args)
    lines = proc.stdout.splitlines()
    return json.loads("\n".join(lines[1:-1])), lines[-1]


def truth(roster: Path, evs: list[dict[str, Any]], tmp: Path, drop: tuple[str, ...]) -> Any:
    """The export the truth model computes for everyone but ``drop``."""
    folder = tmp / "truth-roster"
    shutil.copytree(roster, folder, dirs_exist_ok=True)
    lines = (roster / "2_students.csv").read_text().splitlines()
    kept = [ln for ln in lines if ln.split(",")[0] not in drop]
    (folder / "2_students.csv").write_text("\n".join(kept) + "\n")
    return expected_export(folder, evs, TZ, START, END, YEAR_START, None, "both")


def csv_table(path: str) -> list[list[str]]:
    """The header, then the rows."""
    text = Path(path).read_bytes().decode()
    return list(csv.reader(io.StringIO(text, newline="")))


def csv_rows(path: str) -> list[list[str]]:
    return csv_table(path)[1:]


def differences(export_doc: dict[str, Any], want: list[list[str]]) -> str:
    """Where an export's CSV differs from the truth's rows: per student and column, the
    truth's value and the export's, and where the export read its sums (its manifest)."""
    header, *rows = csv_table(export_doc["path"])
    got = {r[3]: r for r in rows}
    truth_rows = {r[3]: r for r in want}
    out: list[str] = []
    for sid in sorted(got.keys() | truth_rows.keys()):
        g, w = got.get(sid), truth_rows.get(sid)
        if g is None or w is None:
            out.append(f"student {sid}: {'not in the export' if g is None else 'not in the truth'}")
            continue
        out += [
            f"student {sid}, {name}: truth {a!r}, export {b!r}"
            for name, a, b in zip(header, w, g, strict=True)
            if a != b
        ]
    if not out and rows != want:
        out.append("the same rows in another order")
    if out:
        manifest = json.loads(Path(export_doc["manifest"]).read_text())
        marks = manifest.get("rollup_watermark") or {}
        out.insert(
            0,
            f"the export read the {manifest.get('aggregates')} (rollups closed through "
            f"{marks.get('closed_through')}, late keys rebuilt through "
            f"{marks.get('late_keys_rebuilt')} of {marks.get('late_keys_written')}):",
        )
    return "\n".join(out)


class State:
    """What the tests hand on to the next one."""

    before: dict[str, dict[str, Any]]
    receipt: dict[str, Any]
    receipt_path: Path


state = State()


def send_garbage(stack: Stack, *keys: str) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap)
    for key in keys:
        producer.send(stack.topic("events"), key=key.encode(), value=b"\x00not an event").get(30)
    producer.close()


def _student(identifier: str) -> dict[str, str]:
    return {"role": "student", "identifier": identifier, "givenName": "Ann"}


# The OneRoster importer's state buckets (abacus/roster/oneroster/state.py) as a OneRoster
# district would have them: users u-a (20001) and u-d (20002) are deleted below, u-b (20005)
# stays; an older version of the first bucket holds 20001 too; birch-lake has a 20001 too.
STATE = [
    (MAPLE, "users.csv|00000", 1000, {"u-a": _student("20001"), "u-b": _student("20005")}),
    (MAPLE, "users.csv|00000", 2000, {"u-a": _student("20001"), "u-b": _student("20005"),
                                      "u-c": {"role": "teacher", "identifier": "0101"}}),
    (MAPLE, "users.csv|00001", 2000, {"u-d": _student("20002")}),
    (MAPLE, "enrollments.csv|00000", 2000, {"e1": {"userSourcedId": "u-a", "role": "student"},
                                            "e2": {"userSourcedId": "u-b", "role": "student"}}),
    (MAPLE, "classes.csv|00000", 2000, {"c1": {"title": "Math 20001"}}),
    (BIRCH, "users.csv|00000", 2000, {"u-a": _student("20001")}),
]  # fmt: skip


def test_the_oneroster_state_buckets_are_stored(stack: Stack) -> None:
    t = stack.settings.topics
    topic = t.name(t.roster_oneroster)
    records = [
        (topic, f"{district}|{key}".encode(),
         rec.encode_value(district, "imp-or", at, True,
                          {"file": key.split("|")[0], "buckets": 2, "rows": rows}))
        for district, key, at, rows in STATE
    ]  # fmt: skip
    stored = "abacus_roster_records_total{kind=oneroster_state,outcome=stored}"
    # The older version first, in a batch of its own (one insert keeps one version per key).
    publish(stack.settings, records[:1])
    wait_until(lambda: stack.metrics().get(stored, 0) >= 1, 30, "the older version stored")
    publish(stack.settings, records[1:])
    wait_until(lambda: stack.metrics().get(stored, 0) >= len(STATE), 30, "state stored")


def test_before_the_deletion_exports_and_dead_letters_hold_the_students(stack: Stack) -> None:
    send_garbage(stack, GONE[1], "20030")
    wait_until(lambda: stack.metric_sum("abacus_dead_letters_total") == 2, 30, "dead letters")
    state.before = {who: export(stack, MAPLE, who) for who in (DISTRICT_USER, TEACHER)}
    ids = {r[3] for r in csv_rows(state.before[DISTRICT_USER]["path"])}
    assert set(GONE) <= ids
    assert {"20001", "20002"} <= {r[3] for r in csv_rows(state.before[TEACHER]["path"])}


def test_only_a_district_admin_may_delete(stack: Stack) -> None:
    proc = stack.run(
        "privacy", "delete", "--district", MAPLE, "--student", GONE[0], "--requester",
        DISTRICT_USER, "--wait", check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "only a district admin" in proc.stderr


def test_deleting_three_students_reaches_every_table_topic_and_export_file(
    stack: Stack, rosters: dict[str, Path]
) -> None:
    args = ["--district", MAPLE, *(a for sid in GONE for a in ("--student", sid))]
    receipt, path = delete(stack, *args, "--reason", "parent request")
    state.receipt, state.receipt_path = receipt, Path(path)
    assert json.loads(state.receipt_path.read_text()) == receipt
    assert receipt["verified"] is True
    assert receipt["request"]["students"] == list(GONE)
    tables = {t["table"]: t for t in receipt["tables"]}
    # The receipt covers exactly the catalog's per-student tables (the dead letters matched
    # by content): a table added to the catalog is covered without a code change.
    planned = {s.table.name for s in student_plan(MAPLE, "x")} | {t.name for t in content_tables()}
    assert planned == {t.name for t in student_tables()}
    assert set(tables) == planned
    assert tables["dead_letters"]["rows"] == 1  # the garbage keyed by one of them
    assert all(t["result"] == 0 for t in tables.values())
    for name in ("events", "daily_facts", "lesson_facts", "roster_students", "roster_links"):
        assert tables[name]["rows"] > 0, name
    # Every stored version of the OneRoster buckets holding them (users, enrollments): the
    # users bucket's two versions, 20002's bucket and the enrollments bucket.
    assert tables["roster_oneroster_state"]["rows"] == 4
    files = {f["path"]: f["action"] for f in receipt["export_files"]}
    district_file = Path(state.before[DISTRICT_USER]["path"])
    teacher_file = Path(state.before[TEACHER]["path"])
    assert files[str(district_file.relative_to(stack.home))] == "regenerated"
    assert files[str(teacher_file.relative_to(stack.home))] == "regenerated"
    # Regenerated: the same file minus their rows, the manifest in step with it.
    before = state.before[DISTRICT_USER]
    now_rows = csv_rows(before["path"])
    assert {r[3] for r in now_rows}.isdisjoint(GONE)
    assert len(now_rows) == before["rows"] - 3
    manifest = json.loads(Path(before["manifest"]).read_text())
    assert manifest["rows"] == len(now_rows)
    assert manifest["redactions"][0]["privacy_request"] == receipt["request"]["request_id"]

    # Compacted topics: the last record under each of their keys is a tombstone.
    settings = stack.settings
    t = settings.topics
    latest = read_latest(settings, [t.name(t.roster_students), t.name(t.roster_links)])
    students = latest[t.name(t.roster_students)]
    for sid in GONE:
        assert students[f"{MAPLE}|{sid}".encode()] is None
        assert students[f"{BIRCH}|{sid}".encode()] is not None  # the other district's
    links = latest[t.name(t.roster_links)]
    gone_links = [k for k in links if k.decode().startswith(MAPLE) and k.decode().endswith(GONE)]
    assert gone_links
    assert all(links[k] is None for k in gone_links)
    # The OneRoster state buckets: rewritten without them, or tombstoned when left empty.
    state_topic = t.name(t.roster_oneroster)
    buckets = read_latest(settings, [state_topic])[state_topic]
    assert buckets[f"{MAPLE}|users.csv|00001".encode()] is None
    users = rec.fields_of(rec.decode_value(buckets[f"{MAPLE}|users.csv|00000".encode()]))
    assert sorted(users["rows"]) == ["u-b", "u-c"]
    assert buckets[f"{BIRCH}|users.csv|00000".encode()] is not None


def test_the_receipt_verifies_and_a_tampered_one_fails(stack: Stack, tmp_path: Path) -> None:
    request_id = state.receipt["request"]["request_id"]
    printed = json.loads(stack.run("privacy", "receipt", request_id).stdout)
    assert printed == state.receipt
    proc = stack.run("privacy", "verify", str(state.receipt_path))
    report = json.loads(proc.stdout)
    assert report["verified"] is True
    assert {t["table"] for t in report["tables"]} == {t["table"] for t in state.receipt["tables"]}
    tampered = json.loads(state.receipt_path.read_text())
    tampered["tables"][0]["rows"] += 1
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    proc = stack.run("privacy", "verify", str(bad), check=False)
    assert proc.returncode == 1
    assert "does not match" in proc.stderr


def test_replayed_events_re_rostering_and_dead_letters_bring_nothing_back(
    stack: Stack, rosters: dict[str, Path], events: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:  # fmt: skip
    theirs = [e for e in events[MAPLE] if e["student_id"] in GONE]
    denied = stack.metric_sum("abacus_events_denied_total")
    dead = stack.metric_sum("abacus_dead_letters_total")
    ends = produce_events(stack, theirs, batch_share=0.5, seed=9)
    send_garbage(stack, GONE[0])
    wait_consumed(stack, ends)
    wait_until(
        lambda: stack.metric_sum("abacus_events_denied_total") >= denied + len(theirs) + 1,
        30, "denied events counted",
    )  # fmt: skip
    assert stack.metric_sum("abacus_dead_letters_total") == dead
    # The district uploads its roster again with them still on it, in both formats: the
    # importer leaves them out and says how many; the OneRoster state keeps none of their rows.
    t = stack.settings.topics
    students_topic, state_topic = t.name(t.roster_students), t.name(t.roster_oneroster)
    note = "3 students were not imported: deleted under a privacy request"
    assert note in stack.run("roster", "import", str(rosters[MAPLE]), "--district", MAPLE).stdout
    package = from_upload(rosters[MAPLE]).write_zip(tmp_path / "oneroster.zip")
    assert note in stack.run("roster", "import", str(package), "--district", MAPLE).stdout
    latest = read_latest(stack.settings, [students_topic, state_topic])
    assert all(latest[students_topic][f"{MAPLE}|{sid}".encode()] is None for sid in GONE)
    buckets = [rec.decode_value(v) for k, v in latest[state_topic].items()
               if v is not None and k.startswith(f"{MAPLE}|".encode())]  # fmt: skip
    identifiers = {r.get("identifier") for b in buckets for r in rec.fields_of(b)["rows"].values()}
    assert "20005" in identifiers
    assert not identifiers & set(GONE)
    # A record published all the same (an older importer, a hand-made record) is dropped by
    # the worker and its key tombstoned again.
    other = rec.fields_of(rec.decode_value(latest[students_topic][f"{MAPLE}|20005".encode()]))
    fields = {**other, "student_id": GONE[0]}
    record = rec.encode_value(MAPLE, "imp-old", 1, True, fields)
    publish(stack.settings, [(students_topic, f"{MAPLE}|{GONE[0]}".encode(), record)])
    wait_until(
        lambda: stack.metrics().get(
            "abacus_roster_records_total{kind=students,outcome=denied}", 0) >= 1,
        30, "the re-published student dropped",
    )  # fmt: skip

    def tombstoned_again() -> bool:
        latest = read_latest(stack.settings, [students_topic])[students_topic]
        return latest[f"{MAPLE}|{GONE[0]}".encode()] is None

    wait_until(tombstoned_again, 30, "the re-published student tombstoned again")
    # The dead letter a deleted student had before the deletion is never shown nor replayed.
    listed = stack.run("dlq", "list", "--json")
    assert [
        json.loads(line)["source_offset"] is not None for line in listed.stdout.splitlines()
    ] == [True]
    assert "1 dead letter(s) of deleted students not shown" in listed.stderr
    replay = stack.run("dlq", "replay", "--all", "--dry-run")
    assert "would replay 1 of 1" in replay.stdout
    assert "skipped 1 dead letter(s) of deleted students" in replay.stdout


def test_everyone_else_is_unchanged_field_by_field(
    stack: Stack, rosters: dict[str, Path], events: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:  # fmt: skip
    fresh = export(stack, MAPLE, DISTRICT_USER)
    rows = csv_rows(fresh["path"])
    want = truth(rosters[MAPLE], events[MAPLE], tmp_path, GONE)
    assert len(rows) == len(want) == 40 - 3
    assert rows == want, differences(fresh, want)
    # The regenerated earlier export equals it too: same snapshot, minus the three.
    before = state.before[DISTRICT_USER]
    assert csv_rows(before["path"]) == want, differences(before, want)


def test_a_district_deletion_leaves_the_other_district_untouched(
    stack: Stack, rosters: dict[str, Path], events: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:  # fmt: skip
    birch_export = export(stack, BIRCH, DISTRICT_USER)
    receipt, _ = delete(stack, "--district", BIRCH, "--all-district")
    assert receipt["verified"] is True
    assert {f["path"] for f in receipt["export_files"]} >= {
        str(Path(birch_export["path"]).relative_to(stack.home))
    }
    assert not (stack.settings.export_dir / BIRCH).exists()
    fresh = export(stack, MAPLE, DISTRICT_USER)
    want = truth(rosters[MAPLE], events[MAPLE], tmp_path, GONE)
    assert csv_rows(fresh["path"]) == want, differences(fresh, want)
    proc = stack.run("export", "request", "--district", BIRCH, "--requester", DISTRICT_USER,
                     "--ytd", "--wait", check=False)  # fmt: skip
    assert "unknown district" in proc.stderr
    t = stack.settings.topics
    latest = read_latest(stack.settings, [t.name(t.district_config), t.name(t.roster_users)])
    assert latest[t.name(t.district_config)][BIRCH.encode()] is None
    assert all(v is None for k, v in latest[t.name(t.roster_users)].items()
               if k.startswith(f"{BIRCH}|".encode()))  # fmt: skip


def test_the_audit_trail_has_the_deletions_and_the_exports(stack: Stack) -> None:
    proc = stack.run("audit", "list", "--district", MAPLE, "--json")
    entries = [json.loads(line) for line in proc.stdout.splitlines()]
    actions = [e["action"] for e in entries]
    assert {"export.accepted", "deletion.requested", "deletion.completed"} <= set(actions)
    assert "deletion.failed" in actions  # the refused non-admin request
    assert not any(sid in json.dumps(entries) for sid in GONE)


def test_afterwards_no_table_holds_them_and_the_district_is_gone(stack: Stack) -> None:
    assert stack.stop_worker() == 0
    gone = "', '".join(GONE)
    per_student = [
        f"SELECT 'student:{t.name}', count() FROM abacus.{t.name} "
        f"WHERE {t.district_column} = '{MAPLE}' AND {t.student_column or 'event_id'} IN "
        + (f"('{gone}')" if t.student_column else "(SELECT event_id FROM abacus.events "
           f"WHERE student_id IN ('{gone}'))")
        for t in student_tables()
        if t.district_column is not None and (t.student_column or t.student_link)
    ]  # fmt: skip
    whole = [
        f"SELECT 'district:{t.name}', count() FROM abacus.{t.name} "
        f"WHERE {t.district_column} = '{BIRCH}'"
        + (" AND action NOT LIKE 'deletion.%'" if t.name == "audit_log" else "")
        for t in TABLES
        if t.district_column is not None and not t.privacy_record
    ]
    counts = dict(stack.query(" UNION ALL ".join(per_student + whole)))
    assert counts == dict.fromkeys(counts, 0)
    with_district = {t.name for t in TABLES if t.district_column and not t.privacy_record}
    assert {k for k in counts if k.startswith("district:")} == {
        f"district:{name}" for name in with_district
    }
    assert {k for k in counts if k.startswith("student:")} == {
        f"student:{t.name}"
        for t in student_tables()
        if t.district_column and (t.student_column or t.student_link)
    }
    # The OneRoster state (no column names a student): no stored version, old or new, holds
    # their users rows or enrollments — neither the buckets the deletion rewrote without them
    # nor those of the OneRoster package imported after it.
    state_docs = stack.query(
        "SELECT key, doc FROM abacus.roster_oneroster_state WHERE district_id = {d:String}",
        d=MAPLE,
    )
    assert {key for key, _ in state_docs} >= {
        f"{MAPLE}|users.csv|00000", f"{MAPLE}|enrollments.csv|00000", f"{MAPLE}|classes.csv|00000",
    }  # fmt: skip
    for _, doc in state_docs:
        assert '"u-a"' not in doc
        assert '"u-d"' not in doc
        assert not any(f'"identifier":"{sid}"' in doc for sid in GONE)
    assert sum('"identifier":"20005"' in doc for _, doc in state_docs) == 2  # before, after
    # Dead letters name no district: the two undecodable ones went with their keys, 20002's
    # with the students, 20030's with birch-lake, which has a 20030 too (privacy wins).
    assert stack.query("SELECT count() FROM abacus.dead_letters") == [[0]]
    # The other district's students with the same ids are all there.
    left = stack.query(
        "SELECT count(DISTINCT student_id) FROM abacus.events WHERE district_id = {d:String}",
        d=MAPLE,
    )
    assert left == [[40 - 3]]
    # The deletion's own record: its request and the deny-list, kept on purpose.
    kept = stack.query("SELECT kind, status FROM abacus.privacy_requests FINAL ORDER BY kind")
    assert ["district", "completed"] in kept
    assert ["students", "completed"] in kept


def test_retention_deletes_raw_events_of_past_school_years_and_keeps_the_aggregates(
    stack: Stack,
) -> None:
    """The simulated spring is in the previous school year: kept with the default (two
    school years), deleted when only the current one is kept; its facts stay."""
    facts = stack.query("SELECT count() FROM abacus.daily_facts WHERE district_id = {d:String}",
                        d=MAPLE)  # fmt: skip
    stack.extra_env.update(
        ABACUS_RETENTION__EVENTS_SCHOOL_YEARS="1", ABACUS_RETENTION__FIRST_RUN_S="0"
    )
    stack.start_worker()
    wait_until(
        lambda: stack.metrics().get("abacus_retention_deleted_rows_total{table=events}", 0) > 0,
        60, "retention to run",
    )  # fmt: skip
    entries = [json.loads(x) for x in stack.run("audit", "list", "--district", MAPLE, "--json")
               .stdout.splitlines()]  # fmt: skip
    assert any(e["action"] == "retention.applied" and e["target"] == "events" for e in entries)
    assert stack.stop_worker() == 0
    left = stack.query("SELECT count() FROM abacus.events WHERE district_id = {d:String}", d=MAPLE)
    assert left == [[0]]
    assert (
        stack.query(
            "SELECT count() FROM abacus.daily_facts WHERE district_id = {d:String}", d=MAPLE
        )
        == facts
    )
