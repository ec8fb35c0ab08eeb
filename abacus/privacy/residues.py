"""What a deletion cannot remove at once, and what bounds it (pure): the receipt's
``not_removed`` list, from the settings in force."""

from __future__ import annotations

from abacus.privacy.receipt import Residue
from abacus.settings import AbacusSettings

__all__ = ["CLICKHOUSE_CLEANUP", "residues"]

# ClickHouse removes the parts a mutation replaced once no query reads them: its cleanup
# thread runs every cleanup_delay_period (30 s) plus up to 10 s at random, backing off to
# max_cleanup_delay_period (300 s) when idle (MergeTree defaults; measured on chDB 26.9: gone
# within 40 s of the mutation).
CLICKHOUSE_CLEANUP = "removed from disk by ClickHouse's part cleanup within 300 s"
_EMBEDDED = "; the embedded broker keeps its log in memory only, until it stops"


def _days(ms: int) -> str:
    return f"{ms / 86_400_000:g} day(s)"


def residues(settings: AbacusSettings, outdated_parts: int) -> list[Residue]:
    """Everything a deletion leaves behind for a while, with the bound of each."""
    t = settings.topics
    embedded = _EMBEDDED if settings.broker.embedded else ""
    out = [
        Residue(
            "the students' raw events as first received (ingest drops them if read again: "
            "they are on the deny-list)",
            f"Kafka topic {t.name(t.events)}",
            f"retention.ms = {_days(t.events_retention_ms)}{embedded}",
        ),
        Residue(
            "dead letters of the students (abacus dlq list and replay skip them; their copy"
            " in the dead_letters table is deleted)",
            f"Kafka topic {t.name(t.dead_letter)}",
            f"retention.ms = {_days(t.dead_letter_retention_ms)}{embedded}",
        ),
        Residue(
            "earlier roster records under the tombstoned keys",
            "Kafka compacted roster topics",
            f"max.compaction.lag.ms = {_days(t.compaction_lag_ms)}{embedded}",
        ),
        Residue(
            "the request itself, naming its students",
            f"Kafka topics {t.name(t.privacy_requests)} and {t.name(t.privacy_status)}",
            f"retention.ms = {_days(t.privacy_retention_ms)}{embedded}",
        ),
        Residue(
            f"{outdated_parts} table part(s) the deletion's mutations replaced",
            "ClickHouse data directory",
            CLICKHOUSE_CLEANUP,
        ),
        Residue(
            "the students' ids on the deny-list and in this request's record",
            "ClickHouse tables privacy_deny and privacy_requests, Kafka topic "
            f"{t.name(t.privacy_deny)}",
            "kept on purpose: without them late data would bring the students back",
        ),
        Residue(
            "copies outside Abacus: backups of ClickHouse or Kafka, downloaded exports",
            "the operator's backups, the district's own files",
            "the operator's backup retention; the district's own records policy",
        ),
    ]
    return out
