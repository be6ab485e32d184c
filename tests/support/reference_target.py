"""The reference target: the smallest complete target, in memory, written to the contract alone.

It keeps the ERP's codes in its own fields (as most time systems do), holds every field of the
file, has no call limit and no ledger. Its one behaviour beyond storing is the failure every
target must survive: ``lose_answers`` makes the next writes be applied while their answers are
lost, and the connector then looks the record up instead of writing it again — the rule the
contract suite (tests/test_contract.py) holds every target to.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from shared.errors import ApiUnavailableError
from shared.platform.config import Settings
from shared.platform.secrets import SecretProvider
from shared.records.layouts import LAYOUTS, RecordType
from shared.records.values import Value
from shared.targets.base import Connector, ConnectorDefaults, RemoteRecord
from shared.targets.http import CallCounter
from shared.targets.registry import TargetSpec, register

NAME = "reference"


@dataclass
class MemoryTarget:
    """The target's own store: records by id, per type."""

    rows: dict[RecordType, dict[int, dict[str, Value]]] = field(
        default_factory=lambda: {record_type: {} for record_type in RecordType})
    #: the next writes are applied and their answers lost
    lose_answers: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, record_type: RecordType, values: dict[str, Value]) -> int:
        """A record made by hand in the target (or by a write)."""
        new_id = next(self.ids)
        self.rows[record_type][new_id] = dict(values)
        return new_id

    def with_key(self, record_type: RecordType, key: tuple[Value, ...]) -> list[int]:
        names = LAYOUTS[record_type].key
        return [i for i, row in self.rows[record_type].items() if tuple(row.get(n) for n in names) == key]


class ReferenceConnector(ConnectorDefaults):
    codes_case_insensitive = False

    def __init__(self, target: MemoryTarget) -> None:
        self.target = target
        self.calls = CallCounter()

    def list_records(self, record_type: RecordType, *, job_code: str | None = None) -> list[RemoteRecord]:
        self.calls.add("GET", f"/{record_type.lower()}s")
        rows = self.target.rows[record_type].items()
        if record_type is RecordType.OPERATION:
            rows = [(i, row) for i, row in rows if row.get("sJobCode") == job_code]
        return [RemoteRecord(i, dict(row), frozenset(row)) for i, row in rows]

    def create(self, record_type: RecordType, values: dict[str, Value]) -> int | str | None:
        key = tuple(values[name] for name in LAYOUTS[record_type].key)
        self.calls.add("POST", f"/{record_type.lower()}s")
        new_id = self.target.add(record_type, values)
        if self.target.lose_answers:
            self.target.lose_answers -= 1
            found = self._look_up(record_type, key)
            if found is None:  # pragma: no cover - the write above was applied
                raise ApiUnavailableError("the answer was lost and the record is not there", maybe_applied=True)
            return found
        return new_id

    def update(self, record_type: RecordType, remote_id: int | str, values: dict[str, Value]) -> None:
        self.calls.add("PUT", f"/{record_type.lower()}s/{remote_id}")
        self.target.rows[record_type][int(remote_id)].update(values)

    def _look_up(self, record_type: RecordType, key: tuple[Value, ...]) -> int | None:
        self.calls.add("GET", f"/{record_type.lower()}s")
        found = self.target.with_key(record_type, key)
        return found[0] if len(found) == 1 else None

    def close(self) -> None:
        return None


#: The one store the registered builder connects to (a test replaces it with a fresh one).
STORE = MemoryTarget()


def build(settings: Settings, own: object, secrets: SecretProvider) -> Connector:
    return ReferenceConnector(STORE)


SPEC = register(TargetSpec(name=NAME, display_name="Reference", secrets=(), build=build))
