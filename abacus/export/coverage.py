"""Whether the rollups cover what an export claims: the watermark against the events stored.

An export reads, before its query, the next offset after the last event stored per events
partition and the rollup watermark (abacus/store/rollups.py), in that order reversed: the
watermark first. It reads the rollups only when the watermark has reached every stored
offset; until then (a batch between its facts and its rollups, a gap being closed) it waits,
and past `ABACUS_EXPORTS__ROLLUP_WAIT_S` it reads the facts. The manifest says which.
"""

from __future__ import annotations

from collections.abc import Mapping

from abacus.export.aggregates import Source

__all__ = ["covered", "lagging", "source_for"]


def lagging(stored: Mapping[int, int], watermark: Mapping[int, int]) -> dict[int, int]:
    """Partition → how many offsets the watermark is behind the events stored (only those
    that are behind)."""
    return {p: end - watermark.get(p, 0) for p, end in stored.items() if watermark.get(p, 0) < end}


def covered(stored: Mapping[int, int], watermark: Mapping[int, int]) -> bool:
    """Every event stored has its rollups."""
    return not lagging(stored, watermark)


def source_for(stored: Mapping[int, int], watermark: Mapping[int, int]) -> Source:
    """Rollups when they cover the events stored, else the facts."""
    return "rollups" if covered(stored, watermark) else "facts"
