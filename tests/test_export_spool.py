"""The export's file is built on disk entry by entry (``shared/export/spool.py``) — and is still
exactly the documented file, written exactly once, also across versions and damaged staging."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
import pytest

from shared.errors import ExportFailedError
from shared.export import run_export
from shared.export.ledger_format import render
from shared.export.ledger_table import EntryKind, ExportLedger, SortedIds
from shared.export.protocol import RUNS_PREFIX, Exporter
from shared.export.spool import LedgerSpool, md5_of, packed_ids, unpacked_ids
from shared.platform.config import ExportEncoding
from shared.targets.factory import connector_factory
from tests.conftest import Sandbox
from tests.test_export import CrashError, _raise, assert_exactly_once, expected_entries, ledger_files

TIME_ROWS: list[dict[str, Any]] = [
    {"ID": 30, "EmployeeCode": "1002", "Name": "Søren Ærøskøbing", "Date": "2026-11-20T00:00:00", "TotalTime": 4.5,
     "Remark": "=SUM(A1)"},
    {"ID": 7, "EmployeeCode": "1001", "Name": "Łukasz Ő\u202eXX", "Date": "2026-11-19T00:00:00", "TotalTime": "7,5",
     "Remark": "a;b \"quoted\""},
    {"ID": 12, "EmployeeCode": "1001", "Name": "Jens Hansen", "Date": "2026-11-21T00:00:00", "TotalTime": -1.5},
    {"ID": 7, "EmployeeCode": "1001", "Name": "Łukasz Ő\u202eXX", "Date": "2026-11-19T00:00:00", "TotalTime": "7,5",
     "Remark": "a;b \"quoted\""},  # the same entry read twice (two pages)
]
JOB_ROWS: list[dict[str, Any]] = [
    {"ID": 900, "EmployeeCode": "1002", "JobCode": "1000", "OperationCode": "PACK", "TotalTime": 2},
    {"ID": 41, "EmployeeCode": "1001", "JobCode": "1000", "OperationCode": "PAINT", "TotalTime": 9.5,
     "ERPReference": "ERP-10"},
    {"ID": 55, "EmployeeCode": "", "JobCode": "1001", "OperationCode": "PAINT", "TotalTime": 1},
]


@pytest.mark.parametrize("encoding", list(ExportEncoding))
@pytest.mark.parametrize("leave_out", [set(), {7, 900}])
def test_spooled_file_is_byte_for_byte_the_rendered_file(encoding: ExportEncoding, leave_out: set[int]) -> None:
    with LedgerSpool(encoding=encoding, decimal_separator=",") as spool:
        for row in TIME_ROWS:
            spool.add(EntryKind.TIME, row)
        for row in JOB_ROWS:
            spool.add(EntryKind.JOB, row)
        assert list(spool.ids(EntryKind.TIME)) == [7, 12, 30]
        with spool.write({EntryKind.TIME: leave_out, EntryKind.JOB: SortedIds(leave_out)}) as spooled:
            content = spooled.file.read()
            spooled.file.seek(0)
            assert md5_of(spooled.file) == (spooled.size, spooled.md5)

    time_rows = {row["ID"]: row for row in TIME_ROWS if row["ID"] not in leave_out}.values()
    job_rows = [row for row in JOB_ROWS if row["ID"] not in leave_out]
    expected = render(time_rows, job_rows, encoding=encoding, decimal_separator=",")
    assert content == expected.content and len(content) == spooled.size
    assert (list(spooled.time_ids), list(spooled.job_ids)) == (expected.time_ids, expected.job_ids)
    assert sorted(spooled.notes) == sorted(expected.notes)
    assert any(note.startswith("TimeLedgerEntry 7:") for note in spooled.notes) is not bool(leave_out)  # 7's go with it
    assert any(note.startswith("TimeLedgerEntry 30: Remark starts with '='") for note in spooled.notes)
    by_employee = {code: list(ids) for code, ids in spooled.job_ids_by_employee.items()}
    assert by_employee == ({"1001": [41]} if leave_out else {"1001": [41], "1002": [900]})
    assert spooled.time_marks == ({"1001": 12, "1002": 30})


def test_a_run_interrupted_under_the_earlier_manifest_format_is_completed(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manifests of earlier versions mapped every entry id to its employee; such a run, interrupted
    before an upgrade, is completed by the new version (and the employees' marks advance)."""
    expected = expected_entries(sandbox)
    with monkeypatch.context() as patch:
        patch.setattr(Exporter, "_write_file", _raise("after intent"))
        with pytest.raises(CrashError):
            run_export(settings)
    ledger = ExportLedger.connect(settings)
    intent = ledger.read_state().intent
    assert intent is not None
    state = storage.get_container_client(settings.export_state_container)
    name = f"{RUNS_PREFIX}{intent.run_id}/manifest.json"
    manifest = json.loads(state.download_blob(name).readall())
    by_employee, marks = manifest.pop("job_ids_by_employee"), manifest.pop("time_marks")
    assert marks, "the sandbox's seed has time-ledger entries"
    manifest["job_employees"] = {str(i): code for code, ids in by_employee.items() for i in unpacked_ids(ids)}
    manifest["time_ids"] = list(unpacked_ids(manifest["time_ids"]))  # earlier versions wrote plain lists
    manifest["job_ids"] = list(unpacked_ids(manifest["job_ids"]))
    assert manifest["time_ids"] and manifest["job_ids"]
    manifest["time_employees"] = {str(i): code for code, i in marks.items()}
    state.upload_blob(name, json.dumps(manifest).encode(), overwrite=True)

    receipt = run_export(settings)

    assert receipt is not None and (receipt.run_id, receipt.status) == (intent.run_id, "completed-after-interruption")
    assert_exactly_once(storage, settings, expected, sandbox)
    assert ledger.time_marks() == marks


