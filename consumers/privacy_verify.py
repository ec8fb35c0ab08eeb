"""`abacus privacy verify`: a receipt's signature checked, its verification queries run again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from abacus.privacy.receipt import check_signature, verification_queries

__all__ = ["verification_report"]


def verification_report(
    doc: Any, key: bytes, count: Callable[[str, Mapping[str, Any]], int]
) -> dict[str, Any]:
    """Check the HMAC (ReceiptError if it fails), then run each table's count query again
    with ``count``; verified when every one still counts 0."""
    check_signature(doc, key)
    tables = [
        {"table": table, "result": count(query, params)}
        for table, query, params in verification_queries(doc)
    ]
    return {
        "request_id": doc["request"]["request_id"],
        "signature": "valid",
        "tables": tables,
        "verified": all(t["result"] == 0 for t in tables),
    }
