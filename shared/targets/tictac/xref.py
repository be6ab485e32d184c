"""Cross-references: which remote object an ERP record is linked to, and the ERP values the target
system cannot hold — one Azure Table (proposed setting ``XREF_TABLE``, default ``crossref``) in the
storage account of the export ledger, reached the same way (:func:`table_service`).

Rows:

* PartitionKey ``<target>|<entity>`` (``tictac|user``, ``tictac|project``, ``tictac|activity``,
  ``tictac|template``); RowKey the ERP key, its parts escaped without ``%`` (:func:`encode_key`) and joined by
  ``|`` (``1455|10`` for operation 10 of job 1455).
* ``RemoteId`` (userName, projid, actid; empty for a template), ``LinkedBy`` (native, name,
  created, adopted), ``ErpKey`` (the key parts as JSON: the RowKey need not be decoded, and a
  shortened RowKey loses nothing), ``ErpValues`` (JSON object: operation code, line number, ERP
  reference, ERP status …), ``TemplateOperations`` (JSON list, split over ``TemplateOperations0``,
  ``…1`` … when long), ``PushedHash`` (what was last written, for fields the target cannot be read
  back for, such as a Tic-Tac user's phone number) and ``UpdatedAt``.

Losing the table is recoverable: users and projects re-link by their native keys (employeeNumber,
projectNumber), activities by name within their project; only the ERP-only values come back with
the next import of those lines.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.platform.config import Settings
from shared.platform.storage import table_service
from shared.platform.table_keys import encode_key as table_key
from shared.records.layouts import LAYOUTS, RecordType
from shared.records.values import Value

DEFAULT_TABLE = "crossref"
#: What earlier versions kept as it was in a key part (the rest percent-encoded): their keys are
#: still read (:func:`legacy_key`). A ``%`` in a key breaks point operations (Azure Tables decode it
#: once more than they should), so keys are now escaped with ``!`` (``shared/platform/table_keys.py``).
_LEGACY_SAFE = "-_. @:+=,;!$&'()*"
#: A Table key may be up to 1 KiB; ours stay far below. A longer encoded key is shortened to a
#: prefix plus the SHA-256 of the whole (the full key is in ``ErpKey``).
MAX_KEY_LENGTH = 255
_HASHED_PREFIX = 180
#: A string property holds at most 64 KiB (32 K UTF-16 characters); long JSON is split.
_CHUNK = 30_000
_MAX_CHUNKS = 24  # ~720 K characters, below the 1 MiB entity limit
_TARGET = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
TRANSACTION_SIZE = 100


class Entity(StrEnum):
    USER = "user"
    PROJECT = "project"
    ACTIVITY = "activity"
    TEMPLATE = "template"  # a Template job's operations, kept to expand sJobTemplate


class LinkedBy(StrEnum):
    NATIVE = "native"  # the target's own key (employeeNumber, projectNumber)
    NAME = "name"  # first link by name inside the project
    CREATED = "created"  # TimeBridge created it
    ADOPTED = "adopted"  # an existing object without a key, linked on request


def encode_key(parts: Sequence[str]) -> str:
    """A Table-safe key for ``parts`` without ``%``: each part escaped with ``!`` (letters, digits and
    ``- _ .`` stay; ``|``, ``~`` and everything else become ``!`` + hex per UTF-8 byte), an empty part
    as ``~``, joined by ``|``; longer than ``MAX_KEY_LENGTH`` → prefix + ``~`` + SHA-256. Distinct
    part tuples give distinct keys (up to SHA-256 collisions for shortened ones)."""
    if not parts:
        raise ValueError("a cross-reference key needs at least one part")
    return _shortened("|".join(table_key(part).replace("~", "!7E") if part else "~" for part in parts), parts)


def legacy_key(parts: Sequence[str]) -> str | None:
    """The key earlier versions wrote for ``parts`` (percent-encoded), when it differs from :func:`encode_key`'s."""
    earlier = _shortened("|".join(quote(part, safe=_LEGACY_SAFE).replace("~", "%7E") if part else "~"
                                  for part in parts), parts)
    return earlier if earlier != encode_key(parts) else None


