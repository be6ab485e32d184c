"""Imports of any size (issue 14): the file is read in passes and batches, an import stops before its
time limit and defers the rest, and every guarantee of a small import still holds."""

from __future__ import annotations

import json
import threading

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient

import shared.importing.passes
from shared.importing.deferral import Deferrals
from shared.importing.parsing import parse_file
from shared.importing.passes import MASTERS, OPERATIONS, read_ahead, scan_file
from shared.importing.resume import resume_deferred
from shared.platform.config import Settings
from shared.records.layouts import RecordType
from shared.targets.factory import connector_factory
from tests.conftest import Sandbox, blob_names, read_blob
from tests.functions_host import trigger_import
from tests.test_import import drop, error_files, upload

# line: what the batches must do with it
MIXED = [
    "Employee;E1;Anne;Street 1",  # 1 merged with line 8
    "Job;J1;Job one",  # 2
    "Operation;J1;10;OP;First op",  # 3 merged with line 10
    "Employee;E2;Bo",  # 4
    "Job;J2",  # 5 rejected: a new job needs a description
    "Operation;J2;10;OP;Op of a failed job",  # 6 rejected: its job failed (line 5)
    "Employee;e3;Carl",  # 7
    "Employee;e1;;Street 9",  # 8 the same employee as line 1 (codes ignore case): address changes, name kept
    "Operation;J1;20;OP;Second op",  # 9
    "Operation;j1;10;;First op renamed",  # 10
    "Job;J3;Job three",  # 11
    "Operation;J3;10;OP;Op three",  # 12
    "Operation;J9;10;OP;No such job",  # 13 rejected: job neither stored nor in the file
    "Employee;;No key",  # 14 rejected while reading
    "Job;J4;Bad date;;99-99-2026",  # 15 rejected while reading
    "Operation;J4;10;OP;Op of a rejected job",  # 16 rejected: its job's line was rejected
]


def records_of(batches) -> list[tuple[RecordType, tuple, dict, list[int]]]:  # type: ignore[no-untyped-def]
    return [(r.record_type, r.key, r.values, r.lines) for batch in batches for r in batch]


BROKEN_OPERATIONS = [
    "Operation;J1;30;OP;Bad time;x",  # 17 rejected while its batch is read (sPlannedTime)
    "Operation;J1;20;OP;Second op again;;;;;;;;;9",  # 18 merged with line 9; a value at an unknown position
    "Operation;J1;40;OP;Fine",  # 19
    "Operation;J1;40;OP;Fine but;\x01",  # 20 the same key as 19, rejected: 19 stands alone
]


@pytest.mark.parametrize("bitmap", [1, 0])  # 64 bits: most keys share a bit with another; 0: the default size
@pytest.mark.parametrize("unchecked", [frozenset(), OPERATIONS])
@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_batches_hold_the_records_parse_file_holds_merged_the_same_way(size: int, unchecked, bitmap: int) -> None:
    data = "\r\n".join(MIXED + BROKEN_OPERATIONS + [f"Employee;Z{n};Filler" for n in range(200)]).encode()
    whole = parse_file(lambda: [data], fold_codes=True)
    scanned = scan_file(lambda: [data[i:i + 5] for i in range(0, len(data), 5)], fold_codes=True,
                        unchecked=unchecked, size_hint=bitmap)
    assert len(scanned.duplicates) > (100 if bitmap else 2)  # with 64 bits, most keys are noted as possible twins
    masters = list(scanned.batches(MASTERS, size=size))
    operations = list(scanned.batches(OPERATIONS, size=size))

    expected = [(r.record_type, r.key, r.values, r.lines) for r in whole.records]
    got = records_of(masters) + records_of(operations)
    assert sorted(got, key=lambda r: r[3]) == sorted(expected, key=lambda r: r[3])
    # the operations' own errors are known once their batches are read (at once when they are checked by the scan)
    assert sorted(scanned.parsed.errors, key=lambda e: (e.line, e.field)) == whole.errors
    assert {e.line for e in whole.errors} >= {17, 20} and scanned.parsed.records == []
    assert scanned.parsed.ignored_positions == whole.ignored_positions == {RecordType.OPERATION: {13}}
    assert scanned.parsed.rejected_keys == whole.rejected_keys and scanned.parsed.lines_read == 220
    # a merged record comes once, with the later line's values; the file order of the others is kept
    e1 = next(r for r in got if r[1] == ("E1",))
    assert e1[2]["sName"] == "Anne" and e1[2]["sAddress"] == "Street 9" and e1[3] == [1, 8]
    assert [r[3][0] for r in records_of(masters) if r[1] != ("E1",)][:5] == [2, 4, 5, 7, 11]
    assert all(len(batch) <= size for batch in masters)


