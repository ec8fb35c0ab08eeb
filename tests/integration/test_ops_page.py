"""The read-only /ops page against a real worker: real lag (ingest paused with SIGSTOP,
records produced meanwhile), group status, dead letters by reason and freshness on the
page; who is refused (nobody, a wrong token, a teacher) and who is let in (the operator
token, a district admin); the page in headless Chromium with axe and its screenshot.
One worker for the module."""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from kafka import KafkaProducer

from abacus.embedded.broker import EmbeddedBroker
from abacus.events.codec import encode_event
from tests.integration.test_prometheus_alerts import _ingest_processes
from tests.support.browser import assert_accessible, chromium
from tests.support.events import sample_event
from tests.support.portal_client import Answer, PortalClient
from tests.support.produce import wait_consumed
from tests.support.stack import Stack, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
D = "maple-valley"
TOKEN = "ops-token-" + "k" * 32
TEACHER = ("pwillow", "Willow-Pass-01")
ADMIN = ("aquill", "Example-Only-1")
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = [(b"H1", b"{not json"), (b"H2", b"{also not json"), (b"H3", b"\x00\x01 garbage")]


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("ops-roster") / "district"
    shutil.copytree(EXAMPLES, folder)
    users = (folder / "1_users.csv").read_text()
    users = re.sub(r"^(0101,pwillow,[^,]*,)", rf"\g<1>{TEACHER[1]}", users, flags=re.M)
    (folder / "1_users.csv").write_text(users)
    s = Stack(
        broker.bootstrap,
        tmp_path_factory.mktemp("ops-home"),
        extra_env={
            "ABACUS_WEB__SIGNING_KEY": "o" * 32,
            "ABACUS_WEB__OPS_TOKEN": TOKEN,
            "ABACUS_WEB__OPS_REFRESH_S": "1",
            "ABACUS_INGEST_PROCESSES": "1",
            "ABACUS_LAG_INTERVAL_S": "1",
            "ABACUS_LAG_WINDOW_S": "3",
        },
    )
    s.start_worker()
    s.run("roster", "import", str(folder), "--district", D)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 99, 60, "roster stored")
    yield s
    s.close()


def send(stack: Stack, records: list[tuple[bytes, bytes]]) -> dict[int, int]:
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    futures = [producer.send(stack.topic("events"), key=k, value=v) for k, v in records]
    producer.flush()
    ends: dict[int, int] = {}
    for future in futures:
        meta = future.get(timeout=30)
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    producer.close()
    return ends


