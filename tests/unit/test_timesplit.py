"""Unit tests for the local-time usage splitter (hand-computed expectations)."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from abacus.domain.timesplit import DayUsage, format_hhmm, split_interval

CHI = "America/Chicago"
CST = timezone(timedelta(hours=-6))
CDT = timezone(timedelta(hours=-5))
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))

H = 3_600_000
M = 60_000


def test_session_crossing_1600_splits_school_and_evening() -> None:
    # Tue 2026-01-13 15:30-16:45 CST.
    got = split_interval(
        datetime(2026, 1, 13, 15, 30, tzinfo=CST), datetime(2026, 1, 13, 16, 45, tzinfo=CST), CHI
    )
    assert got == [DayUsage(date(2026, 1, 13), school_ms=30 * M, evening_ms=45 * M)]


def test_session_crossing_local_midnight_counts_on_each_day() -> None:
    # Wed 23:00 -> Thu 01:30 CST, given as UTC instants.
    got = split_interval(
        datetime(2026, 1, 15, 5, 0, tzinfo=UTC), datetime(2026, 1, 15, 7, 30, tzinfo=UTC), CHI
    )
    assert got == [
        DayUsage(date(2026, 1, 14), 0, 1 * H),
        DayUsage(date(2026, 1, 15), 0, 90 * M),
    ]


def test_friday_afternoon_into_saturday() -> None:
    got = split_interval(
        datetime(2026, 1, 16, 15, 0, tzinfo=CST), datetime(2026, 1, 17, 2, 0, tzinfo=CST), CHI
    )
    assert got == [
        DayUsage(date(2026, 1, 16), 1 * H, 8 * H),
        DayUsage(date(2026, 1, 17), 0, 2 * H),
    ]


def test_whole_weekend_is_evening_time() -> None:
    # Fri 16:00 -> Mon 07:00.
    got = split_interval(
        datetime(2026, 1, 16, 16, 0, tzinfo=CST), datetime(2026, 1, 19, 7, 0, tzinfo=CST), CHI
    )
    assert got == [
        DayUsage(date(2026, 1, 16), 0, 8 * H),
        DayUsage(date(2026, 1, 17), 0, 24 * H),
        DayUsage(date(2026, 1, 18), 0, 24 * H),
        DayUsage(date(2026, 1, 19), 0, 7 * H),
    ]


def test_weekend_daytime_is_not_school_time() -> None:
    got = split_interval(
        datetime(2026, 1, 17, 9, 0, tzinfo=CST), datetime(2026, 1, 17, 12, 0, tzinfo=CST), CHI
    )
    assert got == [DayUsage(date(2026, 1, 17), 0, 3 * H)]


def test_before_0700_into_school_hours() -> None:
    got = split_interval(
        datetime(2026, 1, 12, 6, 15, tzinfo=CST), datetime(2026, 1, 12, 8, 0, tzinfo=CST), CHI
    )
    assert got == [DayUsage(date(2026, 1, 12), school_ms=1 * H, evening_ms=45 * M)]


def test_spring_forward_night_counts_absolute_duration() -> None:
    # 2026-03-08 01:00 CST -> 04:00 CDT is 2 h of real time (02:00-03:00 never happens).
    start = datetime(2026, 3, 8, 1, 0, tzinfo=CST)
    end = datetime(2026, 3, 8, 4, 0, tzinfo=CDT)
    assert end - start == timedelta(hours=2)
    assert split_interval(start, end, CHI) == [DayUsage(date(2026, 3, 8), 0, 2 * H)]


def test_spring_forward_weekend_into_monday_school() -> None:
    # Sat 22:00 CST -> Mon 08:00 CDT: 33 h; Sunday is a 23-hour day.
    got = split_interval(
        datetime(2026, 3, 7, 22, 0, tzinfo=CST), datetime(2026, 3, 9, 8, 0, tzinfo=CDT), CHI
    )
    assert got == [
        DayUsage(date(2026, 3, 7), 0, 2 * H),
        DayUsage(date(2026, 3, 8), 0, 23 * H),
        DayUsage(date(2026, 3, 9), 1 * H, 7 * H),
    ]
    assert sum(d.total_ms for d in got) == 33 * H


def test_fall_back_night_counts_repeated_hour() -> None:
    # 2026-11-01 00:30 CDT -> 03:00 CST: 01:00-02:00 happens twice, 3.5 h of real time.
    start = datetime(2026, 11, 1, 0, 30, tzinfo=CDT)
    end = datetime(2026, 11, 1, 3, 0, tzinfo=CST)
    assert split_interval(start, end, CHI) == [DayUsage(date(2026, 11, 1), 0, 210 * M)]


def test_fall_back_weekend_into_monday_after_1600() -> None:
    # Sat 23:00 CDT -> Mon 16:30 CST: 42.5 h; Sunday is a 25-hour day.
    got = split_interval(
        datetime(2026, 10, 31, 23, 0, tzinfo=CDT), datetime(2026, 11, 2, 16, 30, tzinfo=CST), CHI
    )
    assert got == [
        DayUsage(date(2026, 10, 31), 0, 1 * H),
        DayUsage(date(2026, 11, 1), 0, 25 * H),
        DayUsage(date(2026, 11, 2), 9 * H, 7 * H + 30 * M),
    ]
    assert sum(d.total_ms for d in got) == 42 * H + 30 * M


def test_berlin_weekday_after_dst_start() -> None:
    # Mon 2026-03-30 06:00-17:00 CEST (Berlin moved to CEST on Sun 2026-03-29).
    got = split_interval(
        datetime(2026, 3, 30, 4, 0, tzinfo=UTC), datetime(2026, 3, 30, 15, 0, tzinfo=UTC),
        "Europe/Berlin",
    )  # fmt: skip
    assert got == [DayUsage(date(2026, 3, 30), 9 * H, 2 * H)]


def test_berlin_dst_night_and_winter_afternoon() -> None:
    berlin = "Europe/Berlin"
    spring = split_interval(
        datetime(2026, 3, 29, 1, 0, tzinfo=CET), datetime(2026, 3, 29, 4, 0, tzinfo=CEST), berlin
    )
    assert spring == [DayUsage(date(2026, 3, 29), 0, 2 * H)]
    autumn = split_interval(  # Sun 2026-10-25 01:00 CEST -> 04:00 CET = 4 h
        datetime(2026, 10, 25, 1, 0, tzinfo=CEST), datetime(2026, 10, 25, 4, 0, tzinfo=CET), berlin
    )
    assert autumn == [DayUsage(date(2026, 10, 25), 0, 4 * H)]
    winter = split_interval(
        datetime(2026, 1, 13, 15, 0, tzinfo=CET), datetime(2026, 1, 13, 16, 30, tzinfo=CET), berlin
    )
    assert winter == [DayUsage(date(2026, 1, 13), 1 * H, 30 * M)]


def test_same_instants_split_differently_per_zone() -> None:
    # Tue 2026-01-13 14:00Z-16:00Z: 08:00-10:00 in Chicago, 15:00-17:00 in Berlin.
    start, end = datetime(2026, 1, 13, 14, tzinfo=UTC), datetime(2026, 1, 13, 16, tzinfo=UTC)
    assert split_interval(start, end, CHI) == [DayUsage(date(2026, 1, 13), 2 * H, 0)]
    assert split_interval(start, end, "Europe/Berlin") == [DayUsage(date(2026, 1, 13), H, H)]


def test_zone_whose_midnight_does_not_exist() -> None:
    # Havana springs forward 00:00 -> 01:00 on Sun 2026-03-08 (05:00Z): Sat 23:00 CST ->
    # Sun 02:00 CDT is 1 h on Saturday and 1 h on Sunday.
    got = split_interval(
        datetime(2026, 3, 8, 4, 0, tzinfo=UTC), datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
        "America/Havana",
    )  # fmt: skip
    assert got == [DayUsage(date(2026, 3, 7), 0, H), DayUsage(date(2026, 3, 8), 0, H)]


def test_empty_interval_gives_no_days() -> None:
    t = datetime(2026, 1, 13, 12, tzinfo=UTC)
    assert split_interval(t, t, CHI) == []


def test_sub_millisecond_remainders_are_floored_on_the_total() -> None:
    start = datetime(2026, 1, 13, 21, 59, 59, 999_600, tzinfo=UTC)  # 15:59:59.9996 CST
    end = datetime(2026, 1, 13, 22, 0, 0, 1_000, tzinfo=UTC)  # 1.4 ms later
    got = split_interval(start, end, CHI)
    assert sum(d.total_ms for d in got) == 1


def test_start_after_end_raises() -> None:
    with pytest.raises(ValueError, match="after end"):
        split_interval(
            datetime(2026, 1, 13, 12, tzinfo=UTC), datetime(2026, 1, 13, 11, tzinfo=UTC), CHI
        )


def test_naive_datetimes_and_unknown_zone_raise() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        split_interval(datetime(2026, 1, 13, 11), datetime(2026, 1, 13, 12), CHI)
    t = datetime(2026, 1, 13, 11, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown IANA"):
        split_interval(t, t + timedelta(hours=1), "Mars/Olympus_Mons")


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "00:00"),
        (59_999, "00:00"),
        (3_599_999, "00:59"),
        (36_000_000, "10:00"),
        ((125 * 60 + 5) * 60_000, "125:05"),
        ((125 * 60 + 5) * 60_000 + 59_999, "125:05"),
    ],
)
def test_format_hhmm(ms: int, text: str) -> None:
    assert format_hhmm(ms) == text


def test_format_hhmm_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_hhmm(-1)
