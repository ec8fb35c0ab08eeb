"""Retention (pure): what the daily job deletes, as deletion steps with their cutoffs.

Raw events are kept for ``events_school_years`` school years, the current one included, in
each district's own school year and time zone (2 = the current and the previous); their
pending marks go with them. Audit rows are kept ``audit_days``. The aggregates (facts) and
the roster are not touched: they are what the district's exports are made of, and leave
only by a deletion. Export files expire with their download links (the exports' own
retention). 0 keeps forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from abacus.catalog import AUDIT_LOG, EVENTS, PENDING_FACTS
from abacus.district import DistrictConfig
from abacus.privacy.plan import Step
from abacus.settings import RetentionSettings

__all__ = ["events_cutoff", "retention_steps"]

_AT = "{c:DateTime64(3, 'UTC')}"


def events_cutoff(config: DistrictConfig, years: int, now: datetime) -> datetime:
    """The first instant kept: local midnight of the start of the oldest school year kept."""
    zone = ZoneInfo(config.timezone)
    current = config.school_year_start_for(now.astimezone(zone).date())
    try:
        oldest = current.replace(year=current.year - (years - 1))
    except ValueError:  # a 02-29 school-year start, in a year without one
        oldest = date(current.year - (years - 1), 3, 1)
    return datetime.combine(oldest, time(0), tzinfo=zone).astimezone(UTC)


def _text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def retention_steps(
    configs: Mapping[str, DistrictConfig], settings: RetentionSettings, now: datetime
) -> list[tuple[str, datetime, Step]]:
    """(district or "", cutoff, step) for everything older than what is kept."""
    out: list[tuple[str, datetime, Step]] = []
    if settings.events_school_years:
        for district_id, config in sorted(configs.items()):
            cutoff = events_cutoff(config, settings.events_school_years, now)
            params = (("d", district_id), ("c", _text(cutoff)))
            old = f"district_id = {{d:String}} AND occurred_at < {_AT}"
            marks = (
                "district_id = {d:String} AND event_id IN "  # noqa: S608
                f"(SELECT event_id FROM {{db}}.{EVENTS.name} WHERE {old})"
            )
            out.append((district_id, cutoff, Step(PENDING_FACTS, "delete", marks, marks, params)))
            out.append((district_id, cutoff, Step(EVENTS, "delete", old, old, params)))
    if settings.audit_days:
        cutoff = now - timedelta(days=settings.audit_days)
        where = f"at < {_AT}"
        out.append(("", cutoff, Step(AUDIT_LOG, "delete", where, where, (("c", _text(cutoff)),))))
    return out
