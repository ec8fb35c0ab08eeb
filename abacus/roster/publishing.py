"""One district's roster on the compacted topics, for both import formats: read what it has
published, then publish one import's changes under one import id and version.

Staff records carry a password hash (argon2id) and its time, never a password: each
import's users get theirs here, before anything is published (see
abacus/accounts/credentials.py: a blank or unchanged password keeps what was published).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from abacus.accounts.credentials import roster_credential
from abacus.district import DistrictConfig
from abacus.kafka.broker_epoch import wait_restored
from abacus.kafka.compacted import publish, read_latest
from abacus.kafka.topics import ensure_topics
from abacus.privacy.deny import DenyList, decode_entry
from abacus.roster import records as rec
from abacus.roster.diff import RosterDiff, diff_records
from abacus.roster.records import RosterKind
from abacus.settings import AbacusSettings

__all__ = [
    "Docs",
    "Publication",
    "Published",
    "district_docs",
    "read_published",
    "roster_topics",
    "with_credentials",
]

log = logging.getLogger(__name__)

Docs = dict[str, dict[str, Any]]  # key -> last document (envelope included)


def roster_topics(settings: AbacusSettings) -> dict[RosterKind, str]:
    """The full topic name of each roster kind."""
    t = settings.topics
    return {
        RosterKind.USERS: t.name(t.roster_users),
        RosterKind.STUDENTS: t.name(t.roster_students),
        RosterKind.LINKS: t.name(t.roster_links),
        RosterKind.DISTRICT: t.name(t.district_config),
    }


def district_docs(raw: Mapping[bytes, bytes | None], district_id: str) -> Docs:
    """This district's last document per key (other districts' keys are never looked at; a
    key whose last record is a tombstone has none)."""
    prefix = f"{district_id}|".encode()
    out = {}
    for key, value in raw.items():
        if value is None or not (key.startswith(prefix) or key == district_id.encode()):
            continue
        try:
            out[key.decode()] = rec.decode_value(value)
        except (rec.BadRecordError, UnicodeDecodeError) as exc:
            log.warning("ignoring a bad record on a roster topic: %s", exc)
    return out


@dataclass(frozen=True, slots=True)
class Published:
    """What one district has published: its documents per roster kind (its config under
    ``RosterKind.DISTRICT``), and per topic name those of any other topic read with them."""

    district_id: str
    topics: dict[RosterKind, str]
    docs: dict[RosterKind, Docs]
    extra: dict[str, Docs]
    deny: DenyList = field(default_factory=DenyList)  # this district's deletions

    @property
    def config(self) -> Mapping[str, Any] | None:
        """The district's published config document, if any."""
        return self.docs[RosterKind.DISTRICT].get(self.district_id)


def read_published(
    settings: AbacusSettings, district_id: str, extra_topics: Sequence[str] = ()
) -> Published:
    """Create the topics if needed and read the district's latest records and its entries
    on the deny-list (StackError)."""
    topics = roster_topics(settings)
    ensure_topics(settings)
    # After an embedded broker restart the worker first puts the roster back on these
    # topics from ClickHouse; reading them before that would deactivate nothing.
    wait_restored(settings)
    deny_topic = settings.topics.name(settings.topics.privacy_deny)
    raw = read_latest(settings, [*topics.values(), *extra_topics, deny_topic])
    docs = {kind: district_docs(raw[name], district_id) for kind, name in topics.items()}
    extra = {name: district_docs(raw[name], district_id) for name in extra_topics}
    prefix = f"{district_id}|".encode()
    entries = (decode_entry(v) for k, v in raw[deny_topic].items() if k.startswith(prefix) and v)
    deny = DenyList(e for e in entries if e is not None)
    return Published(district_id, topics, docs, extra, deny)


def with_credentials(
    incoming: Mapping[str, Mapping[str, Any]],
    published: Docs,
    passwords: Mapping[str, SecretStr | None],
    imported_at: int,
) -> dict[str, dict[str, Any]]:
    """Users' fields with ``password_hash`` and ``password_set_at`` added: from the upload's
    plain password (hashed, or the published hash kept when it verifies) or, when blank or
    not given (a OneRoster package), the published ones. Hashing (argon2id, 0.1-0.2 s a
    password here) runs on a few threads: argon2-cffi releases the GIL."""

    def one(key: str) -> tuple[str, dict[str, Any]]:
        secret = passwords.get(key)
        plain = secret.get_secret_value() if secret is not None else None
        cred = roster_credential(plain, published.get(key), imported_at)
        fields = {**incoming[key], "password_hash": cred.password_hash}
        return key, {**fields, "password_set_at": cred.set_at}

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return dict(pool.map(one, list(incoming)))


class Publication:
    """One import's records, in publishing order, under one import id and version
    (``imported_at``: now in epoch ms, and above every version published before)."""

    def __init__(self, published: Published, *also: Mapping[str, Mapping[str, Any]]) -> None:
        self.published = published
        self.import_id = uuid.uuid4().hex[:16]
        docs = (d for docs in (*published.docs.values(), *also) for d in docs.values())
        last = max((d.get("imported_at", 0) for d in docs), default=0)
        self.imported_at = max(time.time_ns() // 1_000_000, last + 1)  # versions only rise
        self.records: list[tuple[str, bytes, bytes | None]] = []

    def config(self, config: DistrictConfig | None) -> str:
        """Add the district config if it is new or changed: "new" / "updated" /
        "unchanged", or "" when the import brings none."""
        if config is None:
            return ""
        before = self.published.config
        if before is None:
            status = "new"
        elif before.get("config") != config.model_dump(mode="json"):
            status = "updated"
        else:
            return "unchanged"
        assert config.district_id is not None
        value = rec.config_value(config, self.import_id, self.imported_at)
        topic = self.published.topics[RosterKind.DISTRICT]
        self.records.append((topic, config.district_id.encode(), value))
        return status

    def changes(
        self,
        kind: RosterKind,
        incoming: Mapping[str, Mapping[str, Any]],
        *,
        complete: bool = True,
        keep: Collection[str] = (),
        passwords: Mapping[str, SecretStr | None] | None = None,
    ) -> RosterDiff:
        """Add what `incoming` (key -> fields) changes in the published `kind` records (see
        `diff_records`); return the diff. Users get their credentials first (``passwords``:
        key -> the upload's plain password, None or absent when blank)."""
        before = self.published.docs[kind]
        if kind is RosterKind.USERS:
            incoming = with_credentials(incoming, before, passwords or {}, self.imported_at)
        diff = diff_records(before, incoming, complete=complete, keep=keep)
        for change in diff.changes:
            self.add(
                self.published.topics[kind], change.key, change.fields, active=change.is_active
            )
        return diff

    def add(
        self, topic: str, key: str, fields: Mapping[str, Any] | None, *, active: bool = True
    ) -> None:
        """Add one record (fields None: a tombstone)."""
        value = None
        if fields is not None:
            district_id = self.published.district_id
            value = rec.encode_value(district_id, self.import_id, self.imported_at, active, fields)
        self.records.append((topic, key.encode(), value))

    def send(self, settings: AbacusSettings) -> int:
        """Publish every record in order and wait for the acks; return how many (StackError)."""
        sent = publish(settings, self.records)
        log.info("roster import %s: %d record(s) published", self.import_id, sent)
        return sent
