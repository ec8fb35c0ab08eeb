"""The Student Data Export computed independently from the roster files and the events.

Plain Python over the inputs (roster CSVs, produced events): no product code except the
configured cut-score table (data) and the column names of the document.
"""

from __future__ import annotations

import csv
import math
from datetime import date
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

from abacus.district import DEFAULT_CUT_SCORES_TABLE
from tests.support.truth import daily_truth, passes_truth, unique_events

GRADES = ["PK", "K", *(str(n) for n in range(1, 13))]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)
        ]


def norm_grade(raw: str) -> str:
    up = raw.upper()
    return "K" if up in ("K", "KG") else "PK" if up == "PK" else str(int(raw))


def hhmm(ms: float) -> str:
    minutes = int(ms) // 60000
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def avg(total: float, count: float) -> str:
    return "" if not count else str(math.floor(Fraction(total) / Fraction(count) + Fraction(1, 2)))


def nce(p: int) -> int:
    value = 50 + 21.06 * NormalDist().inv_cdf(p / 100)
    return max(1, min(99, math.floor(value + 0.5)))


def level(quantile: int, grade: str) -> str:
    if grade == "PK":
        return ""
    thresholds = DEFAULT_CUT_SCORES_TABLE[grade]
    label = thresholds[0][1]  # below the first threshold: still the lowest label
    for minimum, name in thresholds:
        if quantile >= minimum:
            label = name
    return label


def quantile_text(q: int) -> str:
    return f"EM{-q}Q" if q < 0 else f"{q}Q"


def expected_export(
    roster: Path,
    events: list[dict[str, Any]],
    tz: str,
    start: date,
    end: date,
    year_start: date,
    students_in_scope: set[str] | None,
    product: str,
) -> list[list[str]]:
    zone = ZoneInfo(tz)
    users = {u["Employee_ID"]: u for u in read_csv(roster / "1_users.csv")}
    teachers: dict[str, set[tuple[str, str]]] = {}
    for link in read_csv(roster / "3_teacher_students.csv"):
        u = users[link["EmployeeID"]]
        teachers.setdefault(link["StudentID"], set()).add((u["First_Name"], u["Last_Name"]))
    uniq = unique_events(events)
    daily = daily_truth(uniq, tz)
    passes = passes_truth(uniq, tz)
    rows = []
    for s in read_csv(roster / "2_students.csv"):
        sid = s["StudentID"]
        if students_in_scope is not None and sid not in students_in_scope:
            continue
        grade = norm_grade(s["Grade"])
        mine = [e for e in uniq if e["student_id"] == sid]
        in_range = [e for e in mine if start <= e["occurred_at"].astimezone(zone).date() <= end]
        if in_range:
            env = max(in_range, key=lambda e: e["occurred_at"])["product"]
        else:
            env = "prek2" if GRADES.index(grade) <= 3 else "g3plus"
        if product != "both" and env != product:
            continue
        g3 = env == "g3plus" or any(
            e["product"] == "g3plus"
            for e in mine
            if e["occurred_at"].astimezone(zone).date() <= end
        )
        pk2 = env == "prek2" or any(
            e["product"] == "prek2" for e in mine if e["occurred_at"].astimezone(zone).date() <= end
        )
        tot: dict[str, float] = {}
        for (student, day), values in daily.items():
            if student == sid and start <= day <= end:
                for k, v in values.items():
                    tot[k] = tot.get(k, 0) + v

        def t(key: str, tot: dict[str, float] = tot) -> float:
            return tot.get(key, 0)

        my_passes = [p for p in passes.get(sid, []) if start <= p[0] <= end]
        on_grade = sum(1 for p in my_passes if GRADES.index(p[2]) >= GRADES.index(grade))
        bench_cells: list[str] = []
        latest: tuple[Any, str] | None = None
        for number in (1, 2, 3):
            taken = [
                e
                for e in mine
                if e["event_type"] == "benchmark_completed"
                and e["benchmark_number"] == number
                and year_start <= e["occurred_at"].astimezone(zone).date() <= end
            ]
            if not taken:
                bench_cells += [""] * (5 if number == 2 else 6)
                continue
            b = max(taken, key=lambda e: e["occurred_at"])
            day = b["occurred_at"].astimezone(zone).date()
            pct = b["percentile_rank"]
            show_pct = grade != "PK" and pct is not None and (grade != "K" or 4 <= day.month <= 7)
            perf = level(b["quantile_measure"], grade)
            block = [perf] + ([] if number == 2 else [b["instructional_level"]])
            block += [
                quantile_text(b["quantile_measure"]),
                day.isoformat(),
                str(pct) if show_pct else "",
                str(nce(pct)) if show_pct else "",
            ]
            bench_cells += block
            if latest is None or b["occurred_at"] > latest[0]:
                latest = (b["occurred_at"], perf)
        g = (lambda v: v) if g3 else (lambda v: "")
        rows.append(
            [
                s["First"],
                s["Last"],
                s.get("District_Data_1", ""),
                sid,
                s.get("District_Data_2", ""),
                grade,
                "True",
                "True" if s["ELL"] == "Y" else "False",
                "True" if s["SPED"] == "Y" else "False",
                "PreK-2" if env == "prek2" else "Grade 3+",
                s["Building_Name"],
                ";".join(
                    f"{first} {last}"
                    for first, last in sorted(
                        teachers.get(sid, set()), key=lambda n: (n[1].lower(), n[0].lower())
                    )
                ),
                *bench_cells,
                latest[1] if latest else "",
                str(int(t("lessons_started"))),
                str(len(my_passes)),
                str(on_grade),
                str(len(my_passes) - on_grade),
                g(str(sum(1 for p in my_passes if p[1] == "pre"))),
                g(avg(t("pre_quiz_sum"), t("pre_quiz_count"))),
                g(avg(t("post_quiz_sum"), t("post_quiz_count"))),
                str(int(t("problems"))),
                g(str(int(t("points")))),
                str(int(t("tokens"))) if pk2 else "",
                g(str(int(t("math_helps")))),
                g(str(int(t("live_helps")))),
                hhmm(t("school_ms") + t("evening_ms")),
                hhmm(t("school_ms")),
                hhmm(t("evening_ms")),
            ]
        )
    rows.sort(key=lambda r: (r[1], r[0], r[3]))
    return [
        [("'" + c) if c[:1] in ("=", "+", "-", "@") and not _number(c) else c for c in r]
        for r in rows
    ]


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
