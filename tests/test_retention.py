"""Retention where personal data rests: the Tic-Tac export ledger forgets rows dated before the
read window (they are final), and never exports them again (Azurite + the Tic-Tac sandbox)."""

from __future__ import annotations

from datetime import date

from shared.export.ledger_table import ExportLedger
from shared.export.source_ledger import RowState, SourceLedger, SourceRow
from tests.test_tictac_export import (  # noqa: F401 - fixtures
    all_lines,
    company,
    entry,
    export,
    tt_settings,
)

#: The sandbox's today is 2026-11-20 (tests/test_tictac_export.py START); the default look-back is 400 days.
WINDOW_START = date(2025, 10, 16)


def row(rowid: str, day: str) -> SourceRow:
    return SourceRow(rowid, 1, "f", [{"EmployeeCode": "1001", "Name": "Jens Hansen", "TotalTime": "7,5"}],
                     RowState.EXPORTED, day)


def test_rows_dated_before_the_read_window_are_purged_and_never_read_again(storage, tt_settings, tictac,  # noqa: F811
                                                                           company) -> None:  # noqa: F811
    source = SourceLedger(ExportLedger.connect(tt_settings).table)
    source.write_rows([row("1000000000001", "2024-01-02"), row("1000000000002", "2025-10-15T00:00:00"),
                       row("1000000000003", "2025-10-16"), row("1000000000004", "2026-11-19"),
                       row("1000000000005", "not a date")])

    export(tt_settings, tictac)  # the first run is a reconcile (the whole window)

    assert sorted(source.all_rows()) == ["1000000000003", "1000000000004", "1000000000005"]
    assert source.state().purged_before == WINDOW_START
    # A longer look-back later does not read before the purge: a purged row is never exported twice.
    tictac.insert("entries", [entry(company, 5, day="2025-06-01")])
    export(tt_settings, tictac, env={"TICTAC_EXPORT_LOOKBACK_DAYS": "800"})
    assert not [line for line in all_lines(storage, tt_settings) if line[0] == "TimeLedgerEntry"
                and "01-06-2025" in line]