def _shortened(encoded: str, parts: Sequence[str]) -> str:
    if len(encoded) <= MAX_KEY_LENGTH:
        return encoded
    digest = hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()
    return f"{encoded[:_HASHED_PREFIX]}~{digest}"


def key_text(value: Value) -> str:
    """An ERP key value as text: numbers without trailing zeros (line 10 = 10.0 = 10,00), dates ISO."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def erp_key(record_type: RecordType, values: Mapping[str, Value]) -> tuple[str, ...]:
    """The key parts of an ERP record (``("1455", "10")`` for an operation)."""
    return tuple(key_text(values[name]) for name in LAYOUTS[record_type].key)


def _partition(target: str, entity: Entity) -> str:
    if not _TARGET.match(target):
        raise ValueError(f"target {target!r}: lower-case letters, digits and '-' only")
    return f"{target}|{Entity(entity).value}"


@dataclass(frozen=True)
class CrossRef:
    """One link: ERP record (``target``, ``entity``, ``erp_key``) ↔ ``remote_id``, with the ERP values
    the target cannot hold."""

    target: str
    entity: Entity
    erp_key: tuple[str, ...]
    remote_id: str
    linked_by: LinkedBy | str = LinkedBy.NATIVE
    erp_values: Mapping[str, str] = field(default_factory=dict)
    template_operations: tuple[Mapping[str, str], ...] = ()
    pushed_hash: str = ""
    updated_at: str = ""


def operation_values(values: Mapping[str, Value]) -> dict[str, str]:
    """The ERP values of an operation Tic-Tac cannot hold (for the exported ledger lines)."""
    names = ("sJobCode", "nLineNumber", "sOperationCode", "sERPReference", "sDescription")
    return {name: key_text(values[name]) for name in names if name in values}


def job_values(values: Mapping[str, Value]) -> dict[str, str]:
    """The ERP values of a job Tic-Tac cannot hold exactly (its status: isActive loses Completed vs
    Canceled)."""
    return {"sStatus": key_text(values["sStatus"])} if "sStatus" in values else {}


def template_ref(target: str, values: Mapping[str, Value], operations: Iterable[Mapping[str, Value]]) -> CrossRef:
    """A Template job and its operations (no remote object)."""
    ops = tuple({name: key_text(value) for name, value in op.items()} for op in operations)
    return CrossRef(target, Entity.TEMPLATE, erp_key(RecordType.JOB, values), "", LinkedBy.NATIVE,
                    job_values(values), ops)


def hash_of(values: Mapping[str, Any]) -> str:
    """A stable hash of the values last pushed (for ``pushed_hash``)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:32]


