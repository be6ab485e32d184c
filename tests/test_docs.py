"""The format sheet for ERP consultants (docs/file-formats.md) stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from shared.export.ledger_format import FORMULA_TRIGGERS, JOB_LEDGER_COLUMNS, TIME_LEDGER_COLUMNS
from shared.importing.parsing import parse_file
from shared.records.layouts import LAYOUTS

SHEET = (Path(__file__).resolve().parent.parent / "docs" / "file-formats.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = SHEET.index(f"### {title}\n")
    end = SHEET.find("\n##", start + 1)
    return SHEET[start : end if end > 0 else None]


def test_every_incoming_parameter_is_listed_with_its_position_and_length() -> None:
    for record_type, layout in LAYOUTS.items():
        rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+)$", section(record_type),
                                                                 re.MULTILINE)}
        assert sorted(rows) == [spec.position for spec in layout.fields], record_type
        for spec in layout.fields:
            cells = [cell.strip() for cell in rows[spec.position].split("|")]
            assert cells[0].split(" ")[0] == spec.name
            assert cells[2] == (str(spec.max_length) if spec.max_length else cells[2])


def test_every_outgoing_column_is_listed_in_order() -> None:
    for title, columns in (("TimeLedgerEntry", TIME_LEDGER_COLUMNS), ("JobLedgerEntry", JOB_LEDGER_COLUMNS)):
        listed = re.findall(r"^\| \d+ \| (\w+) \|", section(title), re.MULTILINE)
        assert listed == [column.name for column in columns]


def test_the_sheets_example_lines_import_without_errors() -> None:
    example = SHEET.split("Example lines:\n\n```\n", 1)[1].split("```", 1)[0].encode()
    parsed = parse_file(lambda: [example])
    assert parsed.errors == [] and len(parsed.records) == 3


def test_the_sheet_says_which_values_the_export_alters() -> None:
    """The formula guard is documented with exactly the characters the code guards."""
    altered = SHEET.split("**Values TimeBridge alters**", 1)[1].split("\n* **", 1)[0]
    names = {"\t": "tab", "\r": "CR"}
    listed = altered.split("starting with", 1)[1].split("gets", 1)[0]
    assert [names.get(c, f"`{c}`") for c in FORMULA_TRIGGERS] == [p.strip(" ,\n").removeprefix("or ") for p in
                                                                     listed.replace(" or ", ", ").split(",")]
    assert "one leading `'`" in altered and "folded" in altered and "receipt lists every altered entry" in altered
