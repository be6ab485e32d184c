"""The ledger export from Tic-Tac end to end: Azurite (blobs, the export ledger, the cross-references,
the call budget), the Tic-Tac sandbox over a real socket, the sandbox's switches for every open
behaviour of ``GET /v2/entries``.

The invariant every test checks in the end: for each Tic-Tac row, the hours of all lines ever
written for it (new, reversal, repost) add up to what Tic-Tac holds now — each registration reaches
the ERP exactly once, corrections included.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from pydantic import SecretStr

from shared.errors import ConfigurationError
from shared.export import run_export
from shared.export.ledger_table import ExportLedger, RunStatus
from shared.export.protocol import Exporter
from shared.export.receipt import ExportReceipt
from shared.export.sent_ledger import SentLedgerSource
from shared.export.source_ledger import ROW_PARTITION, RowState, SourceLedger
from shared.platform.config import CorrectionDate, Settings
from shared.platform.storage import blob_service
from shared.targets.budget import CallBudget, budget_id
from shared.targets.factory import connector_factory
from shared.targets.registry import load_all_settings
from shared.targets.tictac.settings import TicTacSettings
from shared.targets.tictac.xref import CrossRef, CrossRefs, Entity
from shared.wiring import prepare_storage
from tests.conftest import TicTacSandbox, blob_names, read_blob
from tests.functions_host import registered

START = "2026-11-20T10:00:00+00:00"
TODAY = "2026-11-20"


class CrashError(Exception):
    """Stands in for the process dying at a given step."""


@pytest.fixture
def tt_settings(app_env: dict[str, str], tictac: TicTacSandbox, monkeypatch: pytest.MonkeyPatch) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    env = {"TARGET_SYSTEM": "tictac", "TICTAC_BASE_URL": tictac.base_url, "TICTAC_API_CODE": tictac.api_code,
           "XREF_TABLE": f"xref{suffix}", "BUDGET_TABLE": f"budget{suffix}", "TICTAC_ABSENCE_PROJECTS": "ABS",
           "TICTAC_WORKTYPE_MAP": "WORKHOURS=NORMAL,OVERTIME=OVERTIME1,ABSENCE=SICK"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tictac.set_now(START)
    settings = Settings()
    prepare_storage(settings)  # its own cross-reference and budget tables (infra/ creates them in Azure)
    return settings


@pytest.fixture
def company(tt_settings: Settings, storage: BlobServiceClient, tictac: TicTacSandbox) -> dict[str, str]:
    """One ERP employee, job and two operations in Tic-Tac with their cross-references, plus an
    absence project and a Tic-Tac-only user (the ids by name)."""
    tictac.insert("users", [{"userName": "jens", "firstName": "Jens", "lastName": "Hansen", "employeeNumber": "1001"},
                            {"userName": "olga", "firstName": "Olga", "lastName": "Only-in-TicTac"}])
    [job] = tictac.insert("projects", [{"name": "Maling", "projectNumber": "1000"}])
    paint, overtime = tictac.insert("activities", [{"projid": job, "name": "Maling - farve 9010", "type": "WORKHOURS"},
                                                   {"projid": job, "name": "Overtid", "type": "OVERTIME"}])
    [absence] = tictac.insert("projects", [{"name": "Frånvaro", "projectNumber": "ABS"}])
    [sick] = tictac.insert("activities", [{"projid": absence, "name": "Sjuk", "type": "ABSENCE"}])
    CrossRefs.connect(tt_settings, tt_settings.xref_table).put_many([
        CrossRef("tictac", Entity.USER, ("1001",), "jens"),
        CrossRef("tictac", Entity.PROJECT, ("1000",), job),
        CrossRef("tictac", Entity.ACTIVITY, ("1000", "10"), paint,
                 erp_values={"sOperationCode": "PAINT", "sERPReference": "ERP-10"}),
        CrossRef("tictac", Entity.ACTIVITY, ("1000", "20"), overtime,
                 erp_values={"sOperationCode": "OT", "sERPReference": "ERP-20"}),
    ])
    return {"job": job, "paint": paint, "overtime": overtime, "absence": absence, "sick": sick}


# --- helpers ----------------------------------------------------------------------------------------
def entry(company: dict[str, str], hours: float, *, user: str = "jens", activity: str = "paint",
          day: str = "2026-11-19", attested: bool = True, kind: str = "TicTacTime", **more: Any) -> dict[str, Any]:
    project = "absence" if activity == "sick" else "job"
    row = {"type": kind, "userid": user, "projid": company[project], "actid": company[activity], "date": day,
           "attested": attested, "changed": START, **more}
    if kind == "TicTacTime":
        row["hours"] = hours
    return row


def sandbox_clock(tictac: TicTacSandbox) -> datetime:
    return datetime.fromisoformat(tictac.advance())


def export(settings: Settings, tictac: TicTacSandbox, env: dict[str, str] | None = None,
           **changes: Any) -> ExportReceipt | None:
    """One export run, on the sandbox's clock (so days and windows agree with Tic-Tac's); ``env``: Tic-Tac's
    own settings for this run (app settings, as ``shared/targets/tictac/settings.py`` reads them)."""
    settings = settings.model_copy(update=changes) if changes else settings
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        return Exporter(settings, blob_service(settings), ExportLedger.connect(settings), connector_factory(settings),
                        clock=lambda: sandbox_clock(tictac), source=SentLedgerSource).run()


def files(storage: BlobServiceClient, settings: Settings) -> dict[str, bytes]:
    return {name: read_blob(storage, settings.output_container, name)
            for name in blob_names(storage, settings.output_container) if name.startswith("ledger_")}


def lines_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""), delimiter=";"))


def all_lines(storage: BlobServiceClient, settings: Settings) -> list[list[str]]:
    return [line for _, content in sorted(files(storage, settings).items()) for line in lines_of(content)]


def receipts(storage: BlobServiceClient, settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(read_blob(storage, settings.export_state_container, name))
            for name in blob_names(storage, settings.export_state_container) if name.startswith("receipts/")]


def net_hours(storage: BlobServiceClient, settings: Settings) -> dict[tuple[str, str], Decimal]:
    """(record, Tic-Tac rowid) → the sum of TotalTime over every line in every file (via the receipts)."""
    by_line = {(line["record"], line["line"]): line["rowid"] for receipt in receipts(storage, settings)
               for line in receipt["lines"]}
    total: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in all_lines(storage, settings):
        total_time = line[11] if line[0] == "TimeLedgerEntry" else line[15]
        rowid = by_line[(line[0], int(line[1]))]
        total[(line[0], rowid)] += Decimal(total_time.replace(",", "."))
    return dict(total)


def tictac_hours(tictac: TicTacSandbox, rowids: list[str]) -> dict[str, Decimal]:
    rows = {row["rowid"]: row for row in tictac.state()["entries"]}
    return {rowid: (Decimal("0") if rows[rowid]["_deleted"] else Decimal(rows[rowid]["hours"])) for rowid in rowids}


def assert_in_step(storage: BlobServiceClient, settings: Settings, tictac: TicTacSandbox, job_rows: list[str],
                   time_only: list[str] = ()) -> None:  # type: ignore[assignment]
    """Every row's net exported hours equal Tic-Tac's hours now, in both ledgers (absence: time only)."""
    net = net_hours(storage, settings)
    now = tictac_hours(tictac, [*job_rows, *time_only])
    for rowid in job_rows:
        assert net.get(("TimeLedgerEntry", rowid), Decimal(0)) == now[rowid], (rowid, net)
        assert net.get(("JobLedgerEntry", rowid), Decimal(0)) == now[rowid], (rowid, net)
    for rowid in time_only:
        assert net.get(("TimeLedgerEntry", rowid), Decimal(0)) == now[rowid]
        assert ("JobLedgerEntry", rowid) not in net
    ids = [(line[0], line[1]) for line in all_lines(storage, settings)]
    assert len(ids) == len(set(ids)), "a line id was used twice"


# --- reading and mapping ---------------------------------------------------------------------------
def test_new_rows_are_exported_with_the_erp_codes_and_the_rest_is_named(storage, tt_settings, tictac, company) -> None:
    normal, extra, sick, draft, cost, mile, stranger = tictac.insert("entries", [
        entry(company, 7.5, spec="Vinduer"), entry(company, 2, activity="overtime"),
        entry(company, 8, activity="sick", day="2026-11-18"), entry(company, 3, attested=False),
        entry(company, 0, kind="TicTacCost", costvatexcl=44.0, costvatincl=55.0),
        entry(company, 0, kind="TicTacMile", distance=333.0), entry(company, 4, user="olga"),
    ])

    receipt = export(tt_settings, tictac)

    assert receipt is not None and receipt.status == "exported"
    [content] = files(storage, tt_settings).values()
    lines = lines_of(content)
    assert lines[0][:3] == ["TimeLedgerEntry", "1", "1001"]
    by_row = {(line["record"], line["rowid"]): line for line in receipt.lines}
    time_normal = lines[by_row[("TimeLedgerEntry", normal)]["line"] - 1]
    assert time_normal == ["TimeLedgerEntry", str(by_row[("TimeLedgerEntry", normal)]["line"]), "1001", "Jens Hansen",
                           "19-11-2026", "", "", "NORMAL", "", "", "", "7,5", "", "Normal", "0", "Vinduer", "", "", ""]
    job_normal = next(line for line in lines if line[0] == "JobLedgerEntry"
                      and int(line[1]) == by_row[("JobLedgerEntry", normal)]["line"])
    assert job_normal[2:17] == ["1001", "19-11-2026", "Jens Hansen", "1000", "PAINT", "10", "Maling - farve 9010", "",
                                "", "0", "NORMAL", "", "", "7,5", "ERP-10"]
    job_extra = next(line for line in lines if line[0] == "JobLedgerEntry"
                     and int(line[1]) == by_row[("JobLedgerEntry", extra)]["line"])
    assert (job_extra[6], job_extra[7], job_extra[12], job_extra[15]) == ("OT", "20", "OVERTIME1", "2")
    time_sick = next(line for line in lines if int(line[1]) == by_row[("TimeLedgerEntry", sick)]["line"])
    assert (time_sick[7], time_sick[11], time_sick[13]) == ("SICK", "8", "Absence")
    assert ("JobLedgerEntry", sick) not in by_row  # absence is no job
    assert {row for _, row in by_row} == {normal, extra, sick}  # not the draft, the cost, the mileage, olga's
    assert [int(line[1]) for line in lines] == list(range(1, len(lines) + 1))  # TimeBridge's own sequence
    assert all(line["version"] == 1 and line["reason"] == "new" for line in receipt.lines)

    source = receipt.source
    assert source["left_out"] == {"TicTacCost": [cost], "TicTacMile": [mile]}
    assert [held["rowid"] for held in source["held"]] == [stranger]
    assert "olga is not linked to an ERP employee" in source["held"][0]["reason"]
    assert source["counts"]["not_attested"] == 1 and draft not in str(source["held"])
    assert receipt.api_calls["total"] == 3  # the first run is the reconcile: entries + the project and user lists
    assert_in_step(storage, tt_settings, tictac, [normal, extra], [sick])

    # olga's row stays held and listed on every run until she is linked, then it is exported once
    tictac.advance(hours=0.25)
    assert export(tt_settings, tictac) is None  # nothing to write; the held row waits (no receipt)
    CrossRefs.connect(tt_settings, tt_settings.xref_table).put(CrossRef("tictac", Entity.USER, ("1002",), "olga"))
    tictac.advance(hours=0.25)
    receipt = export(tt_settings, tictac)
    assert receipt is not None and {line["rowid"] for line in receipt.lines} == {stranger}
    assert receipt.source["held"] == [] and receipt.api_calls["total"] == 1
    tictac.advance(hours=0.25)
    assert export(tt_settings, tictac) is None
    assert_in_step(storage, tt_settings, tictac, [normal, extra, stranger], [sick])

    # the export ledger keys Tic-Tac's 13-digit row ids as text in a partition of their own
    ledger = SourceLedger(ExportLedger.connect(tt_settings).table)
    keys = {row["RowKey"] for row in ledger.table.query_entities("PartitionKey eq @pk",
                                                                 parameters={"pk": ROW_PARTITION})}
    assert keys == {normal, extra, sick, stranger} and all(len(key) == 13 for key in keys)


def test_held_row_is_listed_in_every_receipt_until_it_can_be_mapped(storage, tt_settings, tictac, company) -> None:
    [stranger] = tictac.insert("entries", [entry(company, 4, user="olga")])
    first = export(tt_settings, tictac, export_write_empty_file=True)
    tictac.advance(hours=0.25)
    second = export(tt_settings, tictac, export_write_empty_file=True)
    assert first is not None and second is not None
    assert [h["rowid"] for h in first.source["held"]] == [h["rowid"] for h in second.source["held"]] == [stranger]
    assert first.lines == second.lines == []


# --- corrections ------------------------------------------------------------------------------------
SWITCH_CASES = [
    {"days_changed_unit": "calendar", "attest_is_change": False, "days_changed_param": "both"},
    {"days_changed_unit": "hours", "attest_is_change": True, "days_changed_param": "daysChangedWithin"},
    {"days_changed_unit": "hours", "attest_is_change": False, "days_changed_param": "daysChangedWithinStr"},
    {"days_changed_unit": "calendar", "attest_is_change": True, "days_changed_param": "both", "empty_list": 204},
]


@pytest.mark.parametrize("switches", SWITCH_CASES, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_a_changed_row_gives_a_reversal_and_a_repost_once(storage, tt_settings, tictac, company, switches) -> None:
    tictac.switch(**switches)
    [row] = tictac.insert("entries", [entry(company, 7, day="2026-10-02")])
    assert export(tt_settings, tictac) is not None
    tictac.advance(hours=25)
    assert export(tt_settings, tictac) is None  # nothing changed (the daily reconcile, no file)

    tictac.advance(hours=1)
    tictac.edit_entry(row, hours=6.5)
    tictac.advance(hours=1)
    receipt = export(tt_settings, tictac)

    assert receipt is not None
    assert receipt.source["read"]["kind"] == "changes" and receipt.api_calls["total"] == 1
    [reversal_time, repost_time, reversal_job, repost_job] = [
        (line["record"], line["version"], line["reason"]) for line in receipt.lines]
    assert reversal_time == ("TimeLedgerEntry", 1, "changed: reversal")
    assert repost_time == ("TimeLedgerEntry", 2, "changed: repost")
    assert (reversal_job[2], repost_job[2]) == ("changed: reversal", "changed: repost")
    content = files(storage, tt_settings)[receipt.file.split("/", 1)[1]]
    assert [line[11] for line in lines_of(content) if line[0] == "TimeLedgerEntry"] == ["-7", "6,5"]
    assert [line[15] for line in lines_of(content) if line[0] == "JobLedgerEntry"] == ["-7", "6,5"]
    assert {line[4] for line in lines_of(content) if line[0] == "TimeLedgerEntry"} == {"02-10-2026"}

    for _ in range(3):  # later runs, a daily reconcile among them: nothing more
        tictac.advance(hours=10)
        assert export(tt_settings, tictac) is None
    assert_in_step(storage, tt_settings, tictac, [row])


def test_correction_lines_carry_the_run_date_when_configured(storage, tt_settings, tictac, company) -> None:
    [row] = tictac.insert("entries", [entry(company, 7, day="2026-10-02")])
    export(tt_settings, tictac)
    tictac.advance(hours=1)
    tictac.edit_entry(row, hours=5)
    receipt = export(tt_settings, tictac, export_correction_date=CorrectionDate.RUN)
    assert receipt is not None
    content = files(storage, tt_settings)[receipt.file.split("/", 1)[1]]
    assert {line[4] for line in lines_of(content) if line[0] == "TimeLedgerEntry"} == {"20-11-2026"}
    assert {line[3] for line in lines_of(content) if line[0] == "JobLedgerEntry"} == {"20-11-2026"}


@pytest.mark.parametrize("unit", ["calendar", "hours"])
def test_a_row_attested_later_without_a_change_time_is_exported_by_the_reconcile(
        storage, tt_settings, tictac, company, unit) -> None:
    tictac.switch(days_changed_unit=unit, attest_is_change=False)
    [row] = tictac.insert("entries", [entry(company, 4, attested=False, changed="2026-11-01T08:00:00+00:00")])
    assert export(tt_settings, tictac) is None
    tictac.advance(hours=2)
    tictac.edit_entry(row, attested=True)  # not a change for daysChangedWithin with this switch
    assert export(tt_settings, tictac) is None  # the delta read cannot see it
    tictac.advance(hours=23)
    receipt = export(tt_settings, tictac)
    assert receipt is not None and receipt.source["read"]["kind"] == "reconcile (whole window)"
    assert_in_step(storage, tt_settings, tictac, [row])


def test_an_unattested_row_is_pending_and_a_change_made_meanwhile_is_corrected(
        storage, tt_settings, tictac, company) -> None:
    tictac.switch(attest_is_change=True)
    [row] = tictac.insert("entries", [entry(company, 8)])
    export(tt_settings, tictac)
    tictac.advance(hours=1)
    tictac.edit_entry(row, attested=False)
    receipt = export(tt_settings, tictac, export_write_empty_file=True)
    assert receipt is not None and receipt.source["pending"] == [row] and receipt.lines == []
    ledger = SourceLedger(ExportLedger.connect(tt_settings).table)
    assert ledger.rows([row])[row].state == RowState.PENDING
    tictac.advance(hours=1)
    tictac.edit_entry(row, hours=7.25)  # still not attested: nothing is written
    assert export(tt_settings, tictac) is None
    tictac.advance(hours=1)
    tictac.edit_entry(row, attested=True)
    receipt = export(tt_settings, tictac)
    assert receipt is not None and [line["reason"] for line in receipt.lines][:2] == ["changed: reversal",
                                                                                    "changed: repost"]
    assert_in_step(storage, tt_settings, tictac, [row])


# --- deletions and the guards ---------------------------------------------------------------------------
@pytest.mark.parametrize("empty_list", [200, 204])
def test_a_vanished_row_is_reversed_after_two_consecutive_reconciles(
        storage, tt_settings, tictac, company, empty_list) -> None:
    tictac.switch(deleted_entries="vanish", empty_list=empty_list)
    rows = tictac.insert("entries", [entry(company, h, day=f"2026-11-{d:02d}") for h, d in
                                     [(7, 2), (6, 3), (5, 4), (4, 5), (3, 6), (2, 9)]])
    export(tt_settings, tictac)
    tictac.delete_entry(rows[0])
    tictac.advance(hours=1)
    assert export(tt_settings, tictac) is None  # a delta read does not see deletions
    tictac.advance(hours=24)
    assert export(tt_settings, tictac) is None  # first reconcile without it: counted, not reversed
    assert net_hours(storage, tt_settings)[("TimeLedgerEntry", rows[0])] == 7
    tictac.advance(hours=24)
    receipt = export(tt_settings, tictac)  # second consecutive reconcile: reversal only
    assert receipt is not None and receipt.api_calls["total"] == 3
    assert [(line["rowid"], line["reason"]) for line in receipt.lines] == [(rows[0], "deleted: reversal")] * 2
    tictac.advance(hours=24)
    assert export(tt_settings, tictac) is None
    assert_in_step(storage, tt_settings, tictac, rows)


def test_a_zeroed_row_is_reversed_at_the_next_run(storage, tt_settings, tictac, company) -> None:
    tictac.switch(deleted_entries="zeroed")
    [row, other] = tictac.insert("entries", [entry(company, 7), entry(company, 3, day="2026-11-18")])
    export(tt_settings, tictac)
    tictac.advance(hours=1)
    tictac.delete_entry(row)
    receipt = export(tt_settings, tictac)
    assert receipt is not None
    assert [(line["rowid"], line["reason"]) for line in receipt.lines] == [(row, "zeroed: reversal")] * 2
    tictac.advance(hours=30)
    assert export(tt_settings, tictac) is None
    assert_in_step(storage, tt_settings, tictac, [row, other])


def test_a_present_row_resets_the_count_of_missed_reconciles(storage, tt_settings, tictac, company) -> None:
    rows = tictac.insert("entries", [entry(company, h, day=f"2026-11-{d:02d}") for h, d in [(7, 2), (6, 3), (5, 4)]])
    export(tt_settings, tictac)
    ledger = SourceLedger(ExportLedger.connect(tt_settings).table)
    ledger.set_missed({rows[0]: 1})  # as if one reconcile had not seen it
    tictac.advance(hours=25)
    assert export(tt_settings, tictac) is None
    assert ledger.rows([rows[0]])[rows[0]].missed == 0


@pytest.mark.parametrize("empty_list", [200, 204])
def test_a_reconcile_that_returns_nothing_never_reverses(
        storage, tt_settings, tictac, company, empty_list, caplog) -> None:
    caplog.set_level(logging.WARNING)
    tictac.switch(deleted_entries="vanish", empty_list=empty_list)
    rows = tictac.insert("entries", [entry(company, 7, day="2026-11-02"), entry(company, 6, day="2026-11-03")])
    export(tt_settings, tictac)
    for row in rows:
        tictac.delete_entry(row)
    for _ in range(3):
        tictac.advance(hours=25)
        receipt = export(tt_settings, tictac)
        assert receipt is not None and receipt.status == "exported-empty" and receipt.lines == []
        assert "returned no rows" in receipt.source["guard"]
        assert any("reconcile stopped" in note for note in receipt.notes)
    assert "returned no rows" in caplog.text
    assert all(net_hours(storage, tt_settings)[("TimeLedgerEntry", row)] > 0 for row in rows)


def test_a_reconcile_that_loses_too_many_rows_never_reverses(storage, tt_settings, tictac, company) -> None:
    rows = tictac.insert("entries", [entry(company, 1 + i, day=f"2026-11-{i + 1:02d}") for i in range(10)])
    export(tt_settings, tictac)
    for row in rows[:3]:  # 30 % > 20 %
        tictac.delete_entry(row)
    for _ in range(2):
        tictac.advance(hours=25)
        receipt = export(tt_settings, tictac)
        assert receipt is not None and "did not return 3 of the 10" in receipt.source["guard"]
        assert receipt.lines == []
    # an administrator who knows the deletions are real raises the share: two reconciles later they are reversed
    for _ in range(2):
        tictac.advance(hours=25)
        receipt = export(tt_settings, tictac, env={"TICTAC_RECONCILE_MAX_LOSS_PERCENT": "50"})
    assert receipt is not None and {line["rowid"] for line in receipt.lines} == set(rows[:3])
    assert_in_step(storage, tt_settings, tictac, rows)


def test_rows_dated_outside_the_window_are_final(storage, tt_settings, tictac, company) -> None:
    [old] = tictac.insert("entries", [entry(company, 7, day="2026-10-01")])
    export(tt_settings, tictac)
    tictac.delete_entry(old)
    for _ in range(3):
        tictac.advance(hours=25)
        assert export(tt_settings, tictac, env={"TICTAC_EXPORT_LOOKBACK_DAYS": "10"}) is None
    assert net_hours(storage, tt_settings)[("TimeLedgerEntry", old)] == 7


# --- exactly once under crashes --------------------------------------------------------------------
def _raise(step: str):  # type: ignore[no-untyped-def]
    def crash(*args: Any, **kwargs: Any) -> None:
        raise CrashError(step)

    return crash


CRASH_POINTS = {
    "after_read": (Exporter, "_commit_intent", None),
    "after_intent": (Exporter, "_write_file", RunStatus.INTENT),
    "after_write": (Exporter, "_verify_file", RunStatus.INTENT),
    "before_ledger_record": (SentLedgerSource, "record_ledger", RunStatus.MARKED),
    "before_close": (ExportLedger, "close_intent", RunStatus.MARKED),
}


@pytest.mark.parametrize("step", list(CRASH_POINTS))
def test_a_crash_at_any_step_of_a_correction_run_still_corrects_exactly_once(
        storage, tt_settings, tictac, company, monkeypatch, step) -> None:
    tictac.switch(deleted_entries="zeroed")
    changed, deleted, kept = tictac.insert("entries", [entry(company, 7, day="2026-10-02"),
                                                       entry(company, 5, day="2026-10-03"), entry(company, 3)])
    export(tt_settings, tictac)
    tictac.advance(hours=1)
    tictac.edit_entry(changed, hours=6.5)
    tictac.delete_entry(deleted)
    [new] = tictac.insert("entries", [entry(company, 2, changed=tictac.advance())])

    owner, name, status = CRASH_POINTS[step]
    with monkeypatch.context() as patch:
        patch.setattr(owner, name, _raise(step))
        with pytest.raises(CrashError):
            export(tt_settings, tictac)
    intent = ExportLedger.connect(tt_settings).read_state().intent
    assert (intent.status if intent else None) == status

    tictac.edit_entry(kept, hours=2.5)  # meanwhile: one more change
    tictac.advance(hours=1)
    receipt = export(tt_settings, tictac)
    assert receipt is not None
    if intent is not None:
        assert receipt.recovered_runs == [intent.run_id]
        done = next(r for r in receipts(storage, tt_settings) if r["run_id"] == intent.run_id)
        assert done["status"] == "completed-after-interruption"
        assert Counter(line["reason"] for line in done["lines"]) == {"changed: reversal": 2, "changed: repost": 2,
                                                                    "zeroed: reversal": 2, "new": 2}
    tictac.advance(hours=30)
    assert export(tt_settings, tictac) is None
    assert_in_step(storage, tt_settings, tictac, [changed, deleted, kept, new])


def test_two_runs_never_share_a_line_id(storage, tt_settings, tictac, company) -> None:
    for hours in (1, 2, 3):
        tictac.insert("entries", [entry(company, hours, changed=tictac.advance(hours=1))])
        export(tt_settings, tictac)
    ids = [int(line[1]) for line in all_lines(storage, tt_settings)]
    assert sorted(ids) == list(range(1, 7))
    assert ExportLedger.connect(tt_settings).read_state().next_line_id == 7


# --- the call budget -----------------------------------------------------------------------------------
def test_a_run_without_budget_is_skipped_and_says_when_it_runs(storage, tt_settings, tictac, company, caplog,
                                                                monkeypatch) -> None:
    caplog.set_level(logging.WARNING)
    tictac.insert("entries", [entry(company, 7)])
    monkeypatch.setenv("TICTAC_DAILY_CALL_BUDGET", "10")
    settings = tt_settings
    budget = CallBudget.connect(settings, budget_id("tictac", SecretStr(tictac.api_code)), 10,
                                table_name=settings.budget_table)
    assert budget.reserve(9) is not None  # an import holds nearly all of it
    before = tictac.calls()

    assert export(settings, tictac) is None
    assert tictac.calls() == before  # no call was made
    assert files(storage, settings) == {}
    assert "skipped" in caplog.text and "runs again at the next schedule at or after" in caplog.text


def test_an_export_run_counts_its_calls_in_the_shared_budget(storage, tt_settings, tictac, company) -> None:
    tictac.insert("entries", [entry(company, 7)])
    budget = CallBudget.connect(tt_settings, budget_id("tictac", SecretStr(tictac.api_code)),
                                TicTacSettings().daily_call_budget, table_name=tt_settings.budget_table)
    export(tt_settings, tictac)  # reconcile: entries + project list + user list
    tictac.advance(hours=0.25)
    export(tt_settings, tictac)  # delta: entries
    assert budget.used() == 4
    assert sum(n for key, n in tictac.calls().items()
               if "/v2/entries" in key or "/v1/projects" in key or "/v1/users" in key) == 4


# --- the timer ------------------------------------------------------------------------------------------
def test_the_timer_function_exports_from_tictac(storage, tt_settings, tictac, company) -> None:
    tictac.set_now(datetime.now().astimezone().isoformat())  # the function runs on the real clock
    [row] = tictac.insert("entries", [entry(company, 7, day=datetime.now().date().isoformat(),
                                             changed=tictac.advance())])
    registered("export_ledger").get_user_function()(TimerRequest(past_due=False))
    [content] = files(storage, tt_settings).values()
    assert [line[0] for line in lines_of(content)] == ["TimeLedgerEntry", "JobLedgerEntry"]
    assert_in_step(storage, tt_settings, tictac, [row])


@pytest.mark.parametrize(("name", "value", "words"), [
    ("TICTAC_WORKTYPE_MAP", "WORKHOURS", "is not TYPE=CODE"),
    ("EXPORT_CORRECTION_DATE", "yesterday", "original"),
    ("TICTAC_RECONCILE_MAX_LOSS_PERCENT", "150", "100"),
])
def test_a_wrong_export_setting_is_refused_naming_it(monkeypatch, name, value, words) -> None:
    monkeypatch.setenv("TARGET_SYSTEM", "tictac")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        load_all_settings()
    assert name in str(refused.value) and words in str(refused.value)


def test_a_503_while_reading_is_retried_within_the_reservation(storage, tt_settings, tictac, company) -> None:
    [row] = tictac.insert("entries", [entry(company, 7)])
    tictac.fault("GET", "/api/rest/v2/entries", status=503, retry_after=0)
    receipt = export(tt_settings, tictac)
    assert receipt is not None
    assert receipt.api_calls["by_endpoint"]["GET /v2/entries"] == 2
    assert_in_step(storage, tt_settings, tictac, [row])


def test_a_429_blocks_the_shared_budget_and_skips_the_run(storage, tt_settings, tictac, company, caplog) -> None:
    caplog.set_level(logging.WARNING)
    tictac.insert("entries", [entry(company, 7)])
    tictac.fault("GET", "/api/rest/v2/entries", status=429, retry_after=3600)
    assert export(tt_settings, tictac) is None
    assert files(storage, tt_settings) == {}
    budget = CallBudget.connect(tt_settings, budget_id("tictac", SecretStr(tictac.api_code)),
                                TicTacSettings().daily_call_budget, table_name=tt_settings.budget_table)
    assert budget.remaining() == 0  # every instance waits for Tic-Tac's Retry-After
    assert "daily call limit is used up" in caplog.text and "runs again at the next schedule" in caplog.text
    before = tictac.calls()
    assert export(tt_settings, tictac) is None  # the next run does not even ask
    assert tictac.calls() == before


def test_a_row_whose_hours_are_not_a_number_is_held_not_guessed(storage, tt_settings, tictac, company) -> None:
    odd_row = entry(company, 0) | {"hours": "nan"}  # float("nan") passes the sandbox, as a bad export could
    [odd, fine] = tictac.insert("entries", [odd_row, entry(company, 3)])
    receipt = export(tt_settings, tictac)
    assert receipt is not None and {line["rowid"] for line in receipt.lines} == {fine}
    [held] = receipt.source["held"]
    assert held["rowid"] == odd and "is not a number" in held["reason"]


def test_rows_of_unknown_projects_and_activities_are_held_and_a_row_moved_there_is_reversed(
        storage, tt_settings, tictac, company) -> None:
    [internal] = tictac.insert("projects", [{"name": "Intern"}])  # made by hand, without a project number
    [meeting] = tictac.insert("activities", [{"projid": internal, "name": "Møde", "type": "WORKHOURS"}])
    [extra] = tictac.insert("activities", [{"projid": company["job"], "name": "Ekstra", "type": "WORKHOURS"}])
    ids = company | {"internal": internal, "meeting": meeting, "extra": extra}
    on_internal = entry(ids, 1) | {"projid": internal, "actid": meeting}
    moved, unknown_project, unknown_activity = tictac.insert("entries", [
        entry(ids, 7), on_internal, entry(ids, 2, activity="extra")])
    receipt = export(tt_settings, tictac)
    assert receipt is not None and {line["rowid"] for line in receipt.lines} == {moved}
    reasons = {held["rowid"]: held["reason"] for held in receipt.source["held"]}
    assert "project Intern" in reasons[unknown_project] and "not linked to an ERP job" in reasons[unknown_project]
    assert "give it the ERP's job code as project number" in reasons[unknown_project]
    assert "activity Ekstra" in reasons[unknown_activity] and "Operation line" in reasons[unknown_activity]

    tictac.advance(hours=1)
    tictac.edit_entry(moved, projid=internal, actid=meeting)  # booked to the wrong project after all
    receipt = export(tt_settings, tictac)
    assert receipt is not None
    assert [(line["rowid"], line["reason"]) for line in receipt.lines] == [(moved, "changed: reversal")] * 2
    assert moved in {held["rowid"] for held in receipt.source["held"]}
    assert net_hours(storage, tt_settings)[("TimeLedgerEntry", moved)] == 0


def test_the_receipt_summary_names_what_tictac_held_and_left_out(storage, tt_settings, tictac, company) -> None:
    tictac.insert("entries", [entry(company, 7), entry(company, 2, user="olga"),
                              entry(company, 0, kind="TicTacSale", amount=1.0)])
    receipt = export(tt_settings, tictac)
    assert receipt is not None
    summary = receipt.summary()
    assert "Tic-Tac: read 3 rows (reconcile (whole window)); 1 held, 0 pending, 1 cost/mileage/sale rows left out" \
        in summary
    assert "marked transferred in SmartTID" not in summary


def test_a_held_row_whose_date_leaves_the_window_is_no_longer_listed(storage, tt_settings, tictac, company) -> None:
    [stranger] = tictac.insert("entries", [entry(company, 4, user="olga", day="2026-11-01")])
    first = export(tt_settings, tictac, export_write_empty_file=True)
    assert first is not None and [h["rowid"] for h in first.source["held"]] == [stranger]
    tictac.advance(hours=1)
    later = export(tt_settings, tictac, env={"TICTAC_EXPORT_LOOKBACK_DAYS": "10"}, export_write_empty_file=True)
    assert later is not None and later.source["held"] == [] and later.source["counts"]["held_left_window"] == 1
    assert SourceLedger(ExportLedger.connect(tt_settings).table).held() == {}


@pytest.mark.parametrize("locked", [True, False])
def test_two_overlapping_runs_export_once(storage, tt_settings, tictac, company, monkeypatch, locked) -> None:
    """With the lock the second run does nothing; without it (a lost lease) the conditional write of
    the intent still lets only one of them write a file — and no line id is used twice."""
    if not locked:
        @contextmanager
        def no_lock(blob: Any, seconds: int = 60) -> Iterator[object]:
            yield object()

        monkeypatch.setattr("shared.export.run.held_lease", no_lock)
    tictac.set_now(datetime.now(UTC).isoformat())
    rows = tictac.insert("entries", [entry(company, 7, day=datetime.now(UTC).date().isoformat(),
                                           changed=tictac.advance())])
    tictac.fault("GET", "/api/rest/v2/entries", hold=True, times=2)  # a run reading waits until released
    results: list[ExportReceipt | None] = [None, None]

    def run(index: int) -> None:
        results[index] = run_export(tt_settings)

    first = threading.Thread(target=run, args=(0,))
    first.start()
    tictac.wait_until_held(1)  # the first run holds the lock (if any) and is reading
    if locked:
        run(1)  # the lock is taken: the second run does nothing
        tictac.release()
        first.join()
    else:
        second = threading.Thread(target=run, args=(1,))
        second.start()
        tictac.wait_until_held(2)  # both read at the same time
        tictac.release()
        first.join()
        second.join()
    assert sorted(result is None for result in results) == [False, True], results
    assert len(files(storage, tt_settings)) == 1
    assert tictac.calls()["GET /api/rest/v2/entries"] == (1 if locked else 2)
    assert_in_step(storage, tt_settings, tictac, rows)
