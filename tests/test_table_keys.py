"""Table keys without ``%`` (shared/platform/table_keys.py): reversible, safe for point operations,
and rows keyed by earlier versions (``urllib.parse.quote``) are still read — against Azurite."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.export.ledger_table import INACTIVE_PARTITION, THROUGH_PARTITION, ExportLedger
from shared.export.source_ledger import HELD_PARTITION, ROW_PARTITION, SourceLedger
from shared.platform.config import Settings
from shared.platform.storage import table_service
from shared.platform.table_keys import decode_key, encode_key, legacy_key

#: Characters a table key may not hold (besides ``%``, which breaks point operations).
FORBIDDEN = set("/\\#?%") | {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))}
CODES = ["1001", "A-1_b.c~", "Æble 7", "50%", "a/b#c?d\\e", "x!21y", "日本", "tab\tcode", "!", "%41"]


@given(st.text(max_size=40))
def test_every_value_round_trips_to_a_key_without_forbidden_characters(value: str) -> None:
    key = encode_key(value)
    assert decode_key(key) == value
    assert not FORBIDDEN & set(key)


@pytest.mark.parametrize("code", CODES)
def test_earlier_keys_still_read_and_plain_codes_keep_their_key(code: str) -> None:
    assert decode_key(quote(code, safe="")) == code
    assert (legacy_key(code) is None) is (quote(code, safe="") == encode_key(code))
    assert encode_key("1001") == "1001" and encode_key("Æble 7") == "!C3!86ble!207"


@pytest.fixture
def ledger(storage, settings: Settings) -> ExportLedger:
    service = table_service(settings)
    service.create_table_if_not_exists(settings.export_ledger_table)
    yield ExportLedger(service.get_table_client(settings.export_ledger_table))
    service.delete_table(settings.export_ledger_table)


def test_point_operations_work_for_codes_with_any_character(ledger: ExportLedger) -> None:
    since = datetime(2026, 11, 1, tzinfo=UTC)
    for code in CODES:
        ledger.note_inactive(code, since)
    ledger.advance_time_marks({code: n for n, code in enumerate(CODES, start=1)})
    assert sorted(ledger.inactive_employees()) == sorted(CODES)
    assert ledger.time_marks() == {code: n for n, code in enumerate(CODES, start=1)}
    keys = [row["RowKey"] for row in ledger.table.list_entities(select=["RowKey"])]
    assert keys and not any("%" in key for key in keys)

    for code in CODES:
        ledger.forget_inactive(code)  # a point delete: with a %-key the service may miss the row
    assert ledger.inactive_employees() == {}


def test_rows_an_earlier_version_keyed_with_percent_are_still_read(ledger: ExportLedger) -> None:
    since, later = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    for partition, values in ((INACTIVE_PARTITION, {"InactiveSince": since.isoformat()}),
                              (THROUGH_PARTITION, {"EntryID": 40})):
        ledger.table.create_entity({"PartitionKey": partition, "RowKey": quote("Æble 7", safe=""), **values})

    assert ledger.inactive_employees()["Æble 7"].since == since
    assert ledger.time_marks() == {"Æble 7": 40}
    ledger.advance_time_marks({"Æble 7": 30})  # marks never go back, whichever form holds them
    assert ledger.time_marks() == {"Æble 7": 40}
    ledger.advance_time_marks({"Æble 7": 50})
    assert ledger.time_marks() == {"Æble 7": 50}
    ledger.note_inactive("Æble 7", later)  # the current row wins over the earlier one
    assert ledger.inactive_employees()["Æble 7"].since == later


def test_the_tictac_source_ledger_reads_earlier_keys_too(ledger: ExportLedger) -> None:
    source = SourceLedger(ledger.table)
    ledger.table.create_entity({"PartitionKey": HELD_PARTITION, "RowKey": quote("row/1 Æ", safe=""),
                                "Row": "{}", "Reason": "earlier"})
    source.hold({"row/2 Ø": ({"a": 1}, "current")})

    assert source.held() == {"row/1 Æ": ({}, "earlier"), "row/2 Ø": ({"a": 1}, "current")}
    source.release(["row/2 Ø"])
    assert list(source.held()) == ["row/1 Æ"]

    ledger.table.create_entity({"PartitionKey": ROW_PARTITION, "RowKey": quote("row/3 Å", safe=""), "Version": 2,
                                "Fingerprint": "f", "Sent": "[]", "State": "exported", "Date": "2026-11-02"})
    assert source.rows(["row/3 Å"])["row/3 Å"].version == 2  # a point read finds the earlier key
    assert list(source.all_rows()) == ["row/3 Å"]