def test_damaged_staged_file_is_never_written_to_the_output(
    storage, settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(Exporter, "_write_file", _raise("after intent"))
        with pytest.raises(CrashError):
            run_export(settings)
    intent = ExportLedger.connect(settings).read_state().intent
    assert intent is not None
    staged = f"{RUNS_PREFIX}{intent.run_id}/{intent.file_name}"
    state = storage.get_container_client(settings.export_state_container)
    good = state.download_blob(staged).readall()
    state.upload_blob(staged, good.replace(b"9,5", b"9,6"), overwrite=True)

    with pytest.raises(ExportFailedError, match="missing or damaged"):
        run_export(settings)
    assert ledger_files(storage, settings) == {}

    state.upload_blob(staged, good, overwrite=True)  # repaired (e.g. restored from a blob version)
    receipt = run_export(settings)
    assert receipt is not None and (receipt.run_id, receipt.status) == (intent.run_id, "completed-after-interruption")
    assert ledger_files(storage, settings) == {intent.file_name: good}


@pytest.mark.parametrize("ids", [[], [7], [1, 2, 3, 900, 5, 2**40, -3]])
def test_packed_ids_come_back_in_order(ids: list[int]) -> None:
    packed = packed_ids(ids)
    assert isinstance(packed, str) and json.loads(json.dumps(packed)) == packed
    assert list(unpacked_ids(packed)) == ids
    assert list(unpacked_ids(ids)) == ids  # a plain list, as earlier versions wrote


def test_answers_are_freed_as_soon_as_they_are_read(settings, sandbox: Sandbox) -> None:
    """httpx ties each response to its stream in a reference cycle; the connector breaks it, so a
    long read never waits for the cyclic garbage collector to let go of its answers."""
    connector = connector_factory(settings)()
    try:
        gc.collect()
        gc.disable()
        alive_before = sum(isinstance(o, httpx.Response) for o in gc.get_objects())
        for _ in range(5):
            assert connector.time_ledger_entries("1001")
            assert list(connector.untransferred_job_ledger_entries())
        assert sum(isinstance(o, httpx.Response) for o in gc.get_objects()) == alive_before
    finally:
        gc.enable()
        connector.close()
