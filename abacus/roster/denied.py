"""Students deleted under a privacy request are kept out of a roster upload (pure).

The worker drops a deleted student's roster records as a last line (they are tombstoned
again), but the importer should not publish them in the first place: a compacted topic
would hold the student's name until it is compacted. So both import formats leave out the
student records and links of every student the deny-list blocks today, the OneRoster state
leaves out their users rows and enrollments, and the import says how many it left out and
how to bring them back (`abacus privacy reenable`). Ids are never printed: a count only.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from abacus.privacy.deny import DenyList
from abacus.roster.records import RosterKind, key_parts

__all__ = ["drop_denied", "skipped_note"]

# Where a kind's key names its student: (district, student) and (district, employee, student).
_STUDENT_PART = {RosterKind.STUDENTS: 1, RosterKind.LINKS: 2}


def drop_denied(
    fields: MutableMapping[RosterKind, dict[str, dict[str, Any]]],
    district_id: str,
    deny: DenyList,
    at: datetime,
) -> set[str]:
    """Remove, in place, the student records and links of students the deny-list blocks
    at ``at``; return those students' ids."""
    dropped: set[str] = set()
    if not len(deny):
        return dropped
    for kind, part in _STUDENT_PART.items():
        records = fields.get(kind)
        if not records:
            continue
        for key in list(records):
            student_id = key_parts(kind, key)[part]
            if deny.denies(district_id, student_id, at):
                del records[key]
                dropped.add(student_id)
    return dropped


def skipped_note(count: int) -> str:
    """The import's line about the students it left out (none: empty)."""
    if not count:
        return ""
    who = "1 student was" if count == 1 else f"{count:,} students were"
    return (
        f"{who} not imported: deleted under a privacy request (they stay out until a"
        " district admin re-enables them: abacus privacy reenable)"
    )
