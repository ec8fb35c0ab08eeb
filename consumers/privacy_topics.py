"""The roster topics of deleted students: tombstones for their keys, and the OneRoster
importer's state buckets rewritten without them (ClickHouse is cleared first: an embedded
broker's topics are restored from it, so nothing deleted is ever put back)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from abacus.kafka.compacted import publish, read_latest
from abacus.privacy.receipt import TopicResult
from abacus.roster import records as rec
from abacus.roster.oneroster.state import without_students
from abacus.settings import AbacusSettings

__all__ = ["clear_roster_keys", "state_rows_holding"]


def _matches(topic_kind: str, key: str, district_id: str, students: Collection[str] | None) -> bool:
    parts = key.split("|")
    if parts[0] != district_id:
        return False
    if students is None:
        return True
    if topic_kind == "students":
        return len(parts) == 2 and parts[1] in students
    return len(parts) == 3 and parts[2] in students  # links: district|employee|student


def clear_roster_keys(
    settings: AbacusSettings, district_id: str, students: Collection[str] | None
) -> list[TopicResult]:
    """Tombstone these students' keys on the compacted roster topics (students, links) and
    rewrite the OneRoster importer's state buckets without them; with ``students`` None,
    tombstone every key of the district on every roster topic, its config and its state."""
    t = settings.topics
    state_topic = t.name(t.roster_oneroster)
    kinds = {t.name(t.roster_students): "students", t.name(t.roster_links): "links"}
    if students is None:
        kinds[t.name(t.roster_users)] = "users"
        kinds[t.name(t.district_config)] = "district"
        kinds[state_topic] = "state"
    latest = read_latest(settings, [*kinds, state_topic])
    out: list[tuple[str, bytes, bytes | None]] = []
    results = []
    for topic, kind in kinds.items():
        keys = [
            key
            for key, value in latest[topic].items()
            if value is not None
            and _matches(kind, key.decode(errors="replace"), district_id, students)
        ]
        out += [(topic, key, None) for key in keys]
        results.append(TopicResult(topic, len(keys)))
    if students is not None:
        rewrites = _state_rewrites(latest[state_topic], district_id, students)
        out += [(state_topic, key, value) for key, value in rewrites.items()]
        emptied = sum(1 for value in rewrites.values() if value is None)
        results.append(TopicResult(state_topic, emptied, len(rewrites) - emptied))
    publish(settings, out)
    return results


def _state_rewrites(
    raw: dict[bytes, bytes | None], district_id: str, students: Collection[str]
) -> dict[bytes, bytes | None]:
    """The district's OneRoster state buckets that hold these students, re-encoded without
    them (same envelope), or None where a bucket is left empty."""
    docs: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        if value is None or not key.startswith(f"{district_id}|".encode()):
            continue
        try:
            docs[key.decode()] = rec.decode_value(value)
        except (rec.BadRecordError, UnicodeDecodeError):
            continue  # the importer ignores these too
    fields = {key: rec.fields_of(doc) for key, doc in docs.items()}
    out: dict[bytes, bytes | None] = {}
    for key, new in without_students(fields, students).items():
        doc = docs[key]
        out[key.encode()] = (
            None
            if new is None
            else rec.encode_value(
                district_id, str(doc["import_id"]), int(doc["imported_at"]),
                bool(doc["is_active"]), new,
            )
        )  # fmt: skip
    return out


def state_rows_holding(
    rows: Sequence[tuple[str, int, int, str]], students: Collection[str]
) -> list[tuple[str, int, int]]:
    """Of the stored OneRoster state rows (key, version, hash, document: every version),
    those holding these students' users rows or their enrollments, named by key, version
    and hash (`abacus.privacy.plan.oneroster_state_step`). A student's sourcedId found in
    any version counts for every version (an old bucket may hold only their enrollments)."""
    fields: dict[str, dict[str, Any]] = {}
    names: dict[str, tuple[str, int, int]] = {}
    for n, (key, version, digest, doc) in enumerate(rows):
        try:
            decoded = rec.decode_value(doc.encode())
        except rec.BadRecordError:
            continue  # the consumer stores only records it could decode
        fields[str(n)] = rec.fields_of(decoded)
        names[str(n)] = (key, version, digest)
    return sorted(names[n] for n in without_students(fields, students))