def good(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    events = [sample_event("problem_attempted", student_id=f"{tag}{i:03d}") for i in range(n)]
    return [(e["student_id"].encode(), encode_event(e)) for e in events]


def ingest_rows(page: str, group: str) -> list[tuple[int, int]]:
    """(partition, records behind) of the ingest group's rows in the partition table."""
    rows = re.findall(
        rf'<tr class="partition-row"><td>{re.escape(group)}</td><td>[^<]*</td>'
        r'<td class="num">(\d+)</td><td class="num">[^<]*</td><td class="num">[^<]*</td>'
        r'<td class="num">([\d,]+)</td>',
        page,
    )
    return [(int(p), int(lag.replace(",", ""))) for p, lag in rows]


def group_status(page: str, group: str) -> str:
    match = re.search(
        rf'<tr id="group-{re.escape(group)}"><td>[^<]*</td><td><span class="tag (\w+)"', page
    )
    return match[1] if match else ""


def ops(stack: Stack, headers: dict[str, str] | None = BEARER) -> Answer:
    return PortalClient(stack.url).get("/portal/ops/panel", headers=headers)


def test_nobody_without_a_token_or_an_admin_session_sees_it(stack: Stack) -> None:
    client = PortalClient(stack.url)
    short = client.get("/ops")
    assert (short.status, short.location) == (303, "/portal/ops")
    anonymous = client.get("/portal/ops")
    assert anonymous.status == 303
    assert unquote(anonymous.location) == "/portal/sign-in?next=/portal/ops"
    assert "Records behind" not in anonymous.text
    for header in (f"Bearer {TOKEN[:-1]}x", "Bearer ", f"Basic {TOKEN}", TOKEN):
        for path in ("/portal/ops", "/portal/ops/panel"):
            wrong = client.get(path, headers={"Authorization": header})
            assert wrong.status == 401, (header, path)
            assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="abacus-ops"'
            assert TOKEN not in wrong.text
            assert "Records behind" not in wrong.text
    # A refused token is never logged, only that one was refused.
    log = (stack.home / "worker.log").read_text(errors="replace")
    assert "operator token refused on /portal/ops" in log
    assert TOKEN[:-1] not in log
    teacher = PortalClient(stack.url)
    assert teacher.sign_in(D, *TEACHER).status == 303
    refused = teacher.get("/portal/ops")
    assert refused.status == 403
    assert "Records behind" not in refused.text
    assert teacher.get("/portal/ops/panel").status == 403
    # An htmx poll whose session ended sends the whole page to sign-in.
    polled = PortalClient(stack.url).get(
        "/portal/ops/panel",
        headers={"HX-Request": "true", "HX-Current-URL": f"{stack.url}/portal/ops"},
    )
    assert polled.headers.get("HX-Redirect", "").startswith("/portal/sign-in?next=")


def test_the_token_and_a_district_admin_see_the_same_page(stack: Stack) -> None:
    group = stack.settings.ingest_group
    wait_until(lambda: group_status(ops(stack).text, group) == "ok", 30, "the first sample")
    by_token = PortalClient(stack.url).get("/portal/ops", headers=BEARER)
    assert by_token.status == 200
    assert by_token.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in by_token.headers["Content-Security-Policy"]
    admin = PortalClient(stack.url)
    assert admin.sign_in(D, *ADMIN).status == 303
    page = admin.get("/portal/ops")
    assert page.status == 200
    for answer in (by_token, page):
        assert "<h1>Operations</h1>" in answer.text
        assert f'<polyline data-group="{group}"' in answer.text
        assert f'<tr id="group-{stack.settings.app_id}">' in answer.text  # the agents' group
    partitions = stack.settings.topics.partitions
    assert [p for p, _ in ingest_rows(page.text, group)] == list(range(partitions))
    assert '<a href="/portal/ops" aria-current="page">Operations</a>' in page.text


def test_real_lag_dead_letters_and_freshness_show_on_the_page(stack: Stack) -> None:
    group = stack.settings.ingest_group
    assert stack.worker is not None
    wait_consumed(stack, send(stack, good(20, "F") + HOSTILE), timeout=60)

    def dead_letters_shown() -> bool:
        text = ops(stack).text
        return re.search(r'<td>invalid_json</td><td class="num">2</td>', text) is not None

    wait_until(dead_letters_shown, 30, "the dead letters by reason")
    text = ops(stack).text
    assert re.search(r'<td>undecodable</td><td class="num">1</td>', text)
    assert '<p id="dead-letter-total">3 records sent' in text

    def stored() -> int:  # the freshness figures are as of the monitor's last tick
        found = re.search(r'id="freshness-count">([\d,]+)<', ops(stack).text)
        return int(found[1].replace(",", "")) if found else -1

    wait_until(lambda: stored() >= 20, 30, "freshness of the 20 stored events")
    assert re.search(r'id="freshness-p99">\d+\.\d\d s<', ops(stack).text)

    # Real lag: the ingest process stopped, records sent meanwhile are behind.
    [child] = _ingest_processes(stack.worker.pid)
    os.kill(child, signal.SIGSTOP)
    try:
        ends = send(stack, good(40, "L"))
        wait_until(
            lambda: sum(lag for _, lag in ingest_rows(ops(stack).text, group)) >= 40,
            30,
            "40 records behind on the page",
        )
        wait_until(
            lambda: group_status(ops(stack).text, group) == "stalled", 30, "the group stalled"
        )
        text = ops(stack).text
        rows = dict(ingest_rows(text, group))
        assert sum(rows.values()) == 40  # exactly what was sent during the pause
        assert {p for p, lag in rows.items() if lag} == set(ends)
        assert 'class="tag stalled"' in text
    finally:
        os.kill(child, signal.SIGCONT)
    wait_consumed(stack, ends, timeout=60)
    wait_until(
        lambda: sum(lag for _, lag in ingest_rows(ops(stack).text, group)) == 0,
        30,
        "lag back to 0",
    )
    assert (
        max(int(y) for y in re.findall(r">([\d,]+)</text>", ops(stack).text.replace(",", ""))) >= 50
    )


def test_browser_the_page_refreshes_in_place_and_passes_axe(stack: Stack) -> None:
    group = stack.settings.ingest_group
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{stack.url}/ops")
        assert unquote(page.url).endswith("/portal/sign-in?next=/portal/ops")
        page.fill("#username", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{stack.url}/portal/ops")
        assert page.get_by_role("heading", name="Operations", level=1).is_visible()
        chart = page.get_by_role("img", name=re.compile("Records behind per consumer group"))
        assert chart.is_visible()
        assert page.locator(f'polyline[data-group="{group}"]').count() == 1
        page.evaluate("window.__notReloaded = true")
        before = page.locator("#ops-groups + .table-wrap caption").inner_text()
        wait_until(
            lambda: page.locator("#ops-groups + .table-wrap caption").inner_text() != before,
            15,
            "the panel to refresh",
        )
        assert page.evaluate("window.__notReloaded") is True  # htmx swapped it in place
        assert_accessible(page, "ops")
        context.close()
        # The operator token alone (as a reverse proxy in front of the ops team sends it).
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, extra_http_headers=BEARER
        )
        page = context.new_page()
        page.goto(f"{stack.url}/ops")
        assert page.url == f"{stack.url}/portal/ops"
        assert page.locator(f"tr#group-{group} .tag").inner_text() in {"ok", "lagging", "stalled"}
        assert_accessible(page)
        context.close()
