"""Escaping text from outside for people: visible, lossless in JSON, never applied to data."""

from __future__ import annotations

import json

import pytest

from shared.platform.safe_text import formula_line, hidden_characters, json_visible, visible

#: Characters that forge lines, drive terminals or reverse how a name reads.
HOSTILE = {
    "\x1b": "\\x1b",  # ESC
    "\r": "\\r",
    "\n": "\\n",
    "\t": "\\t",
    "\x00": "\\x00",
    "\x7f": "\\x7f",  # DEL
    "\x85": "\\x85",  # NEL
    "\u2028": "\\u2028",  # LINE SEPARATOR
    "\u2029": "\\u2029",  # PARAGRAPH SEPARATOR
    "\u202e": "\\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066": "\\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u200f": "\\u200f",  # RIGHT-TO-LEFT MARK
    "\u200b": "\\u200b",  # ZERO WIDTH SPACE
    "\ufeff": "\\ufeff",  # BOM
    "\U000e0041": "\\U000e0041",  # TAG LATIN CAPITAL LETTER A
    "\udcff": "\\udcff",  # an undecodable byte (surrogateescape)
}


def is_raw_free(text: str) -> bool:
    return not any(char in text for char in HOSTILE)


@pytest.mark.parametrize(("char", "escape"), HOSTILE.items(), ids=[f"U+{ord(c):04X}" for c in HOSTILE])
def test_each_hidden_character_becomes_a_visible_escape(char: str, escape: str) -> None:
    assert visible(f"a{char}b") == f"a{escape}b"
    assert hidden_characters(f"a{char}b") == [f"U+{ord(char):04X}"]


def test_ordinary_text_is_unchanged() -> None:
    for text in ("Åse Øberg, Ærøskøbing", "C:\\temp\\løn.csv", "Zoë – 50 % · “quoted”", "a\u00a0b", "日本語", ""):
        assert visible(text) == text
        assert hidden_characters(text) == []


def test_a_forged_report_line_stays_on_one_line() -> None:
    name = "hours.csv\r\nFile:      payroll-approved.csv\u202evsc.exe"
    shown = visible(name)
    assert is_raw_free(shown) and len(shown.splitlines()) == 1
    assert shown == "hours.csv\\r\\nFile:      payroll-approved.csv\\u202evsc.exe"


def test_json_visible_is_lossless_and_shows_what_json_leaves_raw() -> None:
    values = {"source": "a\u202eb\u2028c\x85d\x1be\U000e0041f", "note": "æøå"}
    document = json.dumps(values, indent=2, ensure_ascii=False)
    shown = json_visible(document)
    assert json.loads(shown) == values
    assert is_raw_free(shown.replace("\n", ""))  # only the layout's own line breaks remain
    assert "\\u202e" in shown and "\\u2028" in shown and "\\u0085" in shown and "\\u001b" in shown
    assert "æøå" in shown  # readable letters stay letters


@pytest.mark.parametrize(
    ("line", "formula"),
    [
        (b"Employee;A1;=HYPERLINK(\"http://x\")", True),
        (b"=1+1;Employee", True),
        (b"Job;1;\"@SUM(A1)\"", True),
        (b"Operation;1;-2;x", True),
        (b"\xef\xbb\xbf+45;x", True),
        (b"Employee;A1;Anne;a-b@c.dk", False),
        (b"Employee;A1; =1", False),
    ],
)
def test_formula_lines_are_recognised(line: bytes, formula: bool) -> None:
    assert formula_line(line) is formula


# ---- the export file: the target's data unchanged, but never able to break a line -------------


def test_export_keeps_hidden_characters_unchanged_quoted_and_noted() -> None:
    from shared.export.ledger_format import render
    from shared.platform.config import ExportEncoding

    remark = "late\u2028TimeLedgerEntry;999;FORGED\u0085x\x1b[31m \u202egnp.exe"
    row = {"ID": 7, "EmployeeCode": "E1", "Name": "Åse", "Date": "2026-11-20T00:00:00", "Remark": remark}

    ledger = render([row], [], encoding=ExportEncoding.UTF8_BOM, decimal_separator=",")

    text = ledger.content.decode("utf-8-sig")
    assert text.count("\r\n") == 1 and text.endswith("\r\n")  # one entry, one CRLF-terminated line
    assert f'"{remark}"' in text  # the value itself, unchanged, inside its quoted field
    [note] = [n for n in ledger.notes if "hidden characters" in n]
    assert note == ("TimeLedgerEntry 7: Remark holds hidden characters (U+2028, U+0085, U+001B, U+202E); "
                    "written unchanged, quoted")
    assert not any(hidden_characters(n) for n in ledger.notes)


def test_export_leaves_a_no_break_space_alone() -> None:
    from shared.export.ledger_format import render
    from shared.platform.config import ExportEncoding

    ledger = render([{"ID": 9, "Name": "Åse\u00a0Øberg"}], [], encoding=ExportEncoding.UTF8_BOM, decimal_separator=",")
    assert ";Åse\u00a0Øberg;" in ledger.content.decode("utf-8-sig") and ledger.notes == []


def test_export_multi_line_remark_is_quoted_but_not_noted() -> None:
    from shared.export.ledger_format import render
    from shared.platform.config import ExportEncoding

    row = {"ID": 8, "EmployeeCode": "E1", "Remark": "first line\r\nsecond line"}
    ledger = render([row], [], encoding=ExportEncoding.UTF8_BOM, decimal_separator=",")
    assert '"first line\r\nsecond line"' in ledger.content.decode("utf-8-sig")
    assert ledger.notes == []


def test_reason_txt_for_a_hostile_file_name_stays_on_its_lines() -> None:
    from shared.importing.reports import file_rejection_report

    text = file_rejection_report("pay\u202evsc.csv\r\nForged: yes", "2026-11-21T14:15:00Z",
                                 "line 1 has\x1b[8m hidden text", "remove it").decode("utf-8-sig")
    assert "File:      pay\\u202evsc.csv\\r\\nForged: yes\n" in text
    assert "line 1 has\\x1b[8m hidden text" in text
    assert hidden_characters(text.replace("\n", "")) == []


def test_export_receipt_json_shows_hidden_characters_and_parses_back() -> None:
    from shared.export.receipt import ExportReceipt

    note = "TimeLedgerEntry 7: Remark value '\u202e' is not a text"
    receipt = ExportReceipt(run_id="r1", file="output/ledger.csv", status="exported", started_at="x", notes=[note])
    document = receipt.to_json().decode()
    assert "\\u202e" in document and "\u202e" not in document
    assert json.loads(document)["notes"] == [note]
