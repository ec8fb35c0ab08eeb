"""Small parts in one file (ClickHouse's packed part storage), in the embedded store.

Every insert writes a part per table and partition it touches: an ingest batch writes
about eight (events, daily, lesson and benchmark facts, late keys), and a part stored as
separate files is a directory of ~13 of them. On this project's VMs (ext4 on virtio)
creating a file costs ~0.3 ms of kernel time, so the files, not the rows, were most of what
storing a batch cost: the same 20k-event batches stored with and without this setting took
233 and 111 ms of CPU a batch (kernel time 134 → 34 ms; README, Performance). A packed part
is one `data.packed` archive; a merge writes full parts again once a part reaches
``PACKED_BELOW_BYTES`` uncompressed. Reads, merges, mutations (privacy deletion) and
restarts work on both kinds alike (tests/integration/test_part_storage.py).

Only the embedded chDB store gets it: chDB is pinned with the package, and its engine
(26.9) writes and reads packed parts. A ClickHouse server older than 26.7 cannot read them,
so on a server it is the operator's choice (the same `ALTER TABLE … MODIFY SETTING`).
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.client import Client

__all__ = ["PACKED_BELOW_BYTES", "SETTING", "pack_small_parts"]

SETTING = "min_bytes_for_full_part_storage"
# Parts under this size (uncompressed) are packed: every insert's, and merges' up to here.
# A packed part is assembled in memory before it is written, so this also bounds that.
PACKED_BELOW_BYTES = 16 << 20


def pack_small_parts(client: Client, database: str, below: int = PACKED_BELOW_BYTES) -> list[str]:
    """Store parts under ``below`` bytes packed in every MergeTree table of ``database``;
    the tables changed (those already set are left alone, so it is cheap to run at every
    start and covers tables a later migration creates)."""
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = {db:String} AND engine LIKE '%MergeTree' AND NOT is_temporary "
        "ORDER BY name",
        parameters={"db": database},
    ).result_rows
    wanted = f"{SETTING} = {below}"
    already = re.compile(rf"\b{wanted}\b")
    changed = []
    for name, create in rows:
        if already.search(create):
            continue
        client.command(f"ALTER TABLE {database}.`{name}` MODIFY SETTING {wanted}")
        changed.append(str(name))
    return changed
