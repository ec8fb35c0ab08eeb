"""The worker's front door against a real worker: download paths, signatures, request ids,
export file modes, Faust's own pages, and the refusal to serve the default key publicly.
One worker for the module, with the default signing key (as a careless deployment has it)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from abacus.embedded.broker import EmbeddedBroker, free_port, port_is_open
from abacus.export.links import sign_link
from abacus.kafka.export_requests import new_request_id, send_request, wait_status
from abacus.security import is_loopback
from tests.support.stack import ABACUS, Stack, http_get, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "district"
DISTRICT = "maple-valley"
DEFAULT_KEY = b"change-me-in-production"


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(broker.bootstrap, tmp_path_factory.mktemp("front-door"))
    s.start_worker()
    s.run("roster", "import", str(EXAMPLES), "--district", DISTRICT)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 49, 60, "roster consumed")
    yield s
    s.close()


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV the worker's user can read, outside its export directory."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "f.csv").write_text("secret,data\r\n1,2\r\n")
    return folder


def traversal_link(stack: Stack, folder: Path) -> str:
    """A correctly signed link whose `{district}` part is an absolute path, %2F-encoded."""
    signed = sign_link(
        stack.url,
        f"/exports/{folder}/f.csv",
        key=DEFAULT_KEY,
        expires=int(time.time()) + 600,
        requester="0401",
    )
    query = signed.partition("?")[2]
    return f"{stack.url}/exports/{quote(str(folder), safe='')}/f.csv?{query}"


def non_ascii_sig_link(stack: Stack) -> str:
    expires = int(time.time()) + 600
    return f"{stack.url}/exports/{DISTRICT}/exp-nonascii.csv?expires={expires}&by=0401&sig=%C3%A9"


def export(stack: Stack, request_id: str, requester: str, **fields: Any) -> dict[str, Any]:
    doc = {
        "request_id": request_id,
        "district_id": DISTRICT,
        "requester": requester,
        "product": "both",
        "range": "ytd",
        **fields,
    }
    send_request(stack.settings, doc)
    return wait_status(stack.settings, request_id, 120, district_id=DISTRICT, requester=requester)


def test_a_percent_encoded_district_cannot_reach_files_outside_the_export_dir(
    stack: Stack, outside: Path
) -> None:
    code, body = http_get(traversal_link(stack, outside))
    assert b"secret" not in body
    assert code == 404


def test_a_non_ascii_signature_is_refused_with_403(stack: Stack) -> None:
    code, body = http_get(non_ascii_sig_link(stack))
    assert code == 403, body
    assert json.loads(body) == {"error": "malformed link"}


@pytest.mark.parametrize("page", ["/router/", "/table/", "/graph/", "/assignment/"])
def test_faust_default_pages_are_off(stack: Stack, page: str) -> None:
    assert http_get(stack.url + page)[0] == 404


def test_the_root_leads_to_the_portal_not_to_faust(stack: Stack) -> None:
    code, body = http_get(stack.url + "/")  # redirects followed: / -> /portal/ -> sign-in
    assert code == 200
    assert b"<title>Sign in" in body
    assert b"faust" not in body.lower()


def test_export_files_are_readable_by_the_worker_user_only(stack: Stack) -> None:
    status = export(stack, new_request_id(), "0401")
    assert status["status"] == "completed", status
    for path in (Path(status["path"]), Path(status["manifest"])):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert "expires_at" in status


def test_a_reused_request_id_is_refused_and_overwrites_nothing(stack: Stack) -> None:
    rid = new_request_id()
    first = export(stack, rid, "0401")
    assert first["status"] == "completed", first
    csv_path = Path(first["path"])
    before = csv_path.read_bytes()
    mtime = csv_path.stat().st_mtime_ns

    # Another staff member of the district takes the same id: refused, with the reason.
    reused = export(stack, rid, "0101", product="g3plus")
    assert reused["status"] == "failed"
    assert reused["requester"] == "0101"
    assert f"request id {rid!r} was already used" in reused["reason"]
    # The same requester with a different request under the same id: refused too.
    send_request(
        stack.settings,
        {"request_id": rid, "district_id": DISTRICT, "requester": "0401", "product": "prek2"},
    )
    finals = wait_until(lambda: final_statuses(stack, rid)[2:], 60, "the third final status")
    assert [(d["status"], d["requester"]) for d in final_statuses(stack, rid)] == [
        ("completed", "0401"),
        ("failed", "0101"),
        ("failed", "0401"),
    ]
    assert "already used" in finals[0]["reason"]
    assert csv_path.read_bytes() == before
    assert csv_path.stat().st_mtime_ns == mtime
    # The first requester's link still serves the first export.
    code, body = http_get(first["link"])
    assert (code, body) == (200, before)


def test_a_redelivered_request_completes_again(stack: Stack) -> None:
    rid = new_request_id()
    first = export(stack, rid, "0401")
    assert first["status"] == "completed", first
    # The same record again (a worker crashed before committing it): not a reuse.
    send_request(
        stack.settings,
        {
            "request_id": rid,
            "district_id": DISTRICT,
            "requester": "0401",
            "product": "both",
            "range": "ytd",
        },
    )
    before = _outcomes(stack)
    wait_until(
        lambda: _outcomes(stack)["completed"] > before["completed"],
        60,
        "the redelivered export to complete",
    )
    assert _outcomes(stack)["failed"] == before["failed"]
    assert _outcomes(stack)["rejected"] == before["rejected"]
    assert Path(first["path"]).read_bytes().startswith(b"First Name,")


def final_statuses(stack: Stack, request_id: str) -> list[dict[str, Any]]:
    """Every final status published for ``request_id`` so far, oldest first."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    try:
        consumer.assign([TopicPartition(stack.topic("export-status"), 0)])
        docs = [json.loads(r.value) for r in consumer if r.key == request_id.encode()]
    finally:
        consumer.close()
    return [d for d in docs if d["status"] in ("completed", "failed")]


