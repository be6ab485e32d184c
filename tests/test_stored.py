"""The stored records held compactly: every record comes back as it was added."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from shared.importing.stored import StoredRecords
from shared.records.layouts import RecordType
from shared.targets.base import RemoteRecord


def test_records_come_back_with_the_same_values_present_fields_and_match() -> None:
    store = StoredRecords(RecordType.JOB)
    job = RemoteRecord(id=17, values={"sJobCode": "A360", "sPlannedStartDate": date(2026, 3, 1),
                                      "nPlannedNumber": Decimal("2.50"), "sStatus": "Started",
                                      "sMaterialsRecieved": True, "nNumberPerContainer": 0,
                                      "sNotInTheLayout": "kept"},
                       present=frozenset({"JobCode", "Status"}), matched_by="name")
    bare = RemoteRecord(id="x-1", values={"sJobCode": "B1"})
    store.add(("a360",), job)
    store.add(("b1",), bare)

    back = store.get(("a360",))
    assert back == job
    assert back is not None and back.values["nPlannedNumber"] == Decimal("2.50")
    assert str(back.values["nPlannedNumber"]) == "2.50"  # the Decimal itself, not an equal one
    assert store.get(("b1",)) == bare
    assert store.get(("A360",)) is None  # the key as given (folded by the caller)
    assert list(store.values()) == [job, bare]
    assert len(store) == 2


def test_a_later_record_with_the_same_key_replaces_the_earlier_at_its_place() -> None:
    store = StoredRecords(RecordType.OPERATION)
    first = RemoteRecord(id=1, values={"sJobCode": "J", "nLineNumber": 1, "sDescription": "old"})
    other = RemoteRecord(id=2, values={"sJobCode": "J", "nLineNumber": 2})
    later = RemoteRecord(id=3, values={"sJobCode": "J", "nLineNumber": 1, "sDescription": "new"})
    for remote in (first, other, later):
        store.add((remote.values["sJobCode"], remote.values["nLineNumber"]), remote)
    assert list(store.values()) == [later, other]
    assert store.get(("J", 1)) == later
