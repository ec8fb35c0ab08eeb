"""How many records each fetch asks for: a batch stays near its byte bound however much
the client has buffered (aiokafka hands back up to `max_records`, past `fetch_max_bytes`)."""

from __future__ import annotations

import pytest

from streams.agents.ingest import records_wanted

MB = 1 << 20


@pytest.mark.parametrize(
    ("held", "held_bytes", "record_bytes", "max_records", "wanted"),
    [
        (0, 0, 4096, 20_000, 512),  # SDK batch records: 2 MB of them, not 20k (80 MB)
        (0, 0, 100, 20_000, 20_000),  # single events: the record bound comes first
        (500, 2 * MB - 4096, 4096, 20_000, 1),  # one more record fills the batch
        (500, 2 * MB - 4000, 4096, 20_000, 1),  # part of a record left: still one
        (19_999, 10_000, 100, 20_000, 1),
        (0, 0, 0.0, 20_000, 20_000),  # a fetch of empty values: no division by zero
        (0, 0, 3 * MB, 20_000, 1),  # records larger than a batch: one at a time
    ],
)
def test_a_fetch_asks_for_what_fills_the_batch(
    held: int, held_bytes: int, record_bytes: float, max_records: int, wanted: int
) -> None:
    assert records_wanted(held, held_bytes, record_bytes, max_records, 2 * MB) == wanted


@pytest.mark.parametrize(("held", "held_bytes"), [(20_000, 0), (10, 2 * MB), (10, 3 * MB)])
def test_a_full_batch_asks_for_nothing(held: int, held_bytes: int) -> None:
    # aiokafka refuses max_records=0 (ValueError): the fetcher does not call it then.
    assert records_wanted(held, held_bytes, 4096, 20_000, 2 * MB) == 0


def test_the_batch_stays_within_its_bound_at_the_measured_record_size() -> None:
    """Fetches of 4 KB records until full: the batch ends within one record of 2 MB."""
    held = held_bytes = 0
    while wanted := records_wanted(held, held_bytes, 4096, 20_000, 2 * MB):
        got = min(wanted, 300)  # the client returns no more than it has buffered
        held, held_bytes = held + got, held_bytes + got * 4096
    assert 2 * MB <= held_bytes < 2 * MB + 4096