def test_one_jobs_operations_stay_in_one_batch_when_they_stand_together(monkeypatch) -> None:
    monkeypatch.setattr(shared.importing.passes, "BATCH_SIZE", 2)
    lines = [f"Operation;J{n // 3};{n % 3 + 1};OP;Step" for n in range(12)]  # 4 jobs, 3 operations each
    lines[4] = "Operation;j1;2;OP;Step"  # codes ignore case: still job J1
    scanned = scan_file(lambda: ["\n".join(lines).encode()], fold_codes=True)
    batches = list(scanned.for_import(OPERATIONS))
    assert [[r.key for r in batch] for batch in batches] == [
        [("J0", 1), ("J0", 2), ("J0", 3)], [("J1", 1), ("j1", 2), ("J1", 3)],
        [("J2", 1), ("J2", 2), ("J2", 3)], [("J3", 1), ("J3", 2), ("J3", 3)]]


def test_an_import_in_batches_of_two_keeps_every_guarantee(storage, settings, sandbox: Sandbox,
                                                           monkeypatch) -> None:
    monkeypatch.setattr(shared.importing.passes, "BATCH_SIZE", 2)
    data = ("\r\n".join(MIXED) + "\r\n").encode()
    receipt = drop(storage, settings, "mixed.csv", data)

    # lines 1+8, 2, 3+10, 4, 7, 9, 11, 12 created; 5, 6, 13, 14, 15, 16 rejected
    assert receipt["counts"] == {"created": 10, "updated": 0, "unchanged": 0, "rejected": 6}
    assert receipt["lines"] == 16 and sum(receipt["counts"].values()) == 16
    [e1] = sandbox.find("employees", EmployeeCode="E1")
    assert e1["Name"] == "Anne" and e1["Address"] == "Street 9"
    assert sorted(row["EmployeeCode"] for row in sandbox.find("employees"))[-3:] == ["E1", "E2", "e3"]
    [first] = sandbox.find("joboperations", JobCode="J1", LineNumber=10)
    assert first["Description"] == "First op renamed"
    assert sandbox.find("jobs", JobCode="J2") == [] and sandbox.find("joboperations", JobCode="J2") == []
    errors = error_files(storage, settings)
    report = errors[f"mixed.csv/{receipt['etag']}/errors.txt"].decode("utf-8-sig")
    assert "mixed.csv, line 6 (Operation): field sJobCode (position 1) \"J2\" names the operation's job, and the operation cannot be imported: " \
           "its job J2 on line 5 could not be imported" in report
    assert "line 13 (Operation)" in report and "job J9 does not exist in SmartTID and is not in this file" in report
    assert "line 16 (Operation)" in report and "its job J4 on line 15 was rejected" in report
    rejected = errors[f"mixed.csv/{receipt['etag']}/mixed.rejected.csv"]
    assert rejected == b"".join(line.encode() + b"\r\n" for n, line in enumerate(MIXED, 1) if n in {5, 6, 13, 14, 15, 16})


