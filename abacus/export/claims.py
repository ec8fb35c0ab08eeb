"""Request ids are used once per district (pure rule): the first request under an id claims
it for its requester; the same record delivered again is run again, anything else is refused.

A worker that crashes after claiming an id and before committing the record's offset gets
the record again; its digest matches the claim, so it completes instead of being refused.
The claims are stored in `export_requests` (`abacus.store.store.Store`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from abacus.errors import ExportRequestError
from abacus.export.request import ExportRequest

__all__ = ["ExportClaim", "check_claim", "claim_of"]


@dataclass(frozen=True)
class ExportClaim:
    """Who first used a request id in a district, and a digest of what they asked for."""

    district_id: str
    request_id: str
    requester: str
    digest: str


def claim_of(request: ExportRequest) -> ExportClaim:
    """The claim a request makes; the digest covers every field of the parsed request."""
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    return ExportClaim(request.district_id, request.request_id, request.requester, digest)


def check_claim(request: ExportRequest, existing: ExportClaim | None) -> bool:
    """True when ``request`` is a redelivery of the claimed request (run it again), False
    when its id is new; ExportRequestError when the id was used for another request."""
    if existing is None:
        return False
    if existing == claim_of(request):
        return True
    raise ExportRequestError(
        f"request id {request.request_id!r} was already used in this district; "
        "send the request again with a new id"
    )
