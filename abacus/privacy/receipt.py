"""The deletion receipt: what was removed, how it was verified, HMAC-signed (pure).

The signature is HMAC-SHA256 with the web signing key over the canonical serialisation of
the whole document without its ``signature`` member (JSON, keys sorted, no whitespace,
UTF-8). Beyond the request itself (which names its students) a receipt holds no student
id: counts, table and topic names, export file paths (request ids), and bounds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from abacus.errors import AbacusError
from abacus.privacy.request import DeletionRequest

__all__ = [
    "RECEIPT_VERSION",
    "FileResult",
    "ReceiptError",
    "Residue",
    "TableResult",
    "TopicResult",
    "build_receipt",
    "canonical",
    "check_signature",
    "sign",
    "verification_queries",
]

RECEIPT_VERSION = 1
ALGORITHM = "HMAC-SHA256"


class ReceiptError(AbacusError, ValueError):
    """A receipt that is malformed, or whose signature does not match."""


@dataclass(frozen=True)
class TableResult:
    """One table: rows removed (or pseudonymised) and the verification query's result."""

    table: str
    action: str
    rows: int
    query: str
    params: dict[str, str]
    result: int
    outdated_parts: int = 0  # parts the mutation replaced, still on disk until ClickHouse cleans up


@dataclass(frozen=True)
class TopicResult:
    """One Kafka topic: keys tombstoned, and keys rewritten without the student."""

    topic: str
    tombstoned: int
    rewritten: int = 0


@dataclass(frozen=True)
class FileResult:
    """One export file that held a deleted student: ``regenerated`` without them (the other
    rows unchanged) or ``deleted``; the path is relative to ABACUS_HOME."""

    path: str
    action: str
    rows_removed: int


@dataclass(frozen=True)
class Residue:
    """What could not be removed at once, where it is, and what bounds its life."""

    what: str
    where: str
    bound: str


def build_receipt(
    request: DeletionRequest,
    *,
    requested_at: datetime,
    completed_at: datetime,
    tables: list[TableResult],
    topics: list[TopicResult],
    files: list[FileResult],
    residues: list[Residue],
    software_version: str,
) -> dict[str, Any]:
    """The unsigned receipt document."""
    return {
        "receipt_version": RECEIPT_VERSION,
        "request": request.record(),
        "requested_at": requested_at.isoformat(),
        "completed_at": completed_at.isoformat(),
        "tables": [asdict(t) for t in tables],
        "rows_removed": sum(t.rows for t in tables),
        "verified": all(t.result == 0 for t in tables),
        "topics": [asdict(t) for t in topics],
        "export_files": [asdict(f) for f in files],
        "not_removed": [asdict(r) for r in residues],
        "software": {"name": "abacus", "version": software_version},
    }


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the signature covers: the document without ``signature``, canonical JSON."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(doc: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(doc), hashlib.sha256).hexdigest()


def sign(doc: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The document with its ``signature`` member."""
    return {**doc, "signature": {"algorithm": ALGORITHM, "value": _mac(doc, key)}}


def check_signature(doc: Any, key: bytes) -> None:
    """Raise ReceiptError unless ``doc`` is a receipt signed with ``key``, untouched."""
    if not isinstance(doc, dict) or doc.get("receipt_version") != RECEIPT_VERSION:
        raise ReceiptError("not an Abacus deletion receipt")
    signature = doc.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        raise ReceiptError("the receipt carries no HMAC-SHA256 signature")
    if not hmac.compare_digest(str(signature.get("value", "")), _mac(doc, key)):
        raise ReceiptError(
            "the signature does not match: the receipt was changed or signed with another key"
        )


def verification_queries(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(table, query, params) of each table of a receipt whose signature was checked; only
    ``SELECT count()`` queries are accepted."""
    out = []
    for entry in doc.get("tables", []):
        query = str(entry.get("query", ""))
        if not query.startswith("SELECT count() FROM "):
            raise ReceiptError(f"table {entry.get('table')!r}: not a count query")
        params = {str(k): str(v) for k, v in dict(entry.get("params", {})).items()}
        out.append((str(entry.get("table")), query, params))
    return out
