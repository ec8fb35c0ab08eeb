"""Split a usage interval into school / evening-weekend milliseconds per LOCAL calendar day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "SCHOOL_END",
    "SCHOOL_START",
    "DayUsage",
    "format_hhmm",
    "is_school_time",
    "split_interval",
]

SCHOOL_START = time(7, 0)
SCHOOL_END = time(16, 0)

_US_PER_MS = 1_000


@dataclass(frozen=True, slots=True)
class DayUsage:
    """Usage that fell on one local calendar day, in whole milliseconds."""

    local_date: date
    school_ms: int
    evening_ms: int

    @property
    def total_ms(self) -> int:
        return self.school_ms + self.evening_ms


def is_school_time(local: datetime) -> bool:
    """Monday-Friday, 07:00 <= wall clock < 16:00 (``local`` is a local wall time)."""
    return local.weekday() < 5 and SCHOOL_START <= local.time() < SCHOOL_END


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone: {tz!r}") from exc


def _to_utc(wall: datetime, zone: ZoneInfo, fold: int) -> datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)


def _exists(wall: datetime, zone: ZoneInfo, instant: datetime) -> bool:
    return instant.astimezone(zone).replace(tzinfo=None) == wall


def _first_instant_at(wall: datetime, zone: ZoneInfo, after: datetime) -> datetime:
    """Earliest UTC instant later than ``after`` at which the local clock reaches ``wall``.

    Ambiguous walls (fall back) take the first occurrence after ``after``; a wall inside a
    spring-forward gap (e.g. a zone that skips midnight) resolves to the transition itself.
    """
    candidates = [_to_utc(wall, zone, fold) for fold in (0, 1)]
    real = [c for c in candidates if _exists(wall, zone, c) and c > after]
    if real:
        return min(real)
    # Gap: before the transition the clock is below ``wall``, after it above. Bisect seconds
    # (tzdata transitions fall on whole seconds).
    lo, hi = min(candidates), max(candidates)
    while hi - lo > timedelta(seconds=1):
        mid = lo + timedelta(seconds=(hi - lo) // timedelta(seconds=1) // 2)
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return max(hi, after + timedelta(microseconds=1))


def _next_boundary_wall(local: datetime) -> datetime:
    """Next 07:00, 16:00 or midnight strictly after the naive local wall time ``local``."""
    day = local.date()
    for t in (SCHOOL_START, SCHOOL_END):
        if local.time() < t:
            return datetime.combine(day, t)
    return datetime.combine(day + timedelta(days=1), time(0))


def _offset_us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def split_interval(start: datetime, end: datetime, tz: str | ZoneInfo) -> list[DayUsage]:
    """Split ``[start, end)`` (aware datetimes) by local school hours in zone ``tz``.

    The interval is cut at every local 07:00, 16:00 and midnight; each piece counts on its
    own local calendar day, school time being Mon-Fri 07:00-16:00 local. Durations are
    absolute (UTC) so DST days are exact. Milliseconds are floored on the offset from
    ``start``, so the day totals add up to exactly ``floor((end - start) / 1 ms)``.
    Returns one entry per local day, in date order; ``[]`` for an empty interval.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    if start > end:
        raise ValueError(f"interval start {start.isoformat()} is after end {end.isoformat()}")
    zone = _zone(tz)
    cur, stop = start.astimezone(UTC), end.astimezone(UTC)
    days: dict[date, list[int]] = {}
    while cur < stop:
        local = cur.astimezone(zone).replace(tzinfo=None)
        nxt = min(_first_instant_at(_next_boundary_wall(local), zone, cur), stop)
        ms = _offset_us(nxt - start) // _US_PER_MS - _offset_us(cur - start) // _US_PER_MS
        bucket = days.setdefault(local.date(), [0, 0])
        bucket[0 if is_school_time(local) else 1] += ms
        cur = nxt
    return [DayUsage(d, school, evening) for d, (school, evening) in sorted(days.items())]


def format_hhmm(ms: int) -> str:
    """``HH:MM`` for a duration in ms; hours may exceed 24, minutes are floored."""
    if ms < 0:
        raise ValueError(f"duration must not be negative: {ms}")
    minutes = ms // 60_000
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