def _outcomes(stack: Stack) -> dict[str, float]:
    metrics = stack.metrics()
    return {
        name: metrics.get(f"abacus_exports_total{{outcome={name}}}", 0.0)
        for name in ("completed", "failed", "rejected")
    }


def test_expired_exports_are_deleted_by_the_worker(
    stack_factory: Callable[..., Stack],
) -> None:
    s = stack_factory(
        ABACUS_EXPORTS__RETENTION_S="8",
        ABACUS_EXPORTS__SWEEP_INTERVAL_S="0.5",
        ABACUS_WEB__SIGNING_KEY="r" * 32,
    )
    s.start_worker()
    s.run("roster", "import", str(EXAMPLES), "--district", DISTRICT)
    wait_until(lambda: s.metric_sum("abacus_roster_records_total") >= 49, 60, "roster consumed")
    status = export(s, new_request_id(), "0401")
    assert status["status"] == "completed", status
    files = [Path(status["path"]), Path(status["manifest"])]
    assert http_get(status["link"])[0] == 200  # well within its 8 s
    wait_until(lambda: not any(p.exists() for p in files), 60, "the expired export's files to go")
    code, body = http_get(status["link"])
    assert (code, json.loads(body)) == (403, {"error": "link expired"})
    assert "deleted 1 expired export(s): 2 file(s)" in s.log_tail(200)


@pytest.mark.parametrize("command", ["worker", "up"])
def test_the_default_signing_key_is_refused_off_loopback(
    stack: Stack, tmp_path: Path, command: str
) -> None:
    env = {
        **stack.env,
        "ABACUS_HOME": str(tmp_path),
        "ABACUS_WEB__HOST": "0.0.0.0",
        "ABACUS_WEB__PORT": str(free_port()),
    }
    if command == "up":  # `abacus up` would start an embedded broker first
        del env["ABACUS_BROKER__BOOTSTRAP"]
        env["ABACUS_BROKER__PORT"] = str(free_port())
    proc = subprocess.run(
        [*ABACUS, command], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert "ABACUS_WEB__SIGNING_KEY" in line
    assert "0.0.0.0" in line
    assert not (tmp_path / "chdb").exists()
    assert not (tmp_path / "logs" / "broker.log").exists()


def machine_addresses() -> set[str]:
    """This machine's non-loopback IPv4 addresses (those a neighbour could connect to)."""
    found = set()
    with contextlib.suppress(OSError):
        found |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, contextlib.suppress(OSError):
        udp.connect(("192.0.2.123", 9))  # no packet is sent: this only picks a route
        found.add(udp.getsockname()[0])
    return {a for a in found if not is_loopback(a) and a != "0.0.0.0"}


def test_the_embedded_broker_accepts_connections_on_loopback_only(broker: EmbeddedBroker) -> None:
    args = broker.arguments()
    assert args[args.index("--listener-url") + 1] == f"tcp://127.0.0.1:{broker.port}"
    assert port_is_open("127.0.0.1", broker.port)
    for address in machine_addresses():  # none on a machine without a network: args above
        assert not port_is_open(address, broker.port), address


def test_refusals_are_audited(stack: Stack, outside: Path) -> None:
    assert http_get(non_ascii_sig_link(stack))[0] == 403
    assert http_get(traversal_link(stack, outside))[0] == 404
    assert stack.stop_worker() == 0
    audit = stack.query(
        "SELECT district_id, request_id, requester, action, detail FROM abacus.export_audit "
        "WHERE action = 'denied' ORDER BY at"
    )
    assert [DISTRICT, "exp-nonascii", "0401", "denied", "malformed link"] in audit
    assert ["", "", "0401", "denied", "invalid path"] in audit
