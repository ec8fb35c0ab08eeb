"""What a roster upload changes: new, updated, unchanged and deactivated records (pure)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from abacus.roster.records import fields_of

__all__ = ["Change", "RosterDiff", "diff_records"]


@dataclass(frozen=True, slots=True)
class Change:
    """One record to publish: its key, its fields and whether it is active."""

    key: str
    fields: dict[str, Any]
    is_active: bool


@dataclass(slots=True)
class RosterDiff:
    changes: list[Change] = field(default_factory=list)
    new: int = 0
    updated: int = 0  # a changed field, or a record active again after a deactivation
    unchanged: int = 0  # not published again
    deactivated: int = 0


def diff_records(
    current: Mapping[str, Mapping[str, Any]],
    incoming: Mapping[str, Mapping[str, Any]],
    *,
    complete: bool = True,
    keep: Collection[str] = (),
) -> RosterDiff:
    """Compare one district's published records (`current`: key -> last document, envelope
    included) with an upload (`incoming`: key -> fields).

    Keys published before but absent now are deactivated (published again with their last
    fields and ``is_active`` false, so history is kept), except when the upload is not
    `complete` (its file was rejected) or the key is in `keep` (its row is present but was
    rejected: a typo must not deactivate a student).
    """
    out = RosterDiff()
    for key, fields in incoming.items():
        before = current.get(key)
        if before is None:
            out.new += 1
        elif before.get("is_active") is True and fields_of(before) == fields:
            out.unchanged += 1
            continue
        else:
            out.updated += 1
        out.changes.append(Change(key, dict(fields), True))
    if not complete:
        return out
    for key, before in current.items():
        if key in incoming or key in keep or before.get("is_active") is not True:
            continue
        out.deactivated += 1
        out.changes.append(Change(key, fields_of(before), False))
    return out
