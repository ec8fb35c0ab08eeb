"""The /ops page's pure parts: the lag ring buffer's hour, group views, freshness quantiles
over a window of histogram snapshots, the inline SVG chart, and the token check."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from consumers.lag import PartitionLag
from consumers.lag_chart import lag_series, nice_ceiling, render_lag_chart
from consumers.lag_history import GroupSample, LagHistory
from consumers.lag_status import GroupStatus
from consumers.ops_view import FreshnessWindow, group_views, quantile
from streams.web.ops_page import token_matches

SVG = "{http://www.w3.org/2000/svg}"
INF = float("inf")


def sample(at: float, *lags: tuple[int, int], group: str = "g", members: int = 1) -> GroupSample:
    rows = [PartitionLag(group, "events", p, c, e) for p, (c, e) in enumerate(lags)]
    return GroupSample(at, group, members, rows)


def test_the_ring_keeps_the_newest_samples_and_answers_since() -> None:
    history = LagHistory(max_samples=4)
    for at in range(10):
        history.add(sample(float(at), (at, at + 2)))
    assert [s.at for s in history.samples("g")] == [6.0, 7.0, 8.0, 9.0]
    assert [s.at for s in history.samples("g", since=8.5)] == [9.0]
    assert history.samples("nobody") == []
    assert lag_series(history.samples("g")) == [(6.0, 2), (7.0, 2), (8.0, 2), (9.0, 2)]


def test_group_views_show_the_latest_rows_and_the_window_status() -> None:
    history = LagHistory(10)
    # Partition 1's commit never moves while its lag stays: stalled; partition 0 keeps up.
    for at, c0 in ((0.0, 5), (5.0, 9), (10.0, 12)):
        history.add(sample(at, (c0, 12), (3, 8)))
    history.add(sample(10.0, group="idle", members=0))
    views = {v.group: v for v in group_views(history, window_s=60)}
    g = views["g"]
    assert g.status is GroupStatus.STALLED
    assert g.lag == 5
    assert g.measured_at == 10.0
    assert [(p.partition, p.lag, p.status) for p in g.partitions] == [
        (0, 0, GroupStatus.OK),
        (1, 5, GroupStatus.STALLED),
    ]
    assert views["idle"].status is GroupStatus.OK
    assert views["idle"].partitions == []


BUCKETS = [(0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (5.0, 100.0), (INF, 100.0)]


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.05, 0.05), (0.5, 0.42), (0.9, 1.0), (0.95, 3.0), (1.0, 5.0)],
)
def test_quantile_interpolates_like_prometheus(q: float, expected: float) -> None:
    assert quantile(BUCKETS, q) == pytest.approx(expected)


def test_quantile_edges() -> None:
    assert quantile([], 0.5) is None
    assert quantile([(1.0, 0.0), (INF, 0.0)], 0.5) is None
    assert quantile([(1.0, 1.0), (INF, 4.0)], 0.99) == 1.0  # in +Inf: the last finite bound


def test_freshness_window_counts_only_recent_observations() -> None:
    window = FreshnessWindow(max_snapshots=100)
    assert window.recent(300) == []
    window.add(0.0, [(1.0, 50.0), (INF, 50.0)])  # 50 slow-start observations, all <= 1 s
    window.add(200.0, [(1.0, 50.0), (INF, 60.0)])
    window.add(400.0, [(1.0, 50.0), (INF, 80.0)])
    # The last 300 s: the difference to the snapshot at 0 (the newest >= 300 s older).
    assert window.recent(300) == [(1.0, 0.0), (INF, 30.0)]
    assert window.recent(100) == [(1.0, 0.0), (INF, 20.0)]
    # No snapshot old enough: everything since the worker started.
    assert window.recent(1000) == [(1.0, 50.0), (INF, 80.0)]


def test_nice_ceiling() -> None:
    got = [nice_ceiling(v) for v in (0, 1, 1.5, 3, 7, 11, 200, 201, 12_345)]
    assert got == [1, 1, 2, 5, 10, 20, 200, 500, 20_000]


def polyline_points(svg: str, group: str) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)
    line = next(p for p in root.iter(f"{SVG}polyline") if p.get("data-group") == group)
    return [tuple(map(float, xy.split(","))) for xy in line.get("points", "").split()]  # type: ignore[misc]


def test_the_chart_is_valid_svg_scaled_to_the_hour_and_the_peak() -> None:
    now = 10_000.0
    series = {"abacus-ingest": [(now - 4000, 999), (now - 3600, 0), (now - 1800, 50), (now, 100)]}
    svg = render_lag_chart(series, now=now, span_s=3600)
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None
    assert "abacus-ingest: 100 now, at most 100" in (root.findtext(f"{SVG}desc") or "")
    points = polyline_points(svg, "abacus-ingest")
    assert len(points) == 3  # the sample older than the hour is left out
    xs, ys = [x for x, _ in points], [y for _, y in points]
    # Left edge, middle, right edge of the plot; 0 at the bottom, the peak (100) at the top.
    assert xs[0] == 56.0
    assert xs[2] == 628.0
    assert xs[1] == pytest.approx((56 + 628) / 2)
    assert ys[0] == 152.0
    assert ys[2] == 12.0
    assert ys[1] == pytest.approx(82.0)
    assert ">100</text>" in svg
    assert ">-60 min</text>" in svg


def test_the_chart_escapes_group_names_and_says_when_empty() -> None:
    svg = render_lag_chart({'<g&"x>': []}, now=0.0)
    ET.fromstring(svg)
    assert "No samples yet" in svg
    assert "<g&" not in svg
    two = render_lag_chart({"a": [(0.0, 1)], "b": [(0.0, 2)]}, now=0.0)
    strokes = re.findall(r'stroke="(#[0-9a-f]{6})" stroke-width="2"', two)
    assert len(set(strokes)) == 2  # each group its own colour


@pytest.mark.parametrize(
    ("expected", "header", "ok"),
    [
        ("s3cret-token", "Bearer s3cret-token", True),
        ("s3cret-token", "bearer s3cret-token", True),
        ("s3cret-token", "Bearer s3cret-tokem", False),
        ("s3cret-token", "Bearer ", False),
        ("s3cret-token", "Basic s3cret-token", False),
        ("s3cret-token", "s3cret-token", False),
        (None, "Bearer anything", False),
        (None, "Bearer ", False),
        ("", "Bearer ", False),  # an empty setting is no token at all
    ],
)
def test_the_operator_token_check(expected: str | None, header: str, ok: bool) -> None:
    assert token_matches(expected, header) is ok
