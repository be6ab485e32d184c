"""The stored records held compactly: every record comes back as it was added."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.importing import stored
from shared.importing.codes import CodeTable
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


def test_many_records_come_back_in_their_order_each_under_its_own_key() -> None:
    store = StoredRecords(RecordType.EMPLOYEE)
    added = [RemoteRecord(id=n, values={"sEmployeeCode": f"E{n:07d}", "sName": f"Person {n}"},
                          present=frozenset({"EmployeeCode", "Name", f"Field{n % 3}"})) for n in range(5_000)]
    for remote in added:
        store.add((str(remote.values["sEmployeeCode"]).casefold(),), remote)
    again = RemoteRecord(id="new", values={"sEmployeeCode": "E0000007", "sName": "Renamed"}, matched_by="name")
    store.add(("e0000007",), again)  # grown many times, then replaced: at the first one's place
    assert len(store) == 5_000
    assert list(store.values()) == [again if remote.id == 7 else remote for remote in added]
    assert all(store.get((f"e{n:07d}",)) == added[n] for n in range(5_000) if n != 7)
    assert store.get(("e0000007",)) == again
    assert store.get(("e0005000",)) is None and store.get(("E0000001",)) is None
    assert store.nbytes() < 160 * len(store)  # no Python object per record


def test_keys_with_the_same_hash_are_told_apart_by_the_key_itself() -> None:
    # hash(-1) == hash(-2) in CPython, so these two keys have one hash; 5 and 5 + 2**32 share the
    # hash bits the index keeps per record
    assert hash(("J", -1)) == hash(("J", -2))
    store = StoredRecords(RecordType.OPERATION)
    keys = [("J", -1), ("J", -2), ("J", 5), ("J", 5 + 2**32), ("J", 5 + 2**33)]
    for n, key in enumerate(keys):
        store.add(key, RemoteRecord(id=n, values={"sJobCode": key[0], "nLineNumber": key[1]}))
    assert [store.get(key).id for key in keys] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    assert store.get(("J", -3)) is None and store.get(("J", 5 + 2**34)) is None
    store.add(("J", -2), RemoteRecord(id="later", values={"sJobCode": "J", "nLineNumber": -2}))
    assert [remote.id for remote in store.values()] == [0, "later", 2, 3, 4]
    assert store.get(("J", -1)).id == 0  # type: ignore[union-attr]


def test_a_key_that_is_the_records_own_is_found_as_well_as_one_given_apart() -> None:
    for fold in (True, False):
        store = StoredRecords(RecordType.JOB, fold=fold)
        own = RemoteRecord(id=1, values={"sJobCode": "A360"})
        store.add(("a360",) if fold else ("A360",), own)  # the key the import makes of it: not kept apart
        given = RemoteRecord(id=2, values={"sJobCode": "B1"})
        store.add(("other",), given)  # any other key: kept with the record
        no_code = RemoteRecord(id=3, values={"sJobDescription": "no code"})
        store.add(("",), no_code)  # no code: the key is ""
        assert store.get(("a360",) if fold else ("A360",)) == own
        assert store.get(("A360",) if fold else ("a360",)) is None
        assert store.get(("other",)) == given and store.get(("b1",)) is None and store.get(("B1",)) is None
        assert store.get(("",)) == no_code
    numbered = StoredRecords(RecordType.OPERATION)
    operation = RemoteRecord(id=4, values={"sJobCode": "J", "nLineNumber": 1})
    numbered.add(("J", True), operation)  # equal to the record's ("J", 1), but not the same: kept apart
    numbered.add(("J", 2), RemoteRecord(id=5, values={"sJobCode": "J", "nLineNumber": 2}))
    assert numbered.get(("J", 1)) == operation  # found as a dict finds it (True == 1)
    assert numbered.get(("J", 2)).id == 5 and numbered.get(("J", 3)) is None  # type: ignore[union-attr]


def test_the_ends_of_the_records_widen_when_they_pass_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stored, "_WIDE_FROM", 200)
    store = StoredRecords(RecordType.EMPLOYEE, fold=True)
    added = [RemoteRecord(id=n, values={"sEmployeeCode": f"E{n}", "sName": "x" * 40}) for n in range(20)]
    for remote in added:
        store.add((f"e{remote.id}",), remote)
    assert store._ends.typecode == "Q"
    assert list(store.values()) == added and store.get(("e19",)) == added[19]


def test_the_code_table_finds_every_code_by_its_folded_key_and_nothing_else() -> None:
    table = CodeTable(fold=True)
    codes = [f"Job-{n}" for n in range(5_000)] + ["Ærø-1", "straße"]
    for code in codes:
        table.add(code)
    assert len(table) == len(codes)
    assert all(table.get(code.casefold()) == code for code in codes)  # grown many times: every code found
    assert table.get("job-5000") is None and table.get("Job-1") is None  # a code not added; a key not folded
    assert table.get("strasse") == "straße"  # casefold's own rule
    table.add("JOB-7")  # the same key spelled otherwise replaces the code
    assert table.get("job-7") == "JOB-7" and table.get("job-8") == "Job-8"
    assert table.nbytes() < 40 * len(codes)  # no Python object per code


def test_a_code_table_that_does_not_fold_tells_spellings_apart() -> None:
    table = CodeTable(fold=False)
    table.add("A360")
    table.add("a360")
    assert (table.get("A360"), table.get("a360"), table.get("A361")) == ("A360", "a360", None)


def test_the_code_table_holds_codes_of_any_length_and_hash_and_never_finds_another() -> None:
    table = CodeTable(fold=True)
    long_code = "L" * 300  # longer than a code's length byte allows: held apart
    wide = "Ø" * 200  # 400 bytes of UTF-8
    codes = [f"{n}" for n in range(70_000)] + [long_code, wide, "", "\udc80x"]  # more than one chunk of bytes
    for code in codes:
        table.add(code)
    assert len(table) == len(codes)
    assert all(table.get(code.casefold()) == code for code in codes)
    # keys whose hash byte and slot match a held code's are still told apart by the code itself
    assert all(table.get(f"{n}x") is None for n in range(70_000))
    table.add("l" * 300)
    assert table.get(long_code.casefold()) == "l" * 300 and len(table) == len(codes)


def test_the_code_table_takes_about_twenty_bytes_a_code() -> None:
    table = CodeTable(fold=True)
    for n in range(200_000):
        table.add(f"J{n:07d}")
    assert table.nbytes() < 20 * 200_000  # an 8-byte code: 10 bytes, and its slot in a table at most 3/4 full
    table.add("j0000007")  # respelled: the new spelling is found, the count unchanged
    assert table.get("j0000007") == "j0000007" and table.get("j0000008") == "J0000008" and len(table) == 200_000