def test_an_import_that_reaches_its_time_limit_defers_the_rest_and_the_timer_finishes_it_in_order(
        storage, settings, sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("IMPORT_TIME_LIMIT_SECONDS", "1")
    monkeypatch.setenv("WRITE_CONCURRENCY", "1")
    sandbox.switch(latency_ms=25)  # 120 creates one after another take 3 s at least: more than the limit
    lines = [f"Employee;T{n:03d};Person {n}" for n in range(120)]
    data = "\n".join(lines).encode()
    receipt = drop(storage, settings, "big.csv", data)

    created, deferred = receipt["counts"]["created"], receipt["counts"]["deferred"]
    assert receipt["status"] == "partially-applied" and created > 0 and deferred > 0
    assert receipt["counts"] == {"created": created, "updated": 0, "unchanged": 0, "rejected": 0, "deferred": deferred}
    assert created + deferred == 120 and len(sandbox.find("employees")) - 4 == created  # 4 seeded employees
    assert any("IMPORT_TIME_LIMIT_SECONDS" in note and f"{deferred} lines wait" in note for note in receipt["notes"])
    kept = read_blob(storage, settings.archive_container, receipt["deferred"]["file"].split("/", 1)[1])
    assert kept.decode().splitlines() == lines[created:]  # the lines not written, byte for byte
    assert blob_names(storage, settings.error_container) == [] and blob_names(storage, settings.input_container) == []

    # a newer file for the same records waits behind the remainder, writing nothing
    writes = sandbox.writes()
    newer = drop(storage, settings, "newer.csv", b"Employee;T119;Newer name")
    assert newer["status"] == "queued" and newer["counts"] == {"deferred": 1}
    assert sandbox.writes() == writes

    # the resume timer (with a limit that fits) applies the rest, then the newer file: new data last
    monkeypatch.setenv("IMPORT_TIME_LIMIT_SECONDS", "1500")
    sandbox.switch(latency_ms=0)
    later = Settings()
    assert resume_deferred(later, storage, connector_factory(later)) == 2
    assert len(sandbox.find("employees")) == 124
    [last] = sandbox.find("employees", EmployeeCode="T119")
    assert last["Name"] == "Newer name"
    assert Deferrals(storage, settings.archive_container, "smarttid").entries() == []
    resumed = [json.loads(read_blob(storage, settings.archive_container, name))
               for name in blob_names(storage, settings.archive_container) if "/resumed-" in name]
    assert sorted((r["source"], r["counts"]["created"], r["counts"]["updated"]) for r in resumed) == [
        ("big.csv", deferred, 0), ("newer.csv", 0, 1)]


def test_storage_failing_during_a_later_read_leaves_the_file_for_the_hosts_retry(
        storage: BlobServiceClient, settings, sandbox: Sandbox, monkeypatch) -> None:
    real = shared.importing.passes.read_records
    reads = []

    def failing_second_read(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(1)
        if len(reads) == 1:  # the scan (read_key_hashes) succeeds; reading the employees and jobs again fails
            raise ServiceRequestError("storage went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(shared.importing.passes, "read_records", failing_second_read)
    data = b"Employee;R1;Ruth\nJob;RJ;Job\nOperation;RJ;1;OP;Step"
    upload(storage, settings, "retry.csv", data)
    with pytest.raises(ServiceRequestError):
        trigger_import(storage, settings.input_container, "retry.csv")
    assert blob_names(storage, settings.input_container) == ["retry.csv"]
    assert not [name for name in blob_names(storage, settings.archive_container) if name.endswith("receipt.json")]

    trigger_import(storage, settings.input_container, "retry.csv")  # the host's retry
    [receipt_name] = [n for n in blob_names(storage, settings.archive_container) if n.endswith("receipt.json")]
    receipt = json.loads(read_blob(storage, settings.archive_container, receipt_name))
    assert receipt["counts"] == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0}
    assert blob_names(storage, settings.input_container) == []


def test_reading_ahead_stops_with_its_consumer_and_hands_over_errors() -> None:
    produced = []

    def batches():  # type: ignore[no-untyped-def]
        for n in range(100):
            produced.append(n)
            yield [n]

    reader = read_ahead(batches())
    assert next(reader) == [0]
    reader.close()  # the import stopped early: the thread reading ahead ends, the rest is never read
    assert not [t for t in threading.enumerate() if t.name == "import-read-ahead"]
    assert len(produced) <= 3

    def broken():  # type: ignore[no-untyped-def]
        yield [1]
        raise ValueError("damaged")

    reader = read_ahead(broken())
    assert next(reader) == [1]
    with pytest.raises(ValueError, match="damaged"):
        next(reader)