class CrossRefs:
    """The cross-reference table."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    @classmethod
    def connect(cls, settings: Settings, table_name: str = DEFAULT_TABLE) -> CrossRefs:
        return cls(table_service(settings).get_table_client(table_name))  # infra/ creates the table

    # --- read -----------------------------------------------------------------------------------
    def get(self, target: str, entity: Entity, key: Sequence[str]) -> CrossRef | None:
        """The link of ``key`` (also one an earlier version stored under its percent-encoded key)."""
        for row_key in (encode_key(key), legacy_key(key)):
            if row_key is None:
                continue
            try:
                row = self.table.get_entity(_partition(target, entity), row_key)
            except ResourceNotFoundError:
                continue
            ref = _from_entity(target, entity, row)
            if ref.erp_key == tuple(key):  # else a shortened key whose hash collided
                return ref
        return None

    def load(self, target: str, entity: Entity) -> dict[tuple[str, ...], CrossRef]:
        """Every link of one target and entity (one query; a few thousand rows at most)."""
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": _partition(target, entity)})
        found: dict[tuple[str, ...], CrossRef] = {}
        current: set[tuple[str, ...]] = set()
        for row in rows:  # an earlier version's row (a % in its key) never wins over the current one
            ref = _from_entity(target, entity, row)
            is_current = str(row["RowKey"]) == encode_key(ref.erp_key)
            if is_current or ref.erp_key not in current:
                found[ref.erp_key] = ref
            if is_current:
                current.add(ref.erp_key)
        return found

    def by_remote_id(self, target: str, entity: Entity) -> dict[str, CrossRef]:
        """The same links keyed by remote id (the export's reverse lookup: actid → operation)."""
        return {ref.remote_id: ref for ref in self.load(target, entity).values() if ref.remote_id}

    # --- write ----------------------------------------------------------------------------------
    def put(self, ref: CrossRef) -> None:
        self.table.upsert_entity(_to_entity(ref), mode=UpdateMode.REPLACE)

    def put_many(self, refs: Iterable[CrossRef]) -> None:
        """Upserts in entity-group transactions (≤ 100 rows, one partition each)."""
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for ref in refs:
            entity = _to_entity(ref)
            by_partition.setdefault(entity["PartitionKey"], []).append(entity)
        for entities in by_partition.values():
            unique = list({entity["RowKey"]: entity for entity in entities}.values())  # last one wins
            for start in range(0, len(unique), TRANSACTION_SIZE):
                self.table.submit_transaction(
                    [("upsert", entity, {"mode": UpdateMode.REPLACE})
                     for entity in unique[start : start + TRANSACTION_SIZE]])
            for entity in unique:  # the same link under an earlier version's key: gone
                earlier = legacy_key(tuple(json.loads(entity["ErpKey"])))
                if earlier is not None:
                    with suppress(ResourceNotFoundError):
                        self.table.delete_entity(entity["PartitionKey"], earlier)

    def delete(self, target: str, entity: Entity, key: Sequence[str]) -> None:
        for row_key in (encode_key(key), legacy_key(key)):
            if row_key is not None:
                with suppress(ResourceNotFoundError):
                    self.table.delete_entity(_partition(target, entity), row_key)


def _to_entity(ref: CrossRef) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": _partition(ref.target, ref.entity),
        "RowKey": encode_key(ref.erp_key),
        "RemoteId": ref.remote_id,
        "LinkedBy": str(ref.linked_by),
        "ErpKey": json.dumps(list(ref.erp_key), ensure_ascii=False),
        "ErpValues": json.dumps(dict(ref.erp_values), ensure_ascii=False, sort_keys=True),
        "PushedHash": ref.pushed_hash,
        "UpdatedAt": ref.updated_at or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if ref.template_operations:
        text = json.dumps([dict(op) for op in ref.template_operations], ensure_ascii=False)
        chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)]
        if len(chunks) > _MAX_CHUNKS:
            raise ValueError(f"template {ref.erp_key[0]}: too many operations to keep in one cross-reference row")
        entity |= {f"TemplateOperations{i}": chunk for i, chunk in enumerate(chunks)}
    return entity


def _from_entity(target: str, entity: Entity, row: Mapping[str, Any]) -> CrossRef:
    chunks = []
    index = 0
    while f"TemplateOperations{index}" in row:
        chunks.append(row[f"TemplateOperations{index}"])
        index += 1
    operations = tuple(json.loads("".join(chunks))) if chunks else ()
    return CrossRef(
        target=target,
        entity=Entity(entity),
        erp_key=tuple(json.loads(row["ErpKey"])),
        remote_id=str(row.get("RemoteId") or ""),
        linked_by=str(row.get("LinkedBy") or ""),
        erp_values=json.loads(row.get("ErpValues") or "{}"),
        template_operations=operations,
        pushed_hash=str(row.get("PushedHash") or ""),
        updated_at=str(row.get("UpdatedAt") or ""),
    )
