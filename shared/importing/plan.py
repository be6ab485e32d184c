"""The import's plan, as a pure function: the file's records against the stored ones → the decisions.

:func:`plan` decides, for the records of one batch (of one type), which are created, which updated
(and which fields), which are unchanged and which are rejected, which stored record each one is,
and where the file spells a code otherwise than the target. It reads nothing from the target and
writes nothing: it asks only the target's planning rules (:class:`shared.targets.base.Matching`:
``link``, ``refuse_create``, ``held_fields``, ``differs``). The importer applies the writes (or, in
a dry run, only turns them into the outcomes they would have: :func:`outcomes_of`) and records the
rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from shared.errors import AmbiguousMatchError
from shared.importing.stored import StoredRecords
from shared.records.layouts import LAYOUTS, RecordType
from shared.records.record import LineError, Record, fold_key
from shared.records.values import Value
from shared.targets.base import ConnectorDefaults, Matching, RemoteRecord


class LineStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    #: not applied yet: the target's call budget is used up; applied later, in file order
    DEFERRED = "deferred"


@dataclass
class Outcome:
    record: Record
    status: LineStatus
    changed: tuple[str, ...] = ()
    #: for an update: the stored value of each changed field (what it was before)
    before: dict[str, Value | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Write:
    """One planned create or update."""

    record: Record
    remote: RemoteRecord | None  # the stored record an update writes to; None: a create
    values: dict[str, Value]  # the body: key + changed fields (+ companions), or all for a create
    changed: tuple[str, ...]
    children: tuple[Record, ...] = ()  # operations created in the same call (``connector.inline_children``)


@dataclass(frozen=True)
class Rejection:
    record: Record
    errors: tuple[LineError, ...]


@dataclass(frozen=True)
class Respelling:
    """The file spells a code of ``record`` otherwise than the stored record, in case only: ``kept``."""

    record: Record
    name: str
    given: Value
    kept: Value


@dataclass
class Plan:
    """The decisions for one batch's records, each list in the records' order."""

    writes: list[Write] = field(default_factory=list)
    unchanged: list[Record] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    #: every record matched to a stored one (by its key or linked), with that stored record
    matched: list[tuple[Record, RemoteRecord]] = field(default_factory=list)
    respelled: list[Respelling] = field(default_factory=list)
    #: the stored records without a key not linked to any record (a later batch may still link them)
    unlinked: list[RemoteRecord] = field(default_factory=list)


Stored = dict[tuple[Value, ...], RemoteRecord] | StoredRecords


def plan(records: Sequence[Record], stored: Stored, matching: Matching, *, fold: bool,
         unkeyed: Sequence[RemoteRecord] = (), target: str = "SmartTID") -> Plan:
    """The decisions for ``records`` (one type, one batch) against ``stored`` (the stored records of
    that type by key, folded when ``fold``: codes compare without regard to case) and ``unkeyed``
    (stored records without a key, which a record may be linked to, each once: ``matching.link``).
    ``target``: the target's name in the messages.

    Nothing is read or written, and no state is kept; the one change made is to the records
    themselves: a record matched to a stored one whose code is spelled otherwise (in case only)
    takes the stored spelling (its values and key; ``Plan.respelled`` lists each), so that what is
    written names the stored record as the target does."""
    decided = Plan(unlinked=list(unkeyed))
    for record in records:
        found = stored.get(fold_key(record.key) if fold else record.key)
        if found is None and decided.unlinked:
            try:
                found = matching.link(record, decided.unlinked)
            except AmbiguousMatchError as exc:
                decided.rejected.append(Rejection(record, (line_error(
                    record, f"cannot be linked: {exc.message}",
                    f"make the {target} objects named in the message distinguishable (rename one, or give "
                    "it its own number), then upload the rejected lines again"),)))
                continue
            if found is not None:  # linked once only
                decided.unlinked = [candidate for candidate in decided.unlinked if candidate.id != found.id]
        if found is None:
            missing = [name for name in LAYOUTS[record.record_type].required_to_create if name not in record.values]
            if missing:
                decided.rejected.append(Rejection(record, tuple(
                    missing_for_create(record, name, target) for name in missing)))
                continue
            refusal = matching.refuse_create(record, records)
            if refusal is not None:
                decided.rejected.append(Rejection(record, (refusal,)))
                continue
            decided.writes.append(Write(record, None, dict(record.values), tuple(record.values)))
            continue
        kept_key = stored_key(found, record.record_type)
        if kept_key != record.key:
            names = LAYOUTS[record.record_type].key
            for name, given, kept in zip(names, record.key, kept_key, strict=True):
                if given != kept:
                    decided.respelled.append(Respelling(record, name, given, kept))
                    record.values[name] = kept
            record.key = tuple(record.values[name] for name in names)
        decided.matched.append((record, found))
        changed = diff(record, found, matching)
        if changed:
            decided.writes.append(Write(record, found, with_companions(record, changed), changed))
        else:
            decided.unchanged.append(record)
    return decided


def outcomes_of(write: Write) -> list[Outcome]:
    """The outcomes of a write done (or, in a dry run, that would be): the record created (with its
    children, when it carries them) or updated, with each changed field's stored value before."""
    record = write.record
    if write.remote is None:
        return [Outcome(record, LineStatus.CREATED, write.changed),
                *(Outcome(child, LineStatus.CREATED, tuple(child.values)) for child in write.children)]
    before = {name: write.remote.values.get(name) for name in write.changed}
    return [Outcome(record, LineStatus.UPDATED, write.changed, before)]


def diff(record: Record, remote: RemoteRecord, matching: Matching | None = None) -> tuple[str, ...]:
    """Names of the fields the file gives that differ from what the target system stores — only
    those the target holds (``matching.held_fields``), compared as it sees them."""
    layout = LAYOUTS[record.record_type]
    target = matching or ConnectorDefaults()
    held = target.held_fields(record.record_type)
    return tuple(
        name
        for name, value in record.values.items()
        if name not in layout.key
        and layout.field(name).companion_of is None
        and (held is None or name in held)
        and target.differs(record.record_type, name, value, remote.values.get(name))
    )


def with_companions(record: Record, names: Iterable[str]) -> dict[str, Value]:
    """The key fields, the named fields, and the auto-creation hints belonging to them."""
    layout = LAYOUTS[record.record_type]
    wanted = set(layout.key) | set(names)
    for spec in layout.fields:
        if spec.companion_of in wanted:
            wanted.add(spec.name)
    return {name: value for name, value in record.values.items() if name in wanted}


def stored_key(remote: RemoteRecord, record_type: RecordType) -> tuple[Value, ...]:
    """The stored record's key ("" for a key field the target did not return: it matches no line)."""
    return tuple(remote.values.get(name, "") for name in LAYOUTS[record_type].key)


def line_error(record: Record, reason: str, action: str, field: str = "", value: str = "") -> LineError:
    return LineError(record.line, record.record_type, field, value, reason, action)


def missing_for_create(record: Record, name: str, target: str = "SmartTID") -> LineError:
    spec = LAYOUTS[record.record_type].field(name)
    return line_error(
        record,
        f"is empty, but {record.describe()} does not exist in {target} yet and cannot be created without it",
        f"fill in {name} (position {spec.position}), or create the record in {target} first",
        field=f"{name} (position {spec.position})",
    )
